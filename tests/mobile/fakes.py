"""Named fakes and builders shared by the mobile tests (the real store, a fake sign-in server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from contracts.couch import GeoPoint
from mobile.core.demo import demo_orders
from mobile.core.localtime import load_zone
from mobile.core.settings import SettingsFile, SyncSession
from mobile.core.signin import SignInError
from mobile.platform.gps import FixedGps
from mobile.services import Services, build_services
from mobile.sync import Store

SESSION = SyncSession(
    couchdb_url="http://127.0.0.1:9",
    database="csfr-t05",
    username="csfr-t05",
    password="pw",
    technician_id=5,
    technician_code="T05",
    time_zone="America/Los_Angeles",
)


class FakeAuthApi:
    """Fake of the server's sign-in (named as such): accepts one user, answers a fixed session."""

    def __init__(self, session: SyncSession = SESSION, password: str = "field-pass") -> None:
        self.session = session
        self.password = password
        self.calls: list[tuple[str, str]] = []

    def sign_in(self, server_url: str, username: str, password: str) -> SyncSession:
        """Accept `csfr5` / the password."""
        self.calls.append((server_url, username))
        if username != "csfr5" or password != self.password:
            raise SignInError("User name or password is wrong")
        return self.session


FIXED_NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


def make_services(
    tmp: Path,
    *,
    orders: int = 0,
    signed_in: bool = True,
    session: SyncSession = SESSION,
    auth: FakeAuthApi | None = None,
) -> Services:
    """Services over a real Store in `tmp`, a fixed GPS, demo orders for today."""
    store = Store(tmp / "tablet.sqlite")
    for order in demo_orders(orders, zone=load_zone(session.time_zone)):
        store.put(order.to_couch())
    settings_file = SettingsFile(tmp / "settings.json")
    settings = settings_file.load()
    if signed_in:
        settings.username = "csfr5"
        settings.session = session
        settings_file.save(settings)
    return build_services(
        store=store,
        settings_file=settings_file,
        auth_api=auth or FakeAuthApi(session),
        gps=FixedGps(GeoPoint(lat=39.7817, lon=-89.6501, accuracy_m=8)),
    )
