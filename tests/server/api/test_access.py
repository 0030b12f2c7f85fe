"""Access that can be taken away: disabling a user or deactivating a technician revokes everything at once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from contracts.codes import Role
from server.auth.models import User
from server.auth.service import create_api_token
from server.config import Settings, get_settings
from server.sync import service as sync_service
from server.sync.couch import CouchConfig
from server.web import service as web_service
from tests.server.conftest import PASSWORD


def _user(db_session, username: str) -> User:
    user = db_session.scalar(select(User).where(User.username == username))
    assert user is not None
    return user


def _sign_in(client, username: str) -> httpx.Response:
    return client.post("/api/auth/token", data={"username": username, "password": PASSWORD})


def test_disable_user_revokes_tokens_api_tokens_and_sessions(client, db_session, login):
    """POST /api/users/{id}/disable: the user's sign-in token, their API token and their browser session
    stop working at once, and they cannot sign in; enabling them lets them sign in again but the old
    token stays dead (the token generation moved on)."""
    admin = login(Role.ADMIN)
    headers = login(Role.DISPATCHER, username="leaver")
    user = _user(db_session, "leaver")
    api_token = create_api_token(
        db_session=db_session, name="leaver-script", role=Role.DISPATCHER, user_id=user.id
    )
    cookie = web_service.start_session(db_session=db_session, user=user, lifetime_minutes=60)
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {api_token}"}).status_code == 200

    resp = client.post(f"/api/users/{user.id}/disable", headers=admin)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["active"] is False
    assert body["api_tokens_revoked"] == 1 and body["sessions_ended"] == 1
    assert body["couchdb_user"] == "no technician"

    assert client.get("/api/auth/me", headers=headers).status_code == 401
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {api_token}"}).status_code == 401
    assert web_service.principal_of(db_session=db_session, token=cookie) is None
    assert _sign_in(client, "leaver").status_code == 401

    assert client.post(f"/api/users/{user.id}/enable", headers=admin).json()["active"] is True
    assert client.get("/api/auth/me", headers=headers).status_code == 401  # issued before: still dead
    fresh = _sign_in(client, "leaver")
    assert fresh.status_code == 200
    again = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    assert client.get("/api/auth/me", headers=again).status_code == 200


def test_only_an_admin_disables_and_not_themself(client, db_session, login):
    """A supervisor may not disable anyone (403); an admin may not disable their own account (409);
    an unknown or out-of-range id is a 404."""
    admin = login(Role.ADMIN, username="root2")
    supervisor = login(Role.SUPERVISOR)
    me = _user(db_session, "root2")
    assert client.post(f"/api/users/{me.id}/disable", headers=supervisor).status_code == 403
    own = client.post(f"/api/users/{me.id}/disable", headers=admin)
    assert own.status_code == 409 and "yourself" in own.json()["error"]["message"]
    assert client.post("/api/users/999999/disable", headers=admin).status_code == 404
    assert client.post(f"/api/users/{2**40}/disable", headers=admin).status_code == 404


def test_deleting_a_technician_shuts_out_their_csfr(client, db_session, login, make_technician):
    """DELETE /api/technicians/{id}: the CSFR's token stops working at once, they cannot sign in again,
    and /api/sync/session refuses them (it no longer re-provisions their CouchDB user)."""
    tech = make_technician()
    csfr = login(Role.CSFR, username="t03", technician=tech)
    dispatcher = login(Role.DISPATCHER)
    assert client.get("/api/auth/me", headers=csfr).status_code == 200

    assert client.delete(f"/api/technicians/{tech.id}", headers=dispatcher).status_code == 204
    assert client.get("/api/auth/me", headers=csfr).status_code == 401
    assert client.get("/api/sync/session", headers=csfr).status_code == 401
    assert _sign_in(client, "t03").status_code == 401
    assert _user(db_session, "t03").active is False


def test_deactivating_by_patch_also_revokes(client, db_session, login, make_technician):
    """PATCH active=false on a technician revokes their CSFR's access like DELETE does."""
    tech = make_technician()
    csfr = login(Role.CSFR, username="t04", technician=tech)
    staff = login(Role.SUPERVISOR)
    etag = client.get(f"/api/technicians/{tech.id}", headers=staff).headers["ETag"]
    resp = client.patch(
        f"/api/technicians/{tech.id}", json={"active": False}, headers={**staff, "If-Match": etag}
    )
    assert resp.status_code == 200, resp.text
    assert client.get("/api/auth/me", headers=csfr).status_code == 401


