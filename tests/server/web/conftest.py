"""Web fixtures: a browser-like client signed in through the sign-in form, with its CSRF token."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.auth.service import create_user

PASSWORD = "correct horse battery"
_seq = itertools.count(1)
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]*)"')
FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class Browser:
    """A signed-in TestClient and the CSRF token its pages carry."""

    client: TestClient
    username: str
    csrf: str

    def post(self, url: str, data: dict[str, object] | None = None, **kw: object):  # type: ignore[no-untyped-def]
        """An htmx-style POST: the CSRF token in the header."""
        headers = {"X-CSRF-Token": self.csrf, "HX-Request": "true", **kw.pop("headers", {})}  # type: ignore[dict-item]
        return self.client.post(url, data=data, headers=headers, **kw)  # type: ignore[arg-type]


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next_url: str = "/"):  # type: ignore[no-untyped-def]
    """Fill in and send the sign-in form as a browser would (its CSRF cookie and hidden field)."""
    form = client.get("/login", params={"next": next_url})
    token = FORM_CSRF.search(form.text)
    assert token is not None, form.text
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1), "next": next_url},
        follow_redirects=False,
    )


@pytest.fixture
def browser(app, db_session: Session) -> Callable[..., Browser]:
    """A new client per call, signed in as a new user with `role` through the sign-in form."""
    clients: list[TestClient] = []

    def make(role: Role, *, username: str | None = None) -> Browser:
        name = username or f"web-{role.value}{next(_seq)}"
        create_user(db_session=db_session, username=name, password=PASSWORD, role=role)
        db_session.flush()
        client = TestClient(app)
        clients.append(client)
        response = sign_in(client, name)
        assert response.status_code == 303, response.text
        page = client.get("/board")
        match = META_CSRF.search(page.text)
        return Browser(client=client, username=name, csrf=match.group(1) if match else "")

    yield make
    for client in clients:
        client.close()
