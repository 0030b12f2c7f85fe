"""Browser sign-in for the office pages: session cookie, CSRF, roles, sign-out, the home redirect."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from contracts.codes import Role
from server.auth.service import create_user
from server.web.service import LOGIN_CSRF_COOKIE, SESSION_COOKIE, safe_next
from tests.server.web.conftest import PASSWORD, sign_in


def _user(db_session, role: Role, name: str) -> str:
    create_user(db_session=db_session, username=name, password=PASSWORD, role=role)
    db_session.flush()
    return name


def test_page_without_session_redirects_to_sign_in(client):
    """A page opened without signing in goes to /login, remembering where the person was going."""
    response = client.get("/board?day=2026-12-02", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fboard%3Fday%3D2026-12-02"


def test_htmx_request_without_session_asks_for_a_full_redirect(client):
    """An htmx fragment request without a session gets HX-Redirect, not the sign-in page swapped into a part."""
    response = client.get("/board/parts/glance", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_sign_in_sets_a_strict_session_cookie_and_goes_to_next(client, db_session):
    """Signing in sets an HttpOnly, SameSite=Lax session cookie (not Secure over http) and goes to `next`."""
    name = _user(db_session, Role.DISPATCHER, "dora")
    response = sign_in(client, name, next_url="/board")
    assert response.status_code == 303
    assert response.headers["location"] == "/board"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie
    page = client.get("/board")
    assert page.status_code == 200
    assert "Dispatch board" in page.text and "dora" in page.text


def test_session_cookie_is_secure_over_https(app, db_session):
    """Over https the session cookie is also Secure."""
    name = _user(db_session, Role.DISPATCHER, "hanna")
    with TestClient(app, base_url="https://testserver") as client:
        response = sign_in(client, name)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "Secure" in cookie


def test_wrong_password_says_so_and_sets_no_session(client, db_session):
    """A wrong password shows the form again with the reason, status 401, and no session cookie."""
    name = _user(db_session, Role.DISPATCHER, "wendy")
    response = sign_in(client, name, password="not it")
    assert response.status_code == 401
    assert "wrong username or password" in response.text
    assert SESSION_COOKIE not in response.cookies


def test_sign_in_form_without_its_csrf_cookie_is_refused(client, db_session):
    """The sign-in form is CSRF-protected (double submit): a post from elsewhere, without the cookie, fails."""
    name = _user(db_session, Role.DISPATCHER, "carl")
    response = client.post(
        "/login",
        data={"username": name, "password": PASSWORD, "csrf_token": "forged", "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies
    client.cookies.set(LOGIN_CSRF_COOKIE, "something-else", path="/login")
    response = client.post(
        "/login",
        data={"username": name, "password": PASSWORD, "csrf_token": "forged", "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/board", "/board"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil", "/"),
        ("", "/"),
    ],
)
def test_next_is_only_ever_a_local_path(target, expected):
    """After sign-in the server goes only to a path on itself (no open redirect)."""
    assert safe_next(target) == expected


def test_unsafe_request_needs_the_sessions_csrf_token(browser):
    """A POST with the session cookie but without (or with a wrong) CSRF token is refused with a 403 page."""
    me = browser(Role.DISPATCHER)
    no_token = me.client.post("/board/plan", data={"day": "2026-12-02"})
    assert no_token.status_code == 403 and "Reload the page" in no_token.text
    wrong = me.client.post("/board/plan", data={"day": "2026-12-02"}, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    in_form = me.client.post("/board/plan", data={"day": "2026-12-02", "csrf_token": me.csrf})
    assert in_form.status_code == 200, in_form.text
    in_header = me.post("/board/plan", data={"day": "2026-12-02"})
    assert in_header.status_code == 200 and "Planning" in in_header.text


def test_csrf_token_of_one_session_does_not_work_for_another(browser):
    """The CSRF token is bound to its session: another person's token is refused."""
    first = browser(Role.DISPATCHER)
    second = browser(Role.DISPATCHER)
    assert first.csrf and first.csrf != second.csrf
    response = second.client.post(
        "/board/plan", data={"day": "2026-12-02"}, headers={"X-CSRF-Token": first.csrf}
    )
    assert response.status_code == 403


def test_roles_each_page_states(browser):
    """The board opens for office roles; a CSFR gets a 403 page naming who may; editing needs a dispatcher."""
    csfr = browser(Role.CSFR)
    page = csfr.client.get("/board")
    assert page.status_code == 403
    assert "needs one of: admin, advisor, dispatcher, supervisor" in page.text
    advisor = browser(Role.ADVISOR)
    assert advisor.client.get("/board").status_code == 200
    refused = advisor.post("/board/plan", data={"day": "2026-12-02"})
    assert refused.status_code == 403 and "needs one of: admin, dispatcher, supervisor" in refused.text


def test_home_sends_each_role_to_its_page(browser, client):
    """`/` goes to the sign-in page without a session, to the board for office roles, a 403 page for a CSFR."""
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    dispatcher = browser(Role.DISPATCHER)
    assert dispatcher.client.get("/", follow_redirects=False).headers["location"] == "/board"
    csfr = browser(Role.CSFR)
    response = csfr.client.get("/", follow_redirects=False)
    assert response.status_code == 403
    assert "a csfr may not open this" in response.text


def test_sign_out_ends_the_session_everywhere(browser):
    """Signing out revokes the session: the same cookie no longer opens a page."""
    me = browser(Role.DISPATCHER)
    cookie = me.client.cookies.get(SESSION_COOKIE)
    response = me.client.post("/logout", data={"csrf_token": me.csrf}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    me.client.cookies.set(SESSION_COOKIE, cookie)  # a copy of the cookie kept elsewhere
    again = me.client.get("/board", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")


def test_disabled_user_loses_the_session(browser, db_session):
    """A user disabled while signed in is signed out at the next page."""
    from sqlalchemy import select

    from server.auth.models import User

    me = browser(Role.DISPATCHER)
    user = db_session.scalar(select(User).where(User.username == me.username))
    user.active = False
    db_session.flush()
    assert me.client.get("/board", follow_redirects=False).status_code == 303


def test_vendored_libraries_are_served_offline(client):
    """htmx, Leaflet, Chart.js and axe-core come from the server itself (node_modules), nothing else does."""
    for name in ("htmx.min.js", "leaflet.js", "leaflet.css", "chart.umd.min.js", "axe.min.js"):
        response = client.get(f"/web/vendor/{name}")
        assert response.status_code == 200 and len(response.content) > 1000, name
    assert client.get("/web/vendor/..%2Fpackage.json").status_code == 404
    assert client.get("/web/vendor/pouchdb-server").status_code == 404


def test_web_sessions_table_matches_its_model(fresh_engine):
    """Migration 0012 creates web_sessions exactly as the model declares it (no autogenerate drift)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from server.db import Base

    with fresh_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "web_sessions" in repr(d)] == []


def test_expired_session_on_a_form_post_returns_to_the_page_after_sign_in(client):
    """An htmx POST without a session sends the person to sign in and back to the page they were on."""
    response = client.post(
        "/board/plan",
        data={"day": "2026-12-02"},
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/board?day=2026-12-02"},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=%2Fboard%3Fday%3D2026-12-02"
