"""View models over a real local Store: route, detail, field work, sign-in, settings, sync state."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contracts.codes import OrderStatus
from contracts.couch import GeoPoint, LastRead, OrderDoc
from mobile.core.demo import demo_orders
from mobile.core.detail import OrderDetailModel
from mobile.core.field import AlreadyClosed, FieldWork
from mobile.core.forms import FormInvalid, UnableForm
from mobile.core.orders import Marker
from mobile.core.route import RouteModel
from mobile.core.settings import SettingsFile, SyncSession
from mobile.core.signin import SignInModel
from mobile.core.sync_state import SyncState, SyncStatus
from mobile.platform.gps import FixedGps
from mobile.sync import Store
from tests.mobile.fakes import SESSION, FakeAuthApi

NOW = dt.datetime.now(dt.UTC)
PACIFIC = ZoneInfo("America/Los_Angeles")


@pytest.fixture
def store() -> Store:
    """An in-memory store with 10 demo orders for today."""
    s = Store()
    for order in demo_orders(10, zone=PACIFIC):
        s.put(order.to_couch())
    return s


def work_for(store: Store) -> FieldWork:
    """FieldWork with a fixed GPS fix."""
    return FieldWork(store, csfr_id="T05", device_id="tab-1", locator=FixedGps(GeoPoint(lat=1.0, lon=2.0)))


def test_route_orders_stops_and_marks_progress(store: Store) -> None:
    """Stops follow the route sequence; a local result marks done and not synced until pushed."""
    state = SyncState()
    route = RouteModel(store, state, zone=lambda: PACIFIC, position=lambda: GeoPoint(lat=39.78, lon=-89.65))
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
    route = RouteModel(store, SyncState(), zone=lambda: PACIFIC)
    route.refresh()
    state = route.states["O1003"]
    assert state.marker is Marker.CANCELLED
    detail = OrderDetailModel(state, work_for(store), zone=PACIFIC)
    detail.mark("en_route")
    assert "cancelled" in detail.message and not store.all_docs(prefix="event:")


def test_detail_facts_hazards_and_events(store: Store) -> None:
    """Detail lists facts, finds hazards in access notes, and records status events with GPS once each."""
    route = RouteModel(store, SyncState(), zone=lambda: PACIFIC)
    route.refresh()
    detail = OrderDetailModel(route.states["O1002"], work_for(store), zone=PACIFIC)
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
    assert state.label(NOW, PACIFIC) == "Sync not started · last sync never"
    state.set(SyncStatus.SYNCED, synced_at=NOW - dt.timedelta(minutes=3))
    assert state.label(NOW, PACIFIC) == "Synced · last sync 3 min ago"
    state.set(SyncStatus.ERROR, "credentials refused")
    assert state.label(NOW, PACIFIC).endswith("credentials refused")


# The utility's time zone on the tablet. The tablet's own zone (the test machine's) plays no part: the
# times below are fixed UTC instants, shown in the zone the server named.
LATE_EVENING = dt.datetime(2026, 12, 2, 7, 30, tzinfo=dt.UTC)  # 23:30 PST on Tuesday 1 December


def _store_for_two_days() -> Store:
    """Three orders planned on Tuesday 1 December (Pacific) and two on Wednesday 2 December."""
    s = Store()
    for order in demo_orders(3, day=dt.date(2026, 12, 1), zone=PACIFIC):
        s.put(order.to_couch())
    for order in demo_orders(2, day=dt.date(2026, 12, 2), zone=PACIFIC, seed=9):
        s.put(order.model_copy(update={"order_id": f"W{order.order_id}"}).to_couch())
    return s


def test_today_is_the_utility_date_and_tomorrows_orders_wait() -> None:
    """At 23:30 Pacific (07:30 UTC the next day) the route is still Tuesday's: its header names the date,
    Wednesday's orders are not on it (counted as later), and at midnight Pacific they move onto it."""
    clock = [LATE_EVENING]
    route = RouteModel(_store_for_two_days(), SyncState(), zone=lambda: PACIFIC, clock=lambda: clock[0])
    route.refresh()
    assert [s.order_id for s in route.stops] == ["O1000", "O1001", "O1002"]
    assert route.heading == "Today's route · Tuesday 1 December 2026"
    assert route.later == 2 and route.summary.endswith("2 on later days")
    assert route.zone_label == "Times in PST (America/Los_Angeles)"
    clock[0] = dt.datetime(2026, 12, 2, 8, 1, tzinfo=dt.UTC)  # 00:01 PST Wednesday
    assert route.refresh(), "a new day reloads even with no store change"
    assert route.heading == "Today's route · Wednesday 2 December 2026"
    # Tuesday's open orders stay visible (overdue), Wednesday's join them.
    assert {s.order_id for s in route.stops} == {"O1000", "O1001", "O1002", "WO1000", "WO1001"}


