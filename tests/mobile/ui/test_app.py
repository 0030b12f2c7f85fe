"""The real field app under Xvfb: every screen and flow driven by taps and typing, with screenshots.

Screenshots go to test-artifacts/screenshots/<name>.png (docs/mobile.md).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contracts.couch import ResultDoc
from mobile.core.orders import Marker
from tests.mobile.fakes import FakeAuthApi, make_services

pytestmark = pytest.mark.ui


def results_for(services: Any, order_id: str) -> list[ResultDoc]:
    """ResultDocs in the local store for one order."""
    rows = services.store.all_docs(include_docs=True, prefix=f"result:{order_id}:")
    return [ResultDoc.from_couch(r["doc"]) for r in rows]


def stop(services: Any, order_id: str) -> Any:
    """The route model's stop for an order."""
    return next(s for s in services.route.stops if s.order_id == order_id)


def open_order(driver: Any, order_id: str) -> Any:
    """Tap the order's row in the route list (it must be on screen)."""
    driver.nav.show("route")
    driver.pump(4)
    rows = [
        w for w in driver.screen.ids.stops.children[0].children if getattr(w, "order_id", None) == order_id
    ]
    assert rows, f"{order_id} is not on screen"
    driver.tap(rows[0])
    assert driver.screen.name == "order"
    return driver.screen


def test_sign_in_is_validated_and_remembered(tmp_path: Path, make_driver: Any) -> None:
    """A wrong password shows the server's reason; the right one opens the route and is remembered."""
    auth = FakeAuthApi()
    services = make_services(tmp_path, orders=5, signed_in=False, auth=auth)
    driver = make_driver(services)
    screen = driver.screen
    assert screen.name == "signin"
    driver.type(screen.ids.server, "http://dispatch.test")
    driver.type(screen.ids.username, "csfr5")
    driver.shot("01-sign-in")
    driver.tap(screen.ids.submit)
    assert screen.error == "Enter your password"
    driver.type(screen.ids.password, "nope")
    driver.tap(screen.ids.submit)
    driver.wait_until(lambda: not screen.busy and screen.error != "")
    assert screen.error == "User name or password is wrong"
    driver.shot("02-sign-in-error")
    driver.type(screen.ids.password, "field-pass")
    driver.tap(screen.ids.submit)
    driver.wait_until(lambda: driver.screen.name == "route")
    remembered = services.settings_file.load()
    assert remembered.session is not None and remembered.session.technician_code == "T05"
    assert remembered.server_url == "http://dispatch.test"
    assert "password" not in services.settings_file.path.read_text().replace('"password": "pw"', "")


def test_route_list_and_map(tmp_path: Path, make_driver: Any) -> None:
    """The route lists stops in planned order with badges and markers; the map draws them."""
    services = make_services(tmp_path, orders=14)
    driver = make_driver(services)
    assert driver.screen.name == "route"
    assert [s.order_id for s in services.route.stops][:3] == ["O1000", "O1001", "O1002"]
    assert "14 stops" in driver.screen.summary
    # The header names the utility's date and zone (the session's America/Los_Angeles), not the tablet's.
    pacific = ZoneInfo("America/Los_Angeles")
    today = dt.datetime.now(pacific).date()
    abbr = dt.datetime.combine(today, dt.time(12), tzinfo=pacific).tzname()
    assert driver.screen.heading == f"Today's route · {today:%A} {today.day} {today:%B %Y}"
    assert driver.screen.who == f"T05 · csfr5 · Times in {abbr} (America/Los_Angeles)"
    driver.shot("03-route")
    driver.tap(driver.screen.ids.map_button)
    assert driver.screen.name == "route_map"
    assert len(driver.screen.ids.canvas._placed) == 14
    driver.shot("04-route-map")
    driver.tap(driver.screen.ids.back)
    assert driver.screen.name == "route"


def test_reread_flow_with_out_of_range_confirmation(tmp_path: Path, make_driver: Any) -> None:
    """En route and on site are recorded with GPS; a bad digit count is refused; out of range needs re-entry."""
    services = make_services(tmp_path, orders=7)
    driver = make_driver(services)
    screen = open_order(driver, "O1000")
    driver.tap(screen.ids.en_route)
    driver.tap(screen.ids.on_site)
    events = services.store.all_docs(include_docs=True, prefix="event:")
    assert sorted(e["doc"]["kind"] for e in events) == ["en_route", "on_site"]
    assert all(e["doc"]["gps"]["lat"] == pytest.approx(39.7817) for e in events)
    driver.shot("05-order-detail")
    driver.tap(screen.ids.complete)
    flow = driver.screen
    assert flow.name == "reread"
    driver.type(flow.ids.reading, "1234567")
    driver.tap(flow.ids.save)
    assert "6 dials" in flow.ids.row_reading.error
    meter = services.route.states["O1000"].order.meters[0]
    far = str(int(meter.expected_high) + 50000)
    driver.type(flow.ids.reading, far)
    assert flow.needs_confirm
    driver.tap(flow.ids.save)
    assert "enter the reading again" in flow.ids.row_reading_confirm.error
    assert flow.ids.row_photos.error == "Take a photo of the register"
    driver.shot("06-reread-confirm")
    driver.type(flow.ids.reading_confirm, far)
    driver.tap(flow.ids.photo)
    driver.shot("07-reread-ready")
    driver.tap(flow.ids.save)
    assert driver.screen.name == "route"
    [result] = results_for(services, "O1000")
    assert result.readings[0].value == float(far)
    assert result.fields["reading_confirmed_out_of_range"] is True
    assert result.photos and result.photos[0].attachment.endswith(".png")
    row = stop(services, "O1000")
    assert row.marker is Marker.DONE and row.unsynced
    driver.shot("08-route-after-reread")


