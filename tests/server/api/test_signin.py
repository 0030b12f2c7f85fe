"""Sign-in hardening: throttling, constant-time failure, password policy, security headers, CORS."""

from __future__ import annotations

import base64
import hashlib
import re
import statistics
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contracts.codes import Role
from server.auth.service import (
    authenticate,
    create_user,
    dummy_hash,
    hash_password,
    needs_rehash,
    password_problem,
)
from server.auth.throttle import SignInThrottle, ThrottleLimits
from server.config import Settings, get_settings
from server.demo.seed import DEMO_PASSWORD
from server.main import create_app
from tests.server.conftest import PASSWORD

TEMPLATES = Path(__file__).resolve().parents[3] / "server" / "web" / "templates"


@pytest.fixture
def strict(app, settings) -> Settings:
    """Settings with small sign-in limits: 3 failures a username, 5 an address, in 60 s."""
    tight = settings.model_copy(
        update={"signin_failures_per_user": 3, "signin_failures_per_address": 5, "signin_window_s": 60}
    )
    app.dependency_overrides[get_settings] = lambda: tight
    return tight


def _try(client, username: str, password: str):
    return client.post("/api/auth/token", data={"username": username, "password": password})


def test_failures_per_username_are_throttled_with_a_429(client, db_session, strict):
    """After 3 wrong passwords for one username even the right one gets a 429 with Retry-After and a
    JSON error saying when to try again (the old server let the 61st attempt in)."""
    create_user(db_session=db_session, username="dana", password=PASSWORD, role=Role.DISPATCHER)
    for _ in range(3):
        assert _try(client, "dana", "wrong password!").status_code == 401
    blocked = _try(client, "DANA ", PASSWORD)  # the same username however typed
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "too_many_attempts"
    assert "try again in" in blocked.json()["error"]["message"]
    assert 0 < int(blocked.headers["Retry-After"]) <= 60


def test_failures_per_address_are_throttled_across_usernames(client, db_session, strict):
    """Spraying many usernames from one address is stopped after 5 failures, whoever is named next."""
    create_user(db_session=db_session, username="erin", password=PASSWORD, role=Role.DISPATCHER)
    for n in range(5):
        assert _try(client, f"nobody{n}", "wrong password!").status_code == 401
    assert _try(client, "erin", PASSWORD).status_code == 429


def test_a_right_password_clears_the_username_count(client, db_session, strict):
    """Two mistakes, then the right password, then two more mistakes: still allowed (failures reset)."""
    create_user(db_session=db_session, username="finn", password=PASSWORD, role=Role.DISPATCHER)
    for _ in range(2):
        _try(client, "finn", "wrong password!")
    assert _try(client, "finn", PASSWORD).status_code == 200
    for _ in range(2):
        _try(client, "finn", "wrong password!")
    assert _try(client, "finn", PASSWORD).status_code == 200


def test_the_window_slides():
    """A failure older than the window no longer counts; the wait is until the oldest counted one expires."""
    now = [1000.0]
    throttle = SignInThrottle(clock=lambda: now[0])
    limits = ThrottleLimits(window_s=60, per_user=2, per_address=100)
    throttle.failed(username="a", address="x")
    now[0] += 30
    throttle.failed(username="a", address="x")
    assert throttle.retry_after_s(username="a", address="x", limits=limits) == 30
    now[0] += 30.5
    assert throttle.retry_after_s(username="a", address="x", limits=limits) == 0


