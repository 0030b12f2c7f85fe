"""Docking out of the box: `curbstop demo` + `curbstop simulate-handheld` + `curbstop bridge`, real processes on
a real pty against the real server, with no manual registration, route building or assignment.

The demo registers HH-0001..HH-0003 and gives them the reading routes of the cycle due next; a fresh
simulator docks, is loaded with its route, reads it off the cradle and docks again, and its reads land on
the server in the register's units. A batch the server refuses is set aside in the spool's dead letters
while later reads keep landing, and `curbstop bridge spool list|retry|discard` manage it.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, select

from contracts.handheld import ReadRecord, RouteRecord, decode_reads, decode_routes, encode_lines
from device_bridge.spool import Spool
from server.meters.models import Meter, MeterRead
from tests.device_bridge.conftest import Procs, status, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # serves a demo; set-up counts

CURBSTOP = [sys.executable, "-c", "from curbstop_cli import app; app()"]


@dataclass
class DemoServer:
    """`curbstop demo` served on a free port."""

    base: str
    env: dict[str, str]
    token_file: Path
    demo_output: str
    engine: Engine

    def station_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token_file.read_text().strip()}"}

    def office(self) -> httpx.Client:
        client = httpx.Client(base_url=self.base, timeout=30)
        answer = client.post("/api/auth/token", data={"username": "dispatcher", "password": "curbstop-demo"})
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return client

    def handheld_reads(self, serials: set[str]) -> dict[str, tuple[float, int, str]]:
        """Hand-held reads stored for these meters: serial -> (reading, meter decimals, validation)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Meter.serial, MeterRead.reading, Meter.decimals, MeterRead.validation)
                .join(Meter, Meter.id == MeterRead.meter_id)
                .where(MeterRead.source == "handheld", Meter.serial.in_(serials))
            ).all()
        return {
            serial: (float(reading), decimals, validation) for serial, reading, decimals, validation in rows
        }


