"""The whole field loop through the real server: dispatch -> tablet (via CouchDB) -> offline shift ->
back online -> the server has every result, order statuses are updated, nothing is duplicated.

Real parts: `curbstop serve` (with its sync loop) on a generated district, a pouchdb-server, the app's
HTTP sign-in, its SQLite store and background sync runner, and the same forms the screens drive.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from contracts.codes import OrderType
from mobile.background import SyncRunner, remote_for
from mobile.core.forms import InvestigationForm, MeterTestForm, Photo, RereadForm, ServiceForm, UnableForm
from mobile.core.meter_test import FlowPoint
from mobile.core.settings import SettingsFile
from mobile.core.sync_state import SyncStatus
from mobile.net import HttpAuthApi
from mobile.platform.camera import placeholder_png
from mobile.services import build_services
from mobile.sync import RemoteDB, Store

pytestmark = [pytest.mark.couchdb, pytest.mark.slow]

ORDER_TYPES = [
    OrderType.REREAD,
    OrderType.TURN_ON,
    OrderType.TURN_OFF,
    OrderType.SHUT_OFF_NONPAY,
    OrderType.RESTORE,
    OrderType.METER_TEST,
    OrderType.LEAK_INVESTIGATION,
    OrderType.REREAD,
]


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def live(empty_database_url: str, tmp_path: Path) -> Iterator[tuple[str, httpx.Client]]:
    """A demo district served with a pouchdb-server; yields the base URL and a dispatcher's client."""
    from mobile.sync.devserver import start_pouchdb_server

    couch = start_pouchdb_server(data_dir=tmp_path / "couch")
    env = {
        **os.environ,
        "DATABASE_URL": empty_database_url,
        "CURBSTOP_VAR_DIR": str(tmp_path / "var"),
        "COUCHDB_URL": couch.url_with_credentials,
    }
    subprocess.run(
        [sys.executable, "-m", "server.cli", "demo", "--accounts", "120", "--no-serve"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, timeout=30)
    try:
        wait_for(lambda: _healthy(client), 180, "the server")
        token = client.post(
            "/api/auth/token", data={"username": "dispatcher", "password": "curbstop-demo"}
        ).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield base, client
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=30)
        couch.stop()


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/api/health").status_code == 200
    except httpx.HTTPError:
        return False


def test_dispatch_offline_shift_and_results_back_on_the_server(live, tmp_path: Path) -> None:
    """Eight dispatched orders reach T01's tablet; worked offline; on reconnection the server completes seven,
    sends the unable-to-complete one back to dispatch, and a second sync duplicates nothing."""
    base, office = live
    order_ids = []
    for i, order_type in enumerate(ORDER_TYPES):
        created = office.post(
            "/api/orders",
            json={
                "order_type": order_type.value,
                "account_id": 10 + i,
                "required_skills": ["read"],
                "reason": "e2e",
            },
        )
        assert created.status_code == 201, created.text
        oid = created.json()["id"]
        office.patch(
            f"/api/orders/{oid}", json={"technician_id": 1}, headers={"If-Match": created.headers["ETag"]}
        )
        for target in ("assigned", "dispatched"):
            assert office.post(f"/api/orders/{oid}/transitions", json={"to": target}).status_code == 200
        order_ids.append(oid)

    # The tablet signs in like the app does: server URL and the CSFR's own credentials.
    session = HttpAuthApi().sign_in(base, "t01", "curbstop-demo")
    assert session.database == "csfr-t01"
    settings_file = SettingsFile(tmp_path / "tablet-settings.json")
    settings = settings_file.load()
    settings.username, settings.session = "t01", session
    settings_file.save(settings)
    store = Store(tmp_path / "tablet.sqlite")
    services = build_services(store=store, settings_file=settings_file, auth_api=HttpAuthApi())
    runner = SyncRunner(
        store, lambda: remote_for(session), services.sync_state, poll_s=0.5, max_backoff_s=1.0
    )
    runner.start()
    try:
        wait_for(
            lambda: (services.route.refresh(force=True) or True) and len(services.route.stops) == 8,
            what="the dispatched orders on the tablet",
        )
        # Offline for the shift.
        runner.remote_factory = lambda: RemoteDB("http://127.0.0.1:9", session.database, auth=("x", "y"))
        runner.sync_now()
        wait_for(lambda: services.sync_state.status is SyncStatus.OFFLINE, what="offline")
        runner.pause()
        work = services.work()
        orders = {int(s.order.order_id): s.order for s in services.route.states.values()}
        for oid in order_ids[:-1]:
            work.record_event(orders[oid], "en_route")
            work.record_event(orders[oid], "on_site")

        def reading(order) -> str:
            low = order.meters[0].expected_low
            last = order.meters[0].last_read or 0
            return str(int(low) + 1 if low is not None else int(last) + 1)

        for oid, order_type in zip(order_ids[:-1], ORDER_TYPES[:-1], strict=True):
            order = orders[oid]
            if order_type is OrderType.REREAD:
                photo = Photo("register.png", placeholder_png(), "image/png", services.clock())
                work.complete(order, RereadForm(order=order, reading=reading(order), photos=[photo]))
            elif order_type is OrderType.METER_TEST:
                form = MeterTestForm(order=order)
                for point in FlowPoint:
                    form.meter_volume[point] = "10"
                    form.reference_volume[point] = "10"
                work.complete(order, form)
            elif order_type is OrderType.LEAK_INVESTIGATION:
                photo = Photo("leak.png", placeholder_png(), "image/png", services.clock())
                work.complete(
                    order,
                    InvestigationForm(
                        order=order,
                        findings="Dripping hose bib",
                        leak_found=True,
                        leak_location="hose bib",
                        photos=[photo],
                    ),
                )
            else:
                position = "open" if order_type in (OrderType.TURN_ON, OrderType.RESTORE) else "closed"
                work.complete(
                    order,
                    ServiceForm(
                        order=order,
                        reading=reading(order),
                        curb_stop_position=position,
                        seal_number="S-9" if order_type is OrderType.SHUT_OFF_NONPAY else "",
                        door_hanger_left=True,
                    ),
                )
        unable = orders[order_ids[-1]]
        work.complete(unable, UnableForm(order=unable, code="locked_gate", notes="No access"))
        statuses = {o["id"]: o["status"] for o in office.get("/api/orders?page_size=50").json()["items"]}
        assert all(statuses[oid] == "dispatched" for oid in order_ids), (
            "nothing reached the server while offline"
        )

        # Back online.
        runner.remote_factory = lambda: remote_for(session)
        runner.resume()

        def server_statuses() -> dict[int, str]:
            return {o["id"]: o["status"] for o in office.get("/api/orders?page_size=50").json()["items"]}

        wait_for(
            lambda: (
                all(server_statuses()[oid] == "completed" for oid in order_ids[:-1])
                and server_statuses()[order_ids[-1]] == "new"
            ),
            60,
            "the results on the server",
        )
        back = office.get(f"/api/orders/{order_ids[-1]}").json()
        assert back["technician_id"] is None and "locked_gate" in back["status_reason"]
        ingested = office.get("/api/sync/status").json()["ingested_documents"]
        assert ingested == 8 + 14  # eight results, two events for each of the seven worked orders
        runner.sync_now()
        time.sleep(5)  # another tablet round and two server sync passes
        assert office.get("/api/sync/status").json()["ingested_documents"] == ingested
        reads = office.get(f"/api/orders/{order_ids[0]}").json()
        assert reads["outcome"]["readings"] == 1
    finally:
        runner.stop()
        store.close()