def test_office_sign_in_page_is_throttled_too(client, db_session, strict):
    """The office sign-in form shares the throttle: after 3 failures it answers 429 saying when to retry."""
    create_user(db_session=db_session, username="gail", password=PASSWORD, role=Role.DISPATCHER)
    for _ in range(3):
        _try(client, "gail", "wrong password!")
    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    page = client.post(
        "/login",
        data={"username": "gail", "password": PASSWORD, "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    assert page.status_code == 429 and "try again in" in page.text


def test_unknown_username_costs_a_real_hash_check(db_session):
    """The dummy hash has today's parameters (so scrypt really runs: the old one had the wrong field count
    and failed at once), and an unknown username takes about as long as a known one with a wrong password."""
    assert not needs_rehash(dummy_hash())
    create_user(db_session=db_session, username="hana", password=PASSWORD, role=Role.DISPATCHER)

    def timed(username: str) -> float:
        start = time.perf_counter()
        assert authenticate(db_session=db_session, username=username, password="wrong password!") is None
        return time.perf_counter() - start

    known = statistics.median(timed("hana") for _ in range(5))
    unknown = statistics.median(timed("no-such-user") for _ in range(5))
    assert unknown > 0.5 * known, (unknown, known)


def test_outdated_hash_is_replaced_at_sign_in(client, db_session):
    """A password hashed with weaker scrypt parameters is re-hashed with today's at the next sign-in."""
    user = create_user(db_session=db_session, username="ivan", password=PASSWORD, role=Role.DISPATCHER)
    weak = hash_password(PASSWORD).replace("scrypt$16384$", "scrypt$1024$")
    salt = base64.b64decode(weak.split("$")[4])
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=1024, r=8, p=1)
    user.password_hash = "$".join([*weak.split("$")[:5], base64.b64encode(digest).decode()])
    db_session.flush()
    assert needs_rehash(user.password_hash)
    assert _try(client, "ivan", PASSWORD).status_code == 200
    db_session.refresh(user)
    assert not needs_rehash(user.password_hash)


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("short-pw1", "at least 12"),
        ("password1234", "common"),
        ("Qwerty123456", "common"),
        ("kimberly-water-2026", "username"),
    ],
)
def test_password_policy_on_new_users(client, login, password, words):
    """POST /api/users refuses a password under 12 characters, one on the shipped common list, or one
    containing the username: a 422 naming the password field and the rule."""
    admin = login(Role.ADMIN)
    resp = client.post(
        "/api/users", json={"username": "kimberly", "password": password, "role": "csfr"}, headers=admin
    )
    assert resp.status_code == 422
    fields = resp.json()["error"]["fields"]
    assert fields[0]["field"] == "password" and words in fields[0]["message"]


def test_demo_password_and_a_good_one_pass_the_policy():
    """The demo's password (13 characters) and a long passphrase pass; the list is a shipped data file."""
    assert password_problem(DEMO_PASSWORD, username="t01") is None
    assert password_problem(PASSWORD, username="dana") is None
    assert password_problem("letmein12345") is not None


def test_security_headers_on_api_and_pages(client):
    """Every answer carries nosniff, a referrer policy, no framing and a CSP allowing scripts only from
    this server; the office pages (login) carry them too."""
    for path in ("/api/health", "/login", "/api/orders"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]


def test_office_templates_have_no_inline_script():
    """The CSP forbids inline script, so no template may carry one (JSON data blocks are not scripts) nor
    an inline event handler."""
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template


def test_tile_server_is_allowed_for_images():
    """With a tile server configured the CSP admits its images (a {s} subdomain becomes a wildcard)."""
    from server.security import content_security_policy

    csp = content_security_policy(tile_url="https://{s}.tiles.example.com/{z}/{x}/{y}.png")
    assert "img-src 'self' data: blob: https://*.tiles.example.com" in csp


def _cors_app(monkeypatch, origins: str) -> TestClient:
    monkeypatch.setenv("CURBSTOP_CORS_ORIGINS", origins)
    get_settings.cache_clear()
    try:
        return TestClient(create_app(start_worker=False))
    finally:
        monkeypatch.delenv("CURBSTOP_CORS_ORIGINS")
        get_settings.cache_clear()


def test_cors_is_off_by_default(monkeypatch):
    """Without CURBSTOP_CORS_ORIGINS a preflight from another site gets no Access-Control-Allow-Origin."""
    client = _cors_app(monkeypatch, "")
    resp = client.options(
        "/api/orders",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in resp.headers


def test_cors_admits_only_the_configured_origins(monkeypatch):
    """With CURBSTOP_CORS_ORIGINS set, exactly those origins are admitted (no credentials), others not."""
    client = _cors_app(monkeypatch, "https://portal.example-water.org/, https://ops.example-water.org")
    ask = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "Authorization"}
    ok = client.options("/api/orders", headers={"Origin": "https://portal.example-water.org", **ask})
    assert ok.headers["access-control-allow-origin"] == "https://portal.example-water.org"
    assert "access-control-allow-credentials" not in ok.headers
    other = client.options("/api/orders", headers={"Origin": "https://evil.example", **ask})
    assert "access-control-allow-origin" not in other.headers