@pytest.fixture
def demo(empty_database_url: str, tmp_path: Path) -> Iterator[DemoServer]:
    """A 400-account demo district (about 20 meters in the cycle due next), served by `curbstop serve`."""
    var = tmp_path / "var"
    env = {**os.environ, "DATABASE_URL": empty_database_url, "CURBSTOP_VAR_DIR": str(var)}
    done = subprocess.run(
        [*CURBSTOP, "demo", "--accounts", "400", "--no-serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(tmp_path / "server.log", "w") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [*CURBSTOP, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    engine = create_engine(empty_database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/api/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 180, "the server", lambda: (tmp_path / "server.log").read_text()[-2000:])
        yield DemoServer(base, env, var / "demo" / "station-token.txt", done.stdout, engine)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        engine.dispose()


def _station(procs: Procs, demo: DemoServer, port: str) -> subprocess.Popen[str]:
    return procs.station([port], demo.base, "--token-file", str(demo.token_file), "--routes-retry-s", "1")


def _spool_cmd(procs: Procs, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # The station's own entry point (curbstop_cli's wiring of `bridge spool` is tested in test_spool.py).
        [
            sys.executable,
            "-m",
            "device_bridge.station",
            "spool",
            *args,
            "--spool",
            str(procs.tmp / "spool.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "250"},
    )


def _log(procs: Procs) -> str:
    path = procs.tmp / "bridge.log"
    return path.read_text() if path.exists() else ""


def _dead(procs: Procs) -> list[str]:
    """Devices of the dead batches in the station's spool."""
    spool = Spool(procs.tmp / "spool.db")
    try:
        return [d.device_id for d in spool.dead_batches()]
    finally:
        spool.close()


def _cleared_reads(state: Path) -> list[ReadRecord]:
    return [
        r for batch in sorted((state / "cleared").glob("*.jsonl")) for r in decode_reads(batch.read_bytes())
    ]


def _routes_of(demo: DemoServer, device_id: str) -> list[RouteRecord]:
    answer = httpx.get(
        f"{demo.base}/api/handhelds/devices/{device_id}/routes", headers=demo.station_headers()
    )
    assert answer.status_code == 200, answer.text
    return [RouteRecord.model_validate(r) for r in answer.json()]


def test_a_fresh_simulator_docks_against_the_demo_loads_its_route_and_lands_its_reads(
    demo: DemoServer, procs: Procs
):
    """No manual step: the first dock loads HH-0001's route; the second dock unloads one read per record,
    each inside the limits it was given, stored on the server as the register's value (digits / 10^decimals)."""
    assert "simulate-handheld --device-id HH-0001" in demo.demo_output
    assert "bridge --port" in demo.demo_output and "--token-file" in demo.demo_output
    given = {r.meter_serial: r for r in _routes_of(demo, "HH-0001")}
    assert given, "the demo assigned HH-0001 a route"

    port, state = procs.simulator("HH-0001", "--skip-prob", "0", reads=0, walk_s=1.0)
    _station(procs, demo, port)
    diag = lambda: f"{status(state)}\n{_log(procs)}"  # noqa: E731
    wait_for(lambda: status(state)["routes_installed"] >= 1, 30, "the route to load", diag)
    wait_for(lambda: len(demo.handheld_reads(set(given))) == len(given), 60, "the reads to land", diag)

    loaded = decode_routes((state / "routes.jsonl").read_bytes())
    assert [r.meter_serial for r in loaded] == list(given)  # the server's route, whole, in walk order
    assert status(state)["walks"] == 1 and status(state)["reads_taken"] == len(given)
    taken = {r.meter_serial: r for r in _cleared_reads(state)}
    assert set(taken) == set(given)
    stored = demo.handheld_reads(set(given))
    for serial, record in given.items():
        digits = taken[serial].reading
        assert digits is not None
        reading, decimals, validation = stored[serial]
        assert decimals == record.decimals
        assert reading == pytest.approx(
            digits / 10**decimals
        )  # the register's value, as CIS reads are stored
        if record.low_limit is not None and record.high_limit is not None:
            assert record.low_limit <= digits <= record.high_limit
            assert validation == "ok", (serial, validation)  # inside the limits sent: no reread

    time.sleep(1.5)  # the route reloaded after the upload is not read a second time
    assert status(state)["walks"] == 1 and len(demo.handheld_reads(set(given))) == len(given)
    log = _log(procs)
    assert "refused" not in log and f"posted {len(given)} reads from HH-0001" in log
    spool = Spool(procs.tmp / "spool.db")
    try:
        counts = spool.counts()
        assert (counts.unsent, counts.dead) == (0, 0)
    finally:
        spool.close()


def test_refused_batches_are_set_aside_later_reads_land_and_the_spool_commands_manage_them(
    demo: DemoServer, procs: Procs
):
    """HH-0002 docks holding reads of meters the demo does not have (422): they are set aside with the server's
    message and its route reads still land. An unregistered HH-0099's batch (404) is set aside too; once a
    dispatcher registers it (and gives it a route), `spool retry` delivers the batch and the station loads the
    route; `spool discard` needs --yes and writes the refused reads to a file."""
    given = {r.meter_serial for r in _routes_of(demo, "HH-0002")}
    port2, state2 = procs.simulator("HH-0002", "--skip-prob", "0", reads=3, walk_s=1.0)
    made_up = {r.meter_serial for r in decode_reads((state2 / "reads.jsonl").read_bytes())}

    # HH-0099 holds yesterday's reads of HH-0003's meters but was never registered.
    route3 = _routes_of(demo, "HH-0003")
    state99 = procs.tmp / "HH-0099"
    state99.mkdir()
    yesterday = time.time() - 86_400
    reads99 = [
        ReadRecord(
            device_id="HH-0099",
            reader_id="RDR9",
            route_id=r.route_id,
            cycle=r.cycle,
            sequence=r.sequence,
            account=r.account,
            service_point_id=r.service_point_id,
            meter_serial=r.meter_serial,
            reading=r.low_limit if r.low_limit is not None else (r.previous_read or 0),
            read_at=dt.datetime.fromtimestamp(yesterday + i, dt.UTC),
        )
        for i, r in enumerate(route3)
    ]
    (state99 / "reads.jsonl").write_bytes(encode_lines(reads99))
    port99, _ = procs.simulator("HH-0099", reads=0)
    procs.station([port2, port99], demo.base, "--token-file", str(demo.token_file), "--routes-retry-s", "1")
    diag = lambda: f"{status(state2)}\n{_log(procs)}"  # noqa: E731

    # The made-up batch is set aside; the route's reads, unloaded after it, land all the same.
    wait_for(lambda: len(demo.handheld_reads(given)) == len(given), 90, "HH-0002's route reads to land", diag)
    wait_for(lambda: len(_dead(procs)) == 2, 30, "both refused batches to be set aside", diag)
    log = _log(procs)
    assert "unknown meter serial(s)" in log and sorted(made_up)[0] in log  # the server's words, not "422"
    assert (
        "hand-held 'HH-0099' is not registered" in log
    )  # the route download's refusal, in the server's words

    listed = _spool_cmd(procs, "list")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("│")[2].strip(): line for line in listed.stdout.splitlines() if "│ HH-00" in line}
    assert set(lines) == {"HH-0002", "HH-0099"}
    assert lines["HH-0002"].split("│")[3].strip() == "3"
    assert "422" in lines["HH-0002"] and "unknown meter serial(s)" in lines["HH-0002"]
    assert lines["HH-0099"].split("│")[3].strip() == str(len(reads99)) and "404" in lines["HH-0099"]
    ids = {device: int(line.split("│")[1]) for device, line in lines.items()}

    # Fix the cause on the server, then retry: the batch is delivered and the docked device gets its route.
    office = demo.office()
    try:
        assert office.post("/api/handhelds/devices", json={"device_id": "HH-0099"}).status_code == 201
        routes = office.get("/api/handhelds/routes").json()
        route_id = next(r["id"] for r in routes if r["device_id"] == "HH-0003")
        assign = office.post(f"/api/handhelds/routes/{route_id}/assign", json={"device_id": "HH-0099"})
        assert assign.status_code == 200, assign.text
    finally:
        office.close()
    retried = _spool_cmd(procs, "retry", str(ids["HH-0099"]), "--by", "sky")
    assert retried.returncode == 0 and f"{len(reads99)} reads back in the queue" in retried.stdout
    wait_for(
        lambda: len(demo.handheld_reads({r.meter_serial for r in reads99})) == len(reads99),
        30,
        "HH-0099's retried batch to land",
        diag,
    )
    wait_for(lambda: status(procs.tmp / "HH-0099")["routes_installed"] >= 1, 30, "HH-0099's route", diag)

    # Discarding needs --yes; the refused reads are then in a file, and who did it is on record.
    refused = _spool_cmd(procs, "discard", str(ids["HH-0002"]))
    assert refused.returncode == 2 and "--yes" in refused.stderr
    gone = _spool_cmd(procs, "discard", str(ids["HH-0002"]), "--yes", "--by", "sky", "--reason", "test reads")
    assert gone.returncode == 0, gone.stderr
    file = procs.tmp / "discarded" / f"dead-{ids['HH-0002']}-HH-0002.jsonl"
    assert {r.meter_serial for r in decode_reads(file.read_bytes())} == made_up
    history = _spool_cmd(procs, "list", "--all").stdout
    assert "retried by sky" in history and "discarded by sky" in history
    assert "no dead batches" in _spool_cmd(procs, "list").stdout
    spool = Spool(procs.tmp / "spool.db")
    try:
        assert spool.counts().unsent == 0 and spool.counts().dead == 0
    finally:
        spool.close()