def test_times_on_the_tablet_are_in_the_utility_zone() -> None:
    """An 08:00-10:00 Pacific window and an arrival at 06:30 Pacific (14:30 UTC) show as 08:00 and 06:30
    with PST named, whatever zone the tablet itself is set to."""
    store = Store()
    order = demo_orders(1, day=dt.date(2026, 12, 1), zone=PACIFIC)[0]
    order = order.model_copy(update={"planned_arrival_at": dt.datetime(2026, 12, 1, 14, 30, tzinfo=dt.UTC)})
    store.put(order.to_couch())
    clock = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)
    route = RouteModel(store, SyncState(), zone=lambda: PACIFIC, clock=lambda: clock)
    route.refresh()
    stop = route.stops[0]
    assert stop.planned_label == "06:30" and stop.window_label == "08:00-10:00"
    work = FieldWork(store, csfr_id="T05", device_id="tab-1", clock=lambda: clock)
    detail = OrderDetailModel(route.states[order.order_id], work, zone=PACIFIC)
    assert ("Window", "08:00-10:00 PST") in detail.facts()
    detail.mark("en_route")
    assert detail.message == "En route at 08:00 PST"
    assert detail.status_times()[0] == ("En route", "08:00 PST (no GPS fix)")
    state = SyncState()
    state.set(SyncStatus.OFFLINE, synced_at=clock - dt.timedelta(hours=2))
    assert state.label(clock, PACIFIC) == "Offline · last sync 06:00 PST"


def test_session_carries_the_utility_zone(tmp_path: Path) -> None:
    """The server's session answer must name the zone; an unknown zone is refused naming it; a session
    remembered without one (an older app) signs the rep out, keeping the server and user name."""
    answer = {
        "couchdb_url": "http://couch.test/",
        "database": "csfr-t05",
        "username": "csfr-t05",
        "password": "pw",
        "technician_id": 5,
        "technician_code": "T05",
        "time_zone": "America/Chicago",
    }
    assert SyncSession.from_json(answer).time_zone == "America/Chicago"
    with pytest.raises(ValueError, match="lacks time_zone"):
        SyncSession.from_json({k: v for k, v in answer.items() if k != "time_zone"})
    with pytest.raises(ValueError, match="'Mars/Olympus' is unknown on this tablet"):
        SyncSession.from_json({**answer, "time_zone": "Mars/Olympus"})
    file = SettingsFile(tmp_path / "settings.json")
    settings = file.load()
    settings.username, settings.session = "t05", SyncSession.from_json(answer)
    file.save(settings)
    assert file.load().zone.key == "America/Chicago"
    old = json.loads(file.path.read_text())
    del old["session"]["time_zone"]
    file.path.write_text(json.dumps(old))
    again = file.load()
    assert not again.signed_in and again.username == "t05" and again.server_url == settings.server_url


def test_last_reads_are_dated_by_the_utility_calendar() -> None:
    """A read taken at 19:00 Pacific on 21 October (02:00 UTC on the 22nd) is listed as 2026-10-21."""
    order = demo_orders(1, day=dt.date(2026, 12, 1), zone=PACIFIC)[0]
    evening = dt.datetime(2026, 10, 22, 2, 0, tzinfo=dt.UTC)
    meter = order.meters[0].model_copy(
        update={"last_reads": [LastRead(value=34_344, read_at=evening)], "last_read_at": evening}
    )
    store = Store()
    store.put(order.model_copy(update={"meters": [meter]}).to_couch())
    route = RouteModel(store, SyncState(), zone=lambda: PACIFIC, clock=lambda: LATE_EVENING)
    route.refresh()
    detail = OrderDetailModel(route.states[order.order_id], work_for(store), zone=PACIFIC)
    assert detail.meters()[0].last_reads == ["34,344 gal 2026-10-21"]