def test_shut_off_flow_requires_seal_and_door_hanger(tmp_path: Path, make_driver: Any) -> None:
    """A non-pay shut-off needs the valve closed, a seal number and a door hanger when nobody is home."""
    services = make_services(tmp_path, orders=7)
    driver = make_driver(services)
    screen = open_order(driver, "O1003")
    driver.tap(screen.ids.complete)
    flow = driver.screen
    assert flow.name == "service"
    driver.tap(flow.ids.save)
    assert flow.ids.row_seal_number.error == "Enter the lock or seal number you fitted"
    assert "curb stop" in flow.ids.row_curb_stop_position.error
    assert flow.ids.row_door_hanger_left.error
    driver.shot("09-shut-off-errors")
    meter = services.route.states["O1003"].order.meters[0]
    driver.type(flow.ids.reading, str(int(meter.expected_low) + 10))
    driver.tap(flow.ids.position_closed)
    driver.type(flow.ids.seal_number, "s-88121")
    driver.tap(flow.ids.door_hanger.children[-1])  # the checkbox
    driver.shot("10-shut-off-ready")
    driver.tap(flow.ids.save)
    assert driver.screen.name == "route"
    [result] = results_for(services, "O1003")
    assert result.fields["seal_number"] == "S-88121"
    assert result.fields["curb_stop_position"] == "closed"
    assert result.fields["door_hanger_left"] is True


def test_turn_on_flow(tmp_path: Path, make_driver: Any) -> None:
    """A turn-on leaves the curb stop open and records who was home."""
    services = make_services(tmp_path, orders=7)
    driver = make_driver(services)
    screen = open_order(driver, "O1001")
    driver.tap(screen.ids.complete)
    flow = driver.screen
    meter = services.route.states["O1001"].order.meters[0]
    driver.type(flow.ids.reading, str(int(meter.expected_low) + 10))
    driver.tap(flow.ids.position_open)
    driver.tap(flow.ids.someone_home.children[-1])
    driver.shot("11-turn-on")
    driver.tap(flow.ids.save)
    [result] = results_for(services, "O1001")
    assert result.fields["curb_stop_position"] == "open" and result.fields["someone_home"] is True


def test_meter_test_flow_computes_accuracy(tmp_path: Path, make_driver: Any) -> None:
    """Accuracy is shown per point as volumes are typed; a failing meter is recommended for replacement."""
    services = make_services(tmp_path, orders=7)
    driver = make_driver(services)
    screen = open_order(driver, "O1005")
    driver.tap(screen.ids.complete)
    flow = driver.screen
    assert flow.name == "meter_test"
    for point, meter_gal in (("low", "9.5"), ("intermediate", "9.9"), ("high", "10.4")):
        driver.type(flow.ids[f"meter_{point}"], meter_gal)
        driver.type(flow.ids[f"ref_{point}"], "10")
    assert "FAILED" in flow.verdict and "replace" in flow.verdict
    assert flow.low_result.startswith("95.0%  PASS")
    assert "FAIL" in flow.high_result
    driver.shot("12-meter-test")
    driver.tap(flow.ids.save)
    [result] = results_for(services, "O1005")
    assert result.fields["passed"] is False
    assert result.fields["recommendation"] == "replace"
    assert [p["accuracy_pct"] for p in result.fields["points"]] == [95.0, 99.0, 104.0]


def test_investigation_flow(tmp_path: Path, make_driver: Any) -> None:
    """A found leak needs where it is and a photo."""
    services = make_services(tmp_path, orders=7)
    driver = make_driver(services)
    screen = open_order(driver, "O1006")
    driver.tap(screen.ids.complete)
    flow = driver.screen
    assert flow.name == "investigation"
    driver.type(flow.ids.findings, "Dial moves with every fixture off")
    driver.tap(flow.ids.leak_found.children[-1])
    driver.tap(flow.ids.save)
    assert flow.ids.row_leak_location.error == "Say where the leak is"
    assert flow.ids.row_photos.error == "Take at least one photo of the leak"
    driver.shot("13-investigation-errors")
    driver.type(flow.ids.leak_location, "toilet flapper, upstairs")
    driver.tap(flow.ids.customer_informed.children[-1])
    driver.tap(flow.ids.photo)
    driver.tap(flow.ids.photo)
    driver.shot("14-investigation-ready")
    driver.tap(flow.ids.save)
    [result] = results_for(services, "O1006")
    assert result.fields["leak_found"] is True and result.fields["customer_informed"] is True
    assert len(result.photos) == 2
    doc = services.store.get(result.doc_id())
    assert doc["_rev"].startswith("1-"), "a result is written once, photos included"


def test_unable_to_complete_flow(tmp_path: Path, make_driver: Any) -> None:
    """Unable to complete needs a reason and a note; the stop shows as unable."""
    services = make_services(tmp_path, orders=7)
    driver = make_driver(services)
    screen = open_order(driver, "O1002")
    driver.tap(screen.ids.unable)
    flow = driver.screen
    assert flow.name == "unable"
    driver.tap(flow.ids.save)
    assert flow.ids.row_code.error and flow.ids.row_notes.error
    flow.ids.code.text = "Dog"
    driver.type(flow.ids.notes, "Loose dog in front yard, owner not home")
    driver.shot("15-unable")
    driver.tap(flow.ids.save)
    [result] = results_for(services, "O1002")
    assert result.outcome == "unable_to_complete" and result.unable_code == "dog"
    assert stop(services, "O1002").marker is Marker.FAILED
    screen = driver.nav.show("order", order_id="O1002")
    driver.pump(3)
    assert screen.ids.complete.disabled
    driver.shot("16-order-closed")
