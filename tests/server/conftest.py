"""Server fixtures: an API client bound to the test's rolled-back session, users of every role, rows."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.accounts.models import Account, Customer, ServicePoint
from server.auth.service import create_api_token, create_user
from server.config import Settings, get_settings
from server.db import get_db
from server.main import create_app
from server.meters.models import Meter
from server.technicians.models import Technician

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings isolated to this test (own var dir and signing key)."""
    return Settings(var_dir=tmp_path / "var", secret_key="test-secret-key-that-is-long-enough-for-hs256")


@pytest.fixture
def app(db_session: Session, settings: Settings):
    """The FastAPI app with its session and settings bound to this test."""
    application = create_app(start_worker=False)

    def _db() -> Iterator[Session]:
        yield db_session

    application.dependency_overrides[get_db] = _db
    application.dependency_overrides[get_settings] = lambda: settings
    return application


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    """An HTTP client for the app (no network)."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def make_service_point(db_session: Session) -> Callable[..., ServicePoint]:
    """Factory for premises."""

    def make(**kw: Any) -> ServicePoint:
        n = next(_seq)
        sp = ServicePoint(
            cis_service_point_id=kw.pop("cis_service_point_id", f"SP{n:06d}"),
            address=kw.pop("address", f"{100 + n} Elm St"),
            lat=kw.pop("lat", 38.58 + n * 1e-4),
            lon=kw.pop("lon", -121.49),
            **kw,
        )
        db_session.add(sp)
        db_session.flush()
        return sp

    return make


@pytest.fixture
def make_account(db_session: Session, make_service_point) -> Callable[..., Account]:
    """Factory for accounts (with a customer and a premise)."""

    def make(**kw: Any) -> Account:
        n = next(_seq)
        customer = Customer(cis_customer_id=f"C{n:06d}", name=kw.pop("customer_name", f"Customer {n}"))
        db_session.add(customer)
        sp = kw.pop("service_point", None) or make_service_point()
        db_session.flush()
        account = Account(
            account_number=kw.pop("account_number", f"A{n:07d}"),
            customer_id=customer.id,
            service_point_id=sp.id,
            opened_date=dt.date(2020, 1, 1),
            **kw,
        )
        db_session.add(account)
        db_session.flush()
        return account

    return make


@pytest.fixture
def make_meter(db_session: Session) -> Callable[..., Meter]:
    """Factory for meters."""

    def make(**kw: Any) -> Meter:
        n = next(_seq)
        meter = Meter(serial=kw.pop("serial", f"M{n:08d}"), size=kw.pop("size", "5/8"), **kw)
        db_session.add(meter)
        db_session.flush()
        return meter

    return make


@pytest.fixture
def make_technician(db_session: Session) -> Callable[..., Technician]:
    """Factory for technicians."""

    def make(**kw: Any) -> Technician:
        n = next(_seq)
        tech = Technician(
            code=kw.pop("code", f"T{n:03d}"),
            name=kw.pop("name", f"Tech {n}"),
            skills=kw.pop("skills", ["read", "turn_on_off"]),
            depot_lat=38.58,
            depot_lon=-121.49,
            **kw,
        )
        db_session.add(tech)
        db_session.flush()
        return tech

    return make


@pytest.fixture
def login(client: TestClient, db_session: Session) -> Callable[..., dict[str, str]]:
    """Create a user with a role and return Authorization headers for them (signed in via the API)."""

    def make(
        role: Role, *, username: str | None = None, technician: Technician | None = None
    ) -> dict[str, str]:
        name = username or f"{role.value}{next(_seq)}"
        user = create_user(db_session=db_session, username=name, password=PASSWORD, role=role)
        if technician is not None:
            technician.user_id = user.id
        db_session.flush()
        resp = client.post("/api/auth/token", data={"username": name, "password": PASSWORD})
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    return make


@pytest.fixture
def station_headers(db_session: Session) -> dict[str, str]:
    """Authorization headers carrying a docking-station API token."""
    token = create_api_token(db_session=db_session, name="dock-1", role=Role.STATION)
    return {"Authorization": f"Bearer {token}"}
