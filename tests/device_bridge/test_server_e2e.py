"""The whole hand-held path against the real server: demo district -> routes -> dock over a pty -> reads stored."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from contracts.handheld import ReadRecord, decode_routes, encode_lines
from server.meters.models import MeterRead
from tests.device_bridge.conftest import Procs, status, wait_for

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(empty_database_url: str, tmp_path: Path):
    """A demo district served by `curbstop serve` on a free port; yields (base URL, station token, db URL)."""
    env = {**os.environ, "DATABASE_URL": empty_database_url, "CURBSTOP_VAR_DIR": str(tmp_path / "var")}
    subprocess.run(
        [sys.executable, "-m", "server.cli", "demo", "--accounts", "120", "--no-serve"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    token = (tmp_path / "var" / "demo" / "station-token.txt").read_text().strip()
    port = _free_port()
    with open(tmp_path / "server.log", "w") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: the server imports the routing stack (numba, OR-Tools) before it listens, which takes
        # long on a loaded machine; the failure names what the server printed.
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"the server did not come up:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, token, empty_database_url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_dock_against_the_real_server(live_server, procs: Procs):
    """Routes built and assigned on the server load into the hand-held; its reads land on the server once."""
    base, token, database_url = live_server
    sign_in = httpx.post(
        f"{base}/api/auth/token", data={"username": "dispatcher", "password": "curbstop-demo"}
    )
    office = {"Authorization": f"Bearer {sign_in.json()['access_token']}"}
    station = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{base}/api/handhelds/routes/build", headers=office).status_code == 200
    route = httpx.get(f"{base}/api/handhelds/routes", headers=office).json()[0]
    assert (
        httpx.post(f"{base}/api/handhelds/devices", json={"device_id": "HH-E2E"}, headers=office).status_code
        == 201
    )
    assert (
        httpx.post(
            f"{base}/api/handhelds/routes/{route['id']}/assign", json={"device_id": "HH-E2E"}, headers=office
        ).status_code
        == 200
    )
    expected = httpx.get(f"{base}/api/handhelds/devices/HH-E2E/routes", headers=station).json()
    assert len(expected) == route["meters"] > 0

    # The hand-held holds yesterday's reads of those meters (a little above each previous read).
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    reads = [
        ReadRecord(
            device_id="HH-E2E",
            reader_id="t05",
            route_id=r["route_id"],
            cycle=r["cycle"],
            sequence=r["sequence"],
            account=r["account"],
            service_point_id=r["service_point_id"],
            meter_serial=r["meter_serial"],
            reading=((r["previous_read"] or 0) + 3000) % 10 ** r["dials"],
            read_at=at + dt.timedelta(seconds=i),
        )
        for i, r in enumerate(expected)
    ]
    state = procs.tmp / "HH-E2E"
    state.mkdir()
    (state / "reads.jsonl").write_bytes(encode_lines(reads))
    port, state = procs.simulator("HH-E2E")
    procs.station([port], base, "--token", token)
    wait_for(lambda: status(state)["sessions_done"] >= 1, 60, "the dock to finish")

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:

        def stored() -> int:
            with engine.connect() as conn:
                return (
                    conn.scalar(
                        select(func.count()).select_from(MeterRead).where(MeterRead.source == "handheld")
                    )
                    or 0
                )

        wait_for(lambda: stored() == len(reads), 30, "the reads to reach the server")
        # The routes the device now holds are the server's, whole and in walk order.
        loaded = decode_routes((state / "routes.jsonl").read_bytes())
        assert [r.meter_serial for r in loaded] == [r["meter_serial"] for r in expected]
        # Docking again (the device reconnects) stores nothing twice.
        time.sleep(1)
        assert stored() == len(reads)
    finally:
        engine.dispose()
