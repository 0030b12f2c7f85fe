"""Hand-helds on the server: reading routes, assignment, station download and idempotent uploads."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from contracts.codes import Role
from server.handhelds.models import HandheldSkip
from server.meters.models import MeterRead
from server.orders.models import WorkOrder

T0 = dt.datetime(2026, 10, 1, 16, 0, tzinfo=dt.UTC)


@pytest.fixture
def book(db_session, make_account, make_service_point, make_meter):
    """Three premises on book R9 (cycle 05) with a year of monthly reads, plus one on another book."""
    meters = []
    for i, lon in enumerate((-121.4900, -121.4950, -121.4925)):
        sp = make_service_point(
            route="R9", lat=38.58, lon=lon, access_notes=f"note {i}", hazards=["dog"] if i == 0 else []
        )
        make_account(service_point=sp, billing_cycle="05")
        meter = make_meter(service_point_id=sp.id, dials=6)
        meters.append(meter)
        for month in range(12):
            at = T0 - dt.timedelta(days=30 * (12 - month))
            db_session.add(
                MeterRead(meter_id=meter.id, read_at=at, reading=1000.0 + month * 5000, source="cis")
            )
    other = make_service_point(route="R10")
    make_account(service_point=other, billing_cycle="05")
    make_meter(service_point_id=other.id)
    db_session.flush()
    return meters


@pytest.fixture
def dispatcher(login):
    return login(Role.DISPATCHER)


def _ready_route(client, dispatcher, device_id="HH-1"):
    assert client.post("/api/handhelds/routes/build", headers=dispatcher).status_code == 200
    routes = client.get("/api/handhelds/routes?cycle=05", headers=dispatcher).json()
    r9 = next(r for r in routes if r["route_code"] == "R9")
    client.post("/api/handhelds/devices", json={"device_id": device_id}, headers=dispatcher)
    assigned = client.post(
        f"/api/handhelds/routes/{r9['id']}/assign", json={"device_id": device_id}, headers=dispatcher
    )
    assert assigned.status_code == 200, assigned.text
    return r9


def _read(meter, reading, *, device="HH-1", at=T0, **kw):
    return {
        "device_id": device,
        "reader_id": "nia",
        "route_id": "R9",
        "cycle": "05",
        "sequence": 10,
        "account": "A",
        "service_point_id": "SP",
        "meter_serial": meter.serial,
        "reading": reading,
        "read_at": at.isoformat(),
        **kw,
    }


def test_build_routes_walk_order_and_rebuild(client, dispatcher, book):
    """Routes are one per book and cycle, in a walk order from the south-west; rebuilding keeps the route id."""
    r9 = _ready_route(client, dispatcher)
    assert r9["meters"] == 3
    again = client.post("/api/handhelds/routes/build", headers=dispatcher).json()
    assert again == {"routes": 2, "meters": 4}
    routes = client.get("/api/handhelds/routes?cycle=05", headers=dispatcher).json()
    assert next(r for r in routes if r["route_code"] == "R9")["id"] == r9["id"]


def test_station_downloads_assigned_routes(client, dispatcher, station_headers, book):
    """The station gets the device's route records in walk order, with previous read and limits as digits."""
    _ready_route(client, dispatcher)
    resp = client.get("/api/handhelds/devices/HH-1/routes", headers=station_headers)
    assert resp.status_code == 200, resp.text
    records = resp.json()
    assert [r["sequence"] for r in records] == [10, 20, 30]
    # West to east: the walk starts at the most south-westerly premise.
    assert records[0]["meter_serial"] == book[1].serial
    first = records[0]
    assert first["previous_read"] == 56000  # 1000 + 11 * 5000
    assert first["low_limit"] == 56000 + 2000 and first["high_limit"] == 56000 + 12500
    assert any(r["hazard_note"] == "dog" for r in records)
    status = client.get("/api/handhelds/routes?cycle=05", headers=dispatcher).json()
    assert next(r for r in status if r["route_code"] == "R9")["status"] == "downloaded"


def test_only_stations_download_and_upload(client, login, book):
    """Dispatchers and CSFRs cannot call the station endpoints."""
    for role in (Role.DISPATCHER, Role.CSFR):
        headers = login(role)
        assert client.get("/api/handhelds/devices/HH-1/routes", headers=headers).status_code == 403
        assert (
            client.post(
                "/api/handhelds/uploads", json={"device_id": "HH-1", "reads": []}, headers=headers
            ).status_code
            == 403
        )


