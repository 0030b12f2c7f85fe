"""View models over a real local Store: route, detail, field work, sign-in, settings, sync state."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from contracts.codes import OrderStatus
from contracts.couch import GeoPoint, OrderDoc
from mobile.core.demo import demo_orders
from mobile.core.detail import OrderDetailModel
from mobile.core.field import AlreadyClosed, FieldWork
from mobile.core.forms import FormInvalid, UnableForm
from mobile.core.orders import Marker
from mobile.core.route import RouteModel
from mobile.core.settings import SettingsFile
from mobile.core.signin import SignInModel
from mobile.core.sync_state import SyncState, SyncStatus
from mobile.platform.gps import FixedGps
from mobile.sync import Store
from tests.mobile.fakes import SESSION, FakeAuthApi

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def store() -> Store:
    """An in-memory store with 10 demo orders for today."""
    s = Store()
    for order in demo_orders(10):
        s.put(order.to_couch())
    return s


def work_for(store: Store) -> FieldWork:
    """FieldWork with a fixed GPS fix."""
    return FieldWork(store, csfr_id="T05", device_id="tab-1", locator=FixedGps(GeoPoint(lat=1.0, lon=2.0)))


def test_route_orders_stops_and_marks_progress(store: Store) -> None:
    """Stops follow the route sequence; a local result marks done and not synced until pushed."""
    state = SyncState()
    route = RouteModel(store, state, position=lambda: GeoPoint(lat=39.78, lon=-89.65))
    assert route.refresh()
    assert [s.sequence_no for s in route.stops] == list(range(1, 11))
    assert route.stops[0].distance_m is not None and route.stops[0].window_label
    assert not route.refresh(), "nothing changed: no reload"
    order = route.states["O1001"].order
    work_for(store).complete(order, UnableForm(order=order, code="dog", notes="Dog loose in yard"))
    route.refresh()
    done = next(s for s in route.stops if s.order_id == "O1001")
    assert done.marker is Marker.FAILED and done.unsynced
    assert "1 unable" in route.summary and "1 not synced" in route.summary
    state.pushed_seq = store.update_seq
    route.refresh(force=True)
    assert not next(s for s in route.stops if s.order_id == "O1001").unsynced


def test_cancelled_order_shows_cancelled_and_refuses_work(store: Store) -> None:
    """A server-cancelled order (payment pulled the cut) is marked cancelled and takes no status events."""
    doc = store.get("order:O1003")
    doc["status"] = OrderStatus.CANCELLED.value
    store.put(doc)
    route = RouteModel(store, SyncState())
    route.refresh()
    state = route.states["O1003"]
    assert state.marker is Marker.CANCELLED
    detail = OrderDetailModel(state, work_for(store))
    detail.mark("en_route")
    assert "cancelled" in detail.message and not store.all_docs(prefix="event:")


def test_detail_facts_hazards_and_events(store: Store) -> None:
    """Detail lists facts, finds hazards in access notes, and records status events with GPS once each."""
    route = RouteModel(store, SyncState())
    route.refresh()
    detail = OrderDetailModel(route.states["O1002"], work_for(store))
    assert ("Reason", "Move-out: final read requested") in detail.facts()
    assert "dog" in detail.hazards()
    assert detail.meters()[0].expected.count("-") == 1
    detail.mark("en_route")
    detail.mark("on_site")
    kinds = sorted(r["doc"]["kind"] for r in store.all_docs(prefix="event:", include_docs=True))
    assert kinds == ["en_route", "on_site"]
    assert detail.marker is Marker.ON_SITE
    assert [label for label, _ in detail.status_times()] == ["En route", "On site"]


def test_results_are_written_once_and_closed_orders_refuse(store: Store) -> None:
    """A result is one first revision; an invalid form writes nothing; a closed order refuses another."""
    order = OrderDoc.from_couch(store.get("order:O1000"))
    work = work_for(store)
    with pytest.raises(FormInvalid):
        work.complete(order, UnableForm(order=order))
    assert not store.all_docs(prefix="result:")
    result = work.complete(order, UnableForm(order=order, code="locked_gate", notes="Gate locked"))
    doc = store.get(result.doc_id())
    assert doc["_rev"].startswith("1-") and doc["fields"]["gps"] == {"lat": 1.0, "lon": 2.0}
    assert doc["order_version"] == 1 and doc["csfr_id"] == "T05"
    with pytest.raises(AlreadyClosed):
        work.complete(order, UnableForm(order=order, code="dog", notes="again"), already_closed=True)


def test_sign_in_remembers_session_not_password(tmp_path: Path) -> None:
    """Sign-in validates the form, keeps the session in the settings file (0600) and not the password."""
    file = SettingsFile(tmp_path / "settings.json")
    settings = file.load()
    model = SignInModel(FakeAuthApi(), settings, file)
    model.server_url = "dispatch.test"
    assert not model.sign_in("x") and "http://" in model.error
    model.server_url, model.username = "http://dispatch.test/", "csfr5"
    assert not model.sign_in("wrong") and model.error == "User name or password is wrong"
    assert model.sign_in("field-pass")
    again = file.load()
    assert again.session == SESSION and again.server_url == "http://dispatch.test"
    assert again.device_id == settings.device_id
    assert "field-pass" not in file.path.read_text()
    assert (file.path.stat().st_mode & 0o777) == 0o600
    model.sign_out()
    assert not file.load().signed_in


def test_sync_state_label() -> None:
    """The sync line says the state and how long ago the last sync was."""
    state = SyncState()
    assert state.label(NOW) == "Sync not started · last sync never"
    state.set(SyncStatus.SYNCED, synced_at=NOW - dt.timedelta(minutes=3))
    assert state.label(NOW) == "Synced · last sync 3 min ago"
    state.set(SyncStatus.ERROR, "credentials refused")
    assert state.label(NOW).endswith("credentials refused")
