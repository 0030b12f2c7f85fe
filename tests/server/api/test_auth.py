"""Sign-in, tokens and role checks."""

import datetime as dt

import jwt
import pytest

from contracts.codes import Role
from server.auth.service import create_user, hash_password, verify_password
from tests.server.conftest import PASSWORD


def test_password_hash_round_trip():
    """A scrypt hash verifies its own password and rejects another."""
    stored = hash_password("s3cret-pass")
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("s3cret-pasS", stored)
    assert not verify_password("x", "not-a-hash")


def test_sign_in_and_me(client, db_session):
    """The OAuth2 password flow returns a bearer token that /me resolves to the user and role."""
    create_user(db_session=db_session, username="dana", password=PASSWORD, role=Role.DISPATCHER)
    resp = client.post("/api/auth/token", data={"username": "dana", "password": PASSWORD})
    assert resp.status_code == 200
    token = resp.json()["access_token"]
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["name"] == "dana" and me["role"] == "dispatcher"


def test_wrong_password_is_401_with_json_error(client, db_session):
    """A bad password is a 401 whose JSON says what is wrong, not which half."""
    create_user(db_session=db_session, username="dana", password=PASSWORD, role=Role.DISPATCHER)
    resp = client.post("/api/auth/token", data={"username": "dana", "password": "nope"})
    assert resp.status_code == 401
    assert resp.json()["error"]["message"] == "wrong username or password"


def test_no_token_and_garbage_token_are_401(client):
    """Missing and malformed tokens are rejected with a message saying what to send."""
    assert client.get("/api/orders").status_code == 401
    assert "sign in" in client.get("/api/orders").json()["error"]["message"]
    bad = client.get("/api/orders", headers={"Authorization": "Bearer abc.def.ghi"})
    assert bad.status_code == 401


def test_expired_token_is_401(client, db_session, settings):
    """A token past its expiry is refused with 'expired'."""
    user = create_user(db_session=db_session, username="old", password=PASSWORD, role=Role.ADMIN)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    token = jwt.encode(
        {"sub": str(user.id), "exp": int(past.timestamp())}, settings.resolved_secret_key(), "HS256"
    )
    resp = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401 and "expired" in resp.json()["error"]["message"]


def test_disabled_user_token_stops_working(client, db_session, login):
    """Disabling a user invalidates their outstanding tokens."""
    headers = login(Role.DISPATCHER, username="leaver")
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    from server.auth.models import User

    user = db_session.query(User).filter_by(username="leaver").one()
    user.active = False
    db_session.flush()
    assert client.get("/api/auth/me", headers=headers).status_code == 401


def test_api_token_life_cycle(client, login):
    """An admin mints a station token; it authenticates as a station until revoked."""
    admin = login(Role.ADMIN)
    created = client.post("/api/tokens", json={"name": "dock-7", "role": "station"}, headers=admin)
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("cs_")
    station = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/me", headers=station).json()["role"] == "station"
    listed = client.get("/api/tokens", headers=admin).json()
    assert token not in str(listed) and listed[0]["prefix"] == token[:10]
    assert client.delete(f"/api/tokens/{created.json()['id']}", headers=admin).status_code == 204
    assert client.get("/api/auth/me", headers=station).status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/users", {Role.ADMIN}),
        ("GET", "/api/tokens", {Role.ADMIN}),
        ("GET", "/api/orders", {Role.DISPATCHER, Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN, Role.CSFR}),
        ("GET", "/api/technicians", {Role.DISPATCHER, Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN}),
        ("GET", "/api/accounts", {Role.DISPATCHER, Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN}),
        ("GET", "/api/meters", {Role.DISPATCHER, Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN}),
    ],
)
def test_role_matrix_for_listings(client, login, station_headers, method, path, allowed):
    """Each listing admits exactly its roles; the others get a 403 naming who may."""
    for role in Role:
        headers = station_headers if role is Role.STATION else login(role)
        resp = client.request(method, path, headers=headers)
        if role in allowed:
            assert resp.status_code == 200, (role, resp.text)
        else:
            assert resp.status_code == 403, (role, resp.text)
            assert "needs one of" in resp.json()["error"]["message"]


def test_openapi_docs_served(client):
    """The OpenAPI document and the /docs page are served."""
    assert client.get("/openapi.json").json()["info"]["title"] == "Curbstop"
    assert client.get("/docs").status_code == 200