def test_upload_is_idempotent_per_batch_and_per_read(client, dispatcher, station_headers, book, db_session):
    """A batch posted twice, or its reads in another batch, stores each read once."""
    _ready_route(client, dispatcher)
    body = {"device_id": "HH-1", "reads": [_read(book[0], 60000), _read(book[1], 61000)]}
    first = client.post(
        "/api/handhelds/uploads", json=body, headers={**station_headers, "Idempotency-Key": "b1"}
    )
    assert first.json() == {"accepted": 2, "duplicates": 0}
    again = client.post(
        "/api/handhelds/uploads", json=body, headers={**station_headers, "Idempotency-Key": "b1"}
    )
    assert again.json() == {"accepted": 0, "duplicates": 2}
    other = client.post(
        "/api/handhelds/uploads", json=body, headers={**station_headers, "Idempotency-Key": "b2"}
    )
    assert other.json() == {"accepted": 0, "duplicates": 2}
    count = db_session.scalar(
        select(func.count()).select_from(MeterRead).where(MeterRead.source == "handheld")
    )
    assert count == 2


def test_second_device_read_is_flagged_not_billed_twice(
    client, dispatcher, station_headers, book, db_session
):
    """Two hand-helds reading the same meter: both stored, the second flagged as a duplicate of the first."""
    _ready_route(client, dispatcher)
    client.post("/api/handhelds/devices", json={"device_id": "HH-2"}, headers=dispatcher)
    client.post(
        "/api/handhelds/uploads",
        json={"device_id": "HH-1", "reads": [_read(book[0], 60000)]},
        headers=station_headers,
    )
    later = T0 + dt.timedelta(hours=1)
    resp = client.post(
        "/api/handhelds/uploads",
        json={"device_id": "HH-2", "reads": [_read(book[0], 60010, device="HH-2", at=later)]},
        headers=station_headers,
    )
    assert resp.json() == {"accepted": 1, "duplicates": 0}
    rows = db_session.scalars(
        select(MeterRead)
        .where(MeterRead.meter_id == book[0].id, MeterRead.source == "handheld")
        .order_by(MeterRead.id)
    ).all()
    assert rows[1].duplicate_of_id == rows[0].id and rows[1].validation == "duplicate"


def test_skips_are_kept_and_bad_meters_refused(client, dispatcher, station_headers, book, db_session):
    """A skip is stored with its code; an unknown meter refuses the whole upload, naming the serial."""
    _ready_route(client, dispatcher)
    skip = _read(book[2], None, skip_code="dog")
    assert (
        client.post(
            "/api/handhelds/uploads", json={"device_id": "HH-1", "reads": [skip]}, headers=station_headers
        ).json()["accepted"]
        == 1
    )
    assert db_session.scalar(select(HandheldSkip.skip_code)) == "dog"
    bad = {
        "device_id": "HH-1",
        "reads": [_read(book[0], 60000), {**_read(book[0], 1), "meter_serial": "GHOST"}],
    }
    resp = client.post("/api/handhelds/uploads", json=bad, headers=station_headers)
    assert resp.status_code == 422 and "GHOST" in resp.json()["error"]["message"]
    assert (
        db_session.scalar(select(func.count()).select_from(MeterRead).where(MeterRead.source == "handheld"))
        == 0
    )
    neither = {"device_id": "HH-1", "reads": [_read(book[0], None)]}
    resp = client.post("/api/handhelds/uploads", json=neither, headers=station_headers)
    assert resp.status_code == 422 and "skip_code" in resp.json()["error"]["message"]


def test_uploaded_exception_read_raises_one_reread(client, dispatcher, station_headers, book, db_session):
    """A read far above the meter's norm, or one that goes backwards, raises a reread order once."""
    _ready_route(client, dispatcher)
    # Earlier Octobers are absent from this short history, so use a code the reader set, and a backwards read.
    reads = [_read(book[0], 50000), _read(book[1], 60000, trouble_code="reread_requested")]
    client.post("/api/handhelds/uploads", json={"device_id": "HH-1", "reads": reads}, headers=station_headers)
    orders = db_session.scalars(select(WorkOrder).where(WorkOrder.rule == "reread")).all()
    assert sorted(o.meter_id for o in orders) == sorted([book[0].id, book[1].id])
    assert any("went backwards" in o.reason for o in orders) and any(
        "asked for a reread" in o.reason for o in orders
    )
    client.post("/api/handhelds/uploads", json={"device_id": "HH-1", "reads": reads}, headers=station_headers)
    assert (
        db_session.scalar(select(func.count()).select_from(WorkOrder).where(WorkOrder.rule == "reread")) == 2
    )