def test_sync_session_refuses_a_deactivated_technician(client, db_session, login, make_technician):
    """A CSFR whose user was enabled again while their technician stays deactivated gets a 403 naming
    the technician from /api/sync/session, not a fresh CouchDB user."""
    tech = make_technician()
    csfr = login(Role.CSFR, technician=tech)
    tech.active = False
    db_session.flush()
    resp = client.get("/api/sync/session", headers=csfr)
    assert resp.status_code == 403
    assert tech.code in resp.json()["error"]["message"] and "deactivated" in resp.json()["error"]["message"]


@pytest.fixture(scope="module")
def couch(tmp_path_factory) -> Iterator[CouchConfig]:
    """A pouchdb-server for this module (or COUCHDB_URL), as an admin config."""
    from mobile.sync.devserver import from_url, start_pouchdb_server

    if os.environ.get("COUCHDB_URL"):
        found = from_url(os.environ["COUCHDB_URL"])
        yield CouchConfig(url=found.url, username=found.username, password=found.password)
        return
    server = start_pouchdb_server(data_dir=tmp_path_factory.mktemp("pouch"))
    try:
        yield CouchConfig(url=server.url, username=server.username, password=server.password)
    finally:
        server.stop()


@pytest.mark.couchdb
def test_disabling_a_csfr_removes_their_couchdb_user(
    client, app, db_session, login, couch, make_technician, settings
):
    """With CouchDB configured, disabling a CSFR removes their CouchDB user: the credentials their tablet
    got from /api/sync/session stop working at once (401 from CouchDB); the database stays."""
    configured = Settings(
        var_dir=settings.var_dir,
        secret_key=settings.secret_key,
        couchdb_url=couch.url.replace("://", f"://{couch.username}:{couch.password}@"),
    )
    app.dependency_overrides[get_settings] = lambda: configured
    tech = make_technician(code=f"D{uuid.uuid4().hex[:8]}")
    csfr = login(Role.CSFR, username="t05", technician=tech)
    admin = login(Role.ADMIN)
    session = client.get("/api/sync/session", headers=csfr).json()
    url = f"{session['couchdb_url']}/{session['database']}"
    with httpx.Client(auth=(session["username"], session["password"]), timeout=10) as tablet:
        assert tablet.get(url).status_code == 200
        resp = client.post(f"/api/users/{_user(db_session, 't05').id}/disable", headers=admin)
        assert resp.json()["couchdb_user"] == "removed"
        assert tablet.get(url).status_code == 401
    assert client.get("/api/sync/session", headers=csfr).status_code == 401
    assert sync_service.database_for(tech) == session["database"]


@pytest.mark.couchdb
def test_sync_session_names_the_public_couchdb_url(client, app, login, couch, make_technician, settings):
    """With CURBSTOP_COUCHDB_PUBLIC_URL set (CouchDB behind a proxy, not published), the sync session
    sends tablets there instead of the server's own COUCHDB_URL host."""
    configured = Settings(
        var_dir=settings.var_dir,
        secret_key=settings.secret_key,
        couchdb_url=couch.url.replace("://", f"://{couch.username}:{couch.password}@"),
        couchdb_public_url="https://sync.example-water.org/",
    )
    app.dependency_overrides[get_settings] = lambda: configured
    tech = make_technician(code=f"P{uuid.uuid4().hex[:8]}")
    body = client.get("/api/sync/session", headers=login(Role.CSFR, technician=tech)).json()
    assert body["couchdb_url"] == "https://sync.example-water.org"
