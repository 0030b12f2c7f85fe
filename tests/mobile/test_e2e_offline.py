"""End to end through pouchdb-server: orders published by the "server" reach the tablet; a shift
offline completes one order of each type plus one unable-to-complete; back online, the remote
database holds every result exactly once.

The server side is played by this test (writing OrderDocs into the CSFR's database with admin
credentials) until server/sync lands in main; the tablet side is the app's real SyncRunner, store
and the same FieldWork and forms the screens drive.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contracts.codes import OrderType
from contracts.couch import ResultDoc
from mobile.background import SyncRunner, remote_for
from mobile.core.demo import demo_orders
from mobile.core.forms import (
    InvestigationForm,
    MeterTestForm,
    Photo,
    RereadForm,
    ServiceForm,
    UnableForm,
)
from mobile.core.meter_test import FlowPoint
from mobile.core.settings import SyncSession
from mobile.core.sync_state import SyncStatus
from mobile.sync import RemoteDB
from mobile.sync.devserver import CouchServer
from tests.mobile.fakes import FIXED_NOW, make_services

pytestmark = [pytest.mark.couchdb, pytest.mark.slow]


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    """Poll until `condition()` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.1)


@pytest.fixture
def csfr_db(couch_server: CouchServer) -> Iterator[tuple[RemoteDB, SyncSession]]:
    """A CSFR database only that CSFR's CouchDB user (and the admin) may use, as the server provisions it."""
    name = f"csfr-t05-{uuid.uuid4().hex[:8]}"
    user, password = f"u-{name}", "couch-pw"
    admin_db = couch_server.database(name)
    couch_server.create_user(user, password)
    couch_server.set_security(name, members=[user])
    session = SyncSession(couch_server.url, name, user, password, 5, "T05", "America/Los_Angeles")
    try:
        yield admin_db, session
    finally:
        admin_db.destroy()
        admin_db.close()


def photo(name: str) -> Photo:
    """A small placeholder photo."""
    from mobile.platform.camera import placeholder_png

    return Photo(name, placeholder_png(), "image/png", FIXED_NOW)


def test_offline_shift_then_every_result_reaches_the_server_once(
    tmp_path: Path, csfr_db: tuple[RemoteDB, SyncSession]
) -> None:
    """Dispatch -> tablet; offline: 7 types completed + 1 unable; online: 8 results on the server, once each."""
    admin_db, session = csfr_db
    # One of each flow type (7 in CYCLE) and an eighth for unable, on the utility's today.
    orders = demo_orders(8, zone=ZoneInfo("America/Los_Angeles"))
    for order in orders:
        admin_db.put(order.to_couch())

    services = make_services(tmp_path, session=session)
    runner = SyncRunner(
        services.store, lambda: remote_for(session), services.sync_state, poll_s=0.5, max_backoff_s=1.0
    )
    services.runner = runner
    runner.start()
    try:
        wait_for(
            lambda: (
                (services.route.refresh() or True)
                and len(services.route.stops) == 8
                and services.sync_state.status is SyncStatus.SYNCED
            ),
            what="8 orders pulled and a completed round",
        )

        # Going offline: first the server disappears (a dead port), then sync is paused for the shift.
        runner.remote_factory = lambda: RemoteDB("http://127.0.0.1:9", session.database, auth=("x", "y"))
        runner.sync_now()
        wait_for(lambda: services.sync_state.status is SyncStatus.OFFLINE, what="offline state")
        runner.pause()

        work = services.work()
        states = services.route.states
        by_type = {s.order.order_type: s.order for s in states.values() if s.order.order_id != "O1007"}
        for order in by_type.values():
            services.work().record_event(order, "en_route")
            services.work().record_event(order, "on_site")

        def in_range(order_type: OrderType) -> str:
            return str(int(by_type[order_type].meters[0].expected_low) + 20)

        reread = by_type[OrderType.REREAD]
        work.complete(
            reread, RereadForm(order=reread, reading=in_range(OrderType.REREAD), photos=[photo("r.png")])
        )
        for order_type, position in (
            (OrderType.TURN_ON, "open"),
            (OrderType.TURN_OFF, "closed"),
            (OrderType.SHUT_OFF_NONPAY, "closed"),
            (OrderType.RESTORE, "open"),
        ):
            order = by_type[order_type]
            work.complete(
                order,
                ServiceForm(
                    order=order,
                    reading=in_range(order_type),
                    curb_stop_position=position,
                    seal_number="S-1" if order_type is OrderType.SHUT_OFF_NONPAY else "",
                    door_hanger_left=True,
                ),
            )
        meter_order = by_type[OrderType.METER_TEST]
        test_form = MeterTestForm(order=meter_order)
        for point in FlowPoint:
            test_form.meter_volume[point] = "10"
            test_form.reference_volume[point] = "10"
        work.complete(meter_order, test_form)
        leak = by_type[OrderType.LEAK_INVESTIGATION]
        work.complete(
            leak,
            InvestigationForm(
                order=leak,
                findings="Running toilet",
                leak_found=True,
                leak_location="toilet",
                photos=[photo("l.png")],
            ),
        )
        unable = states["O1007"].order
        work.complete(unable, UnableForm(order=unable, code="dog", notes="Loose dog, no answer"))

        services.route.refresh(force=True)
        assert sum(1 for s in services.route.stops if s.unsynced) == 8
        assert not admin_db.all_docs(startkey='"result:"', endkey='"result:\ufff0"'), (
            "nothing left while offline"
        )

        # Back online.
        runner.remote_factory = lambda: remote_for(session)
        runner.resume()
        wait_for(
            lambda: (
                services.sync_state.status is SyncStatus.SYNCED
                and services.sync_state.pushed_seq >= services.store.update_seq
            ),
            what="a full round after coming back",
        )
        runner.sync_now()  # a second round must not duplicate anything
        time.sleep(1.5)
        rows = admin_db.all_docs(include_docs=True, startkey='"result:"', endkey='"result:\ufff0"')
        results = [ResultDoc.from_couch(r["doc"]) for r in rows]
        assert len(results) == 8
        assert sorted(r.order_id for r in results) == sorted(o.order_id for o in orders)
        assert {r.outcome for r in results} == {"completed", "unable_to_complete"}
        with_photos = [r for r in rows if r["doc"].get("_attachments")]
        assert len(with_photos) == 2
        events = admin_db.all_docs(startkey='"event:"', endkey='"event:\ufff0"')
        assert len(events) == 14
        services.route.refresh(force=True)
        assert not any(s.unsynced for s in services.route.stops)
    finally:
        runner.stop()
        services.store.close()
