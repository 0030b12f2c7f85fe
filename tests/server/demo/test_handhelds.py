"""The demo's hand-helds: registered, with reading routes of the cycle due next, through the service the API uses,
so a demo device downloads its route with no manual step (the docking station used to get a 404)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from server.demo.handhelds import docking_instructions, seed_handhelds
from server.handhelds import service
from server.meters.models import MeterRead

NOW = dt.datetime.now(dt.UTC)


def _premises(
    db_session: Session,
    make_account,
    make_meter,
    make_service_point,
    *,
    cycle: str,
    books: list[str],
    read_days_ago: int,
):
    """One metered account per book in `cycle`, last read `read_days_ago` days ago."""
    serials = []
    for book in books:
        account = make_account(
            billing_cycle=cycle, status="active", service_point=make_service_point(route=book)
        )
        meter = make_meter(service_point_id=account.service_point_id)
        for months in (2, 1, 0):
            db_session.add(
                MeterRead(
                    meter_id=meter.id,
                    read_at=NOW - dt.timedelta(days=read_days_ago + 30 * months),
                    reading=1000.0 + 5000 * (3 - months),
                    source="cis",
                )
            )
        serials.append(meter.serial)
    db_session.flush()
    return serials


def test_the_demo_registers_its_hand_helds_and_assigns_the_cycle_due_next(
    db_session: Session, make_account, make_meter, make_service_point, client, station_headers
):
    """HH-0001 and HH-0002 are registered and share the routes of the cycle read longest ago; HH-0001's
    route downloads through the station API at once; running the demo again changes nothing."""
    due = _premises(
        db_session,
        make_account,
        make_meter,
        make_service_point,
        cycle="07",
        books=["R001", "R002", "R003"],
        read_days_ago=28,
    )
    _premises(
        db_session,
        make_account,
        make_meter,
        make_service_point,
        cycle="19",
        books=["R001", "R004"],
        read_days_ago=3,
    )

    seed = seed_handhelds(db_session=db_session, count=2)
    assert seed.devices == ["HH-0001", "HH-0002"] and seed.registered == 2 and seed.assigned == 3
    assert seed.routes == {
        "HH-0001": ["cycle 07 book R001", "cycle 07 book R003"],
        "HH-0002": ["cycle 07 book R002"],
    }
    assert seed.meters == {"HH-0001": 2, "HH-0002": 1}
    rows = {(r.cycle, r.route_code): r.device_id for r in service.route_summaries(db_session=db_session)}
    assert rows[("19", "R001")] is None and rows[("19", "R004")] is None

    answer = client.get("/api/handhelds/devices/HH-0001/routes", headers=station_headers)
    assert answer.status_code == 200, answer.text
    assert {r["meter_serial"] for r in answer.json()} == {due[0], due[2]}

    again = seed_handhelds(db_session=db_session, count=2)
    assert (again.registered, again.assigned, again.routes) == (0, 0, seed.routes)


def test_every_device_gets_a_route_when_the_due_cycle_is_small(
    db_session: Session, make_account, make_meter, make_service_point
):
    """A due cycle with fewer routes than devices borrows routes of the next cycle, so no demo device is idle."""
    _premises(
        db_session, make_account, make_meter, make_service_point, cycle="01", books=["R001"], read_days_ago=25
    )
    _premises(
        db_session,
        make_account,
        make_meter,
        make_service_point,
        cycle="02",
        books=["R002", "R003"],
        read_days_ago=20,
    )
    seed = seed_handhelds(db_session=db_session, count=3)
    assert seed.routes == {
        "HH-0001": ["cycle 01 book R001"],
        "HH-0002": ["cycle 02 book R002"],
        "HH-0003": ["cycle 02 book R003"],
    }


def test_an_unregistered_hand_held_is_a_404_that_names_it(client, station_headers, login):
    """The station logs the server's sentence: it names the device and says to register it."""
    from contracts.codes import Role

    answer = client.get("/api/handhelds/devices/HH-0042/routes", headers=station_headers)
    assert answer.status_code == 404
    message = answer.json()["error"]["message"]
    assert "'HH-0042' is not registered" in message and "POST /api/handhelds/devices" in message
    office = login(Role.DISPATCHER)
    assert (
        client.post("/api/handhelds/devices", json={"device_id": "HH-0042"}, headers=office).status_code
        == 201
    )
    again = client.post("/api/handhelds/devices", json={"device_id": "HH-0042"}, headers=office)
    assert again.status_code == 409 and "already registered" in again.json()["error"]["message"]
    assert client.get("/api/handhelds/devices/HH-0042/routes", headers=station_headers).json() == []


def test_the_printed_commands_name_the_device_token_file_and_server(tmp_path):
    """The demo prints runnable commands: the simulator's state dir, its port file, the token file, the server."""
    from server.demo.handhelds import HandheldSeed

    token = tmp_path / "station-token.txt"
    token.write_text("cs_x\n")
    seed = HandheldSeed(
        devices=["HH-0001"], routes={"HH-0001": ["cycle 07 book R001"]}, meters={"HH-0001": 2}
    )
    text = "\n".join(
        docking_instructions(seed, server_url="http://127.0.0.1:8000", token_file=token, var_dir=tmp_path)
    )
    assert f"simulate-handheld --device-id HH-0001 --state-dir {tmp_path}/handheld-sim/HH-0001" in text
    assert f'--port "$(cat {tmp_path}/handheld-sim/HH-0001/port)" --server http://127.0.0.1:8000' in text
    assert f"--token-file {token}" in text and "HH-0001 2 meters (cycle 07 book R001)" in text
    token.unlink()
    assert "create-token" in "\n".join(
        docking_instructions(seed, server_url="http://x", token_file=token, var_dir=tmp_path)
    )
