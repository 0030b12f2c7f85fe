"""Every failure is a JSON error a person can act on: 500s with a request id, 409s without constraint names,
NUL characters and out-of-range ids refused by name, forged token subjects refused."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from fastapi.testclient import TestClient

from contracts.codes import Role
from server.auth.models import User
from server.auth.service import create_user
from tests.server.conftest import PASSWORD


def test_server_error_is_json_with_a_request_id_and_no_trace(app):
    """An unexpected exception answers 500 with the JSON error shape and the request id (also in the
    X-Request-ID header), never the exception's text or a trace."""

    @app.get("/api/test-boom")
    def boom() -> None:
        raise RuntimeError("secret detail: gate code 4417")

    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/api/test-boom", headers={"X-Request-ID": "req-abc.123"})
    assert resp.status_code == 500
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == "server_error" and error["request_id"] == "req-abc.123"
    assert "req-abc.123" in error["message"]
    assert "4417" not in resp.text and "Traceback" not in resp.text
    assert resp.headers["X-Request-ID"] == "req-abc.123"


def test_every_error_carries_a_request_id(client):
    """A 401 and a 404 carry a request id in body and header; an insane incoming id is replaced."""
    resp = client.get("/api/orders", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.status_code == 401
    rid = resp.json()["error"]["request_id"]
    assert rid != "bad id with spaces" and resp.headers["X-Request-ID"] == rid
    assert client.get("/api/nothing-here").json()["error"]["request_id"]


def test_integrity_error_is_a_409_in_words_without_the_constraint_name(app, db_session):
    """A unique-constraint violation answers 409 saying a record with the same field exists and naming
    the field, never the constraint (uq_users_username) or the database's own message."""
    create_user(db_session=db_session, username="dup", password=PASSWORD, role=Role.DISPATCHER)

    @app.post("/api/test-dup")
    def dup() -> None:
        db_session.add(User(username="dup", role="dispatcher", password_hash="x"))
        db_session.flush()

    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post("/api/test-dup")
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "integrity_error"
    assert "already exists" in error["message"] and "username" in error["message"]
    assert "uq_" not in resp.text and "constraint" not in resp.text.lower()
    assert error["fields"][0]["field"] == "username"


@pytest.mark.parametrize(
    ("method", "path", "kw", "field"),
    [
        ("post", "/api/technicians", {"json": {"code": "T9", "name": "A\u0000B", "skills": []}}, "name"),
        ("get", "/api/orders", {"params": {"status": "open\u0000"}}, "query.status"),
    ],
)
def test_nul_character_is_a_422_naming_the_field(client, login, method, path, kw, field):
    """A NUL character in a JSON field or a query parameter is refused with a 422 naming it (PostgreSQL
    cannot store it: it used to be a 500 there and was stored silently on SQLite)."""
    headers = login(Role.ADMIN)
    if method == "post":
        kw["json"].update({"depot_lat": 38.5, "depot_lon": -121.4})
    resp = getattr(client, method)(path, headers=headers, **kw)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["fields"][0]["field"] == field
    assert "NUL" in resp.json()["error"]["message"]


@pytest.mark.parametrize("ident", [2**31, 2**63, 2**70])
def test_ids_beyond_the_database_range_are_404(client, login, ident):
    """A path id above 2^31 - 1 (PostgreSQL integer) or 2^63 (SQLite) is a 404 naming it, not a 500."""
    headers = login(Role.ADMIN)
    for path in (f"/api/technicians/{ident}", f"/api/orders/{ident}", f"/api/users/{ident}/enable"):
        method = client.post if path.endswith("enable") else client.get
        resp = method(path, headers=headers)
        assert resp.status_code == 404, (path, resp.text)
        assert str(ident) in resp.json()["error"]["message"]


def test_ids_beyond_range_in_a_body_or_query_are_422(client, login):
    """An id field in a JSON body or query beyond the database's range is a 422 naming the field."""
    headers = login(Role.ADMIN)
    resp = client.get("/api/orders", params={"technician_id": 2**40}, headers=headers)
    assert resp.status_code == 422 and resp.json()["error"]["fields"][0]["field"] == "query.technician_id"
    body = {"name": "x", "role": "station", "user_id": 2**40}
    resp = client.post("/api/tokens", json=body, headers=headers)
    assert resp.status_code == 422 and resp.json()["error"]["fields"][0]["field"] == "user_id"


@pytest.mark.parametrize("sub", ["abc", "1e3", " 1", "-1", "99999999999", "١"])
def test_token_whose_sub_is_not_an_id_is_401(client, settings, sub):
    """A correctly signed token whose `sub` is not a database id is a 401, not a 500."""
    exp = int((dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).timestamp())
    token = jwt.encode({"sub": sub, "exp": exp}, settings.resolved_secret_key(), "HS256")
    resp = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"
