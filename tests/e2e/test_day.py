"""One ordinary demo day through every part, on SQLite and PostgreSQL, with a real pouchdb-server and real ptys.

CIS import -> order generation -> the supervisor approves the shut-off list -> plan -> publish ->
tablets (mobile core: offline, then sync) complete one order of every type they were given -> a hand-held
docks through the simulator and the station bridge -> the server ingests everything.

It asserts the invariants that make the parts one system, not just counts: a reading inside the limits
the server sent raises no reread; a reread that confirms the read in question raises nothing; every read
from every source is stored once in the same units; every order's status agrees with its audit trail;
every time a person sees carries the utility's zone; the station's spool is empty at the end.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from contracts.codes import OrderType
from contracts.forms import EXPECTED_POSITION, FORM_FOR_TYPE, FormKind
from contracts.handheld import RouteRecord
from device_bridge.spool import Spool
from mobile.background import SyncRunner, remote_for
from mobile.core.forms import InvestigationForm, MeterTestForm, Photo, RereadForm, ServiceForm, UnableForm
from mobile.core.meter_test import FlowPoint
from mobile.core.settings import SettingsFile
from mobile.net import HttpAuthApi
from mobile.platform.camera import placeholder_png
from mobile.services import build_services
from mobile.sync import Store
from server.audit.models import AuditEvent
from server.demo.workday import choose_day
from server.meters.models import Meter, MeterRead
from server.orders.calendar import Calendar
from server.orders.models import WorkOrder
from server.orders.policy import current_policy
from tests.device_bridge.conftest import Procs, status
from tests.e2e.conftest import ZONE, DemoDay, wait_for

# A whole day through every part: generous per-test limit (fixture set-up counts) for a loaded machine.
pytestmark = [pytest.mark.couchdb, pytest.mark.slow, pytest.mark.timeout(900)]


def _day_of(day: DemoDay) -> dt.date:
    """The business day the demo raised its orders for (a weekend or holiday demo works the next one)."""
    runs = day.client("dispatcher").get("/api/order-generation/runs").json()
    assert runs, "the demo raised no orders"
    return dt.date.fromisoformat(runs[0]["run_date"])


def _cis_high_read(day: DemoDay, work_date: dt.date) -> tuple[str, Decimal]:
    """Import a day's CIS reads with one very high read; return its meter serial and reading."""
    with day.engine.connect() as conn:
        meter = conn.execute(
            select(Meter.id, Meter.serial, Meter.decimals)
            .join(MeterRead, MeterRead.meter_id == Meter.id)
            .group_by(Meter.id, Meter.serial, Meter.decimals)
            .having(func.count() >= 20)
            .order_by(Meter.id)
            .limit(1)
        ).one()
        last = conn.execute(
            select(MeterRead.reading, MeterRead.read_at, MeterRead.use)
            .where(MeterRead.meter_id == meter.id, MeterRead.duplicate_of_id.is_(None))
            .order_by(MeterRead.read_at.desc())
            .limit(1)
        ).one()
    step = Decimal(1).scaleb(-meter.decimals)  # the register's last digit
    high = (Decimal(str(last.reading)) + Decimal(str(max(last.use or 0, 1000) * 9))).quantize(step)
    at = dt.datetime.combine(work_date - dt.timedelta(days=1), dt.time(9, 15), ZoneInfo(ZONE))
    folder = day.tmp / "cis-delta"
    folder.mkdir()
    (folder / "reads.csv").write_text(
        f"meter_serial,read_at,reading,source\n{meter.serial},{at.isoformat(timespec='minutes')},{high},cis\n"
    )
    day.cli("import", str(folder))
    return meter.serial, high


def _approve_shutoffs(day: DemoDay) -> dict[str, Any]:
    """The supervisor releases the day's shut-off list, excluding one account with its own note."""
    supervisor = day.client("supervisor")
    batches = supervisor.get("/api/shutoff-batches").json()
    pending = [b for b in batches if b["status"] == "proposed"]
    assert pending, f"no shut-off list awaits approval: {batches}"
    batch = supervisor.get(f"/api/shutoff-batches/{pending[0]['id']}").json()
    assert len(batch["orders"]) >= 2, "a shut-off list too short to exclude one account and keep one"
    excluded = batch["orders"][0]
    approved = supervisor.post(
        f"/api/shutoff-batches/{batch['id']}/approve",
        json={
            "exclude": [
                {
                    "account_id": excluded["account_id"],
                    "note": "paying Monday, spoke to the tenant",
                    "days": 5,
                }
            ],
            "note": "list checked against today's payments",
        },
    )
    assert approved.status_code == 200, approved.text
    return {"batch": approved.json(), "excluded_account": excluded["account_id"]}


def _plan_and_publish(day: DemoDay, work_date: dt.date) -> dict[str, Any]:
    dispatcher = day.client("dispatcher")
    job = dispatcher.post("/api/dispatch/plans", json={"date": work_date.isoformat(), "time_limit_s": 5})
    assert job.status_code == 202, job.text
    done = day.wait_job(dispatcher, job.json()["job_id"])
    plan_id = done["result"]["plan_id"]
    plan = dispatcher.get(f"/api/dispatch/plans/{plan_id}")
    published = dispatcher.post(
        f"/api/dispatch/plans/{plan_id}/publish", headers={"If-Match": plan.headers["ETag"]}
    )
    assert published.status_code == 200, published.text
    assert published.json()["dispatched"] > 0
    return plan.json()


class Tablet:
    """One CSFR's tablet: the app's services over its own SQLite store, syncing through CouchDB."""

    def __init__(self, day: DemoDay, code: str, clock: Callable[[], dt.datetime]) -> None:
        self.session = HttpAuthApi().sign_in(day.base, code, "curbstop-demo")
        assert self.session.time_zone == ZONE, "the tablet must be told the utility's zone"
        settings_file = SettingsFile(day.tmp / f"{code}-settings.json")
        settings = settings_file.load()
        settings.username, settings.session = code, self.session
        settings_file.save(settings)
        self.store = Store(day.tmp / f"{code}.sqlite")
        self.services = build_services(
            store=self.store, settings_file=settings_file, auth_api=HttpAuthApi(), clock=clock
        )
        self.runner = SyncRunner(self.store, lambda: remote_for(self.session), self.services.sync_state)

    def sync(self) -> None:
        assert self.runner.run_round(), self.services.sync_state.message

    def orders(self) -> dict[int, Any]:
        self.services.route.refresh(force=True)
        return {int(s.order.order_id): s.order for s in self.services.route.states.values()}

    def close(self) -> None:
        self.store.close()


def _inside_limits(order: Any) -> str:
    """A reading the tablet's own limits call normal: the middle of the expected range it was given."""
    meter = order.meters[0]
    assert meter.expected_low is not None and meter.expected_high is not None, meter
    middle = (Decimal(str(meter.expected_low)) + Decimal(str(meter.expected_high))) / 2
    return str(middle.quantize(Decimal(1) / 10**meter.decimals))


def _has_limits(order: Any) -> bool:
    return bool(order.meters) and order.meters[0].expected_low is not None


def _complete(tablet: Tablet, order: Any, *, confirm_reading: Decimal | None) -> str | None:
    """Work one order on the tablet with the form its type uses, as its CSFR would; return the reading typed."""
    work = tablet.services.work()
    work.record_event(order, "en_route")
    work.record_event(order, "on_site")
    kind = OrderType(order.order_type)
    form = FORM_FOR_TYPE.get(kind)
    if form is FormKind.REREAD:
        reading = str(confirm_reading) if confirm_reading is not None else _inside_limits(order)
        photo = Photo("register.png", placeholder_png(), "image/png", tablet.services.clock())
        work.complete(
            order, RereadForm(order=order, reading=reading, reading_confirm=reading, photos=[photo])
        )
        return reading
    if form is FormKind.METER_TEST:
        test = MeterTestForm(order=order)
        for point in FlowPoint:
            test.meter_volume[point] = "10"
            test.reference_volume[point] = "10.05"
        work.complete(order, test)
        return None
    if form is FormKind.INVESTIGATION:
        work.complete(
            order,
            InvestigationForm(
                order=order,
                findings="Toilet flapper leaking",
                leak_found=True,
                leak_location="toilet",
                photos=[Photo("leak.png", placeholder_png(), "image/png", tablet.services.clock())],
            ),
        )
        return None
    if form is FormKind.SERVICE:
        reading = _inside_limits(order) if _has_limits(order) else ""
        position = EXPECTED_POSITION.get(kind, "open")
        work.complete(
            order,
            ServiceForm(
                order=order,
                reading=reading,
                reading_confirm=reading,
                curb_stop_position=position,
                seal_number="S-1042" if kind is OrderType.SHUT_OFF_NONPAY else "",
                door_hanger_left=position == "closed" or kind is OrderType.NOTICE_DELIVERY,
            ),
        )
        return reading or None
    work.complete(order, UnableForm(order=order, code="locked_gate", notes="no access"))
    return None


def _audit_agrees(day: DemoDay) -> list[str]:
    """Every order that moved has an unbroken audit chain ending in its current status."""
    problems = []
    with day.engine.connect() as conn:
        chains: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for entity_id, detail in conn.execute(
            select(AuditEvent.entity_id, AuditEvent.detail)
            .where(AuditEvent.entity_type == "work_order", AuditEvent.action == "transition")
            .order_by(AuditEvent.id)
        ):
            chains[int(entity_id)].append(detail if isinstance(detail, dict) else json.loads(detail))
        for order_id, status in conn.execute(select(WorkOrder.id, WorkOrder.status)):
            chain = chains.get(order_id, [])
            if not chain:
                if status not in ("new", "cancelled"):
                    problems.append(f"order {order_id} is {status} with no transition audited")
                continue
            for a, b in itertools.pairwise(chain):
                if a["to"] != b["from"]:
                    problems.append(f"order {order_id}: audit jumps from {a['to']} to {b['from']}")
            if chain[-1]["to"] != status:
                problems.append(f"order {order_id} is {status} but its audit trail ends at {chain[-1]['to']}")
    return problems


@pytest.fixture
def procs(demo_day: DemoDay) -> Iterator[Procs]:
    """Hand-held simulators and docking stations as separate processes on real ptys; stopped at teardown."""
    p = Procs(demo_day.tmp)
    yield p
    p.stop_all()


def _dock(day: DemoDay, procs: Procs) -> dict[str, RouteRecord]:
    """HH-0001 docks fresh (its route loads), is walked, docks again (its reads unload); return its route."""
    token = day.tmp / "var" / "demo" / "station-token.txt"
    answer = httpx.get(
        f"{day.base}/api/handhelds/devices/HH-0001/routes",
        headers={"Authorization": f"Bearer {day.station_token}"},
    )
    assert answer.status_code == 200, answer.text
    given = {r.meter_serial: r for r in (RouteRecord.model_validate(x) for x in answer.json())}
    assert given, "the demo gave HH-0001 no route"
    port, state = procs.simulator("HH-0001", "--skip-prob", "0", reads=0, walk_s=1.0)
    procs.station([port], day.base, "--token-file", str(token), "--routes-retry-s", "1")

    def landed() -> bool:
        with day.engine.connect() as conn:
            n = conn.scalar(
                select(func.count())
                .select_from(MeterRead)
                .join(Meter, Meter.id == MeterRead.meter_id)
                .where(MeterRead.source == "handheld", Meter.serial.in_(set(given)))
            )
        return n == len(given)

    wait_for(landed, 120, "HH-0001's reads on the server")
    assert status(state)["reads_taken"] == len(given)
    return given


def _next_shutoff_day(after: dt.date) -> dt.date:
    """The next day after `after` on which the policy allows shut-offs (the demo's own rule)."""
    policy = current_policy()
    return choose_day(
        after + dt.timedelta(days=1), calendar=Calendar.of(policy.calendar, []), shutoff=policy.shutoff
    ).day


def _make_sure_dispatched(day: DemoDay, order_id: int, technician_id: int) -> None:
    """A dispatcher hands an order the plan left out to a CSFR, as they would from the board."""
    dispatcher = day.client("dispatcher")
    order = dispatcher.get(f"/api/orders/{order_id}")
    if order.json()["status"] == "dispatched":
        return
    patched = dispatcher.patch(
        f"/api/orders/{order_id}",
        json={"technician_id": technician_id},
        headers={"If-Match": order.headers["ETag"]},
    )
    assert patched.status_code == 200, patched.text
    for target in ("assigned", "dispatched"):
        moved = dispatcher.post(
            f"/api/orders/{order_id}/transitions", json={"to": target, "reason": "e2e: by hand"}
        )
        assert moved.status_code == 200, moved.text


def test_one_demo_day_through_every_part(demo_day: DemoDay, procs: Procs) -> None:
    """The demo's day runs end to end and every part agrees with the others."""
    day = demo_day
    zone = ZoneInfo(ZONE)
    # The demo names every address and sign-in a user needs.
    for needle in (
        "/docs",
        "/api/auth/token",
        "curbstop-demo",
        "dispatcher",
        "supervisor",
        "CouchDB",
        "HH-0001",
    ):
        assert needle in day.demo_output, f"the demo's summary does not mention {needle!r}"
    work_date = _day_of(day)
    dispatcher = day.client("dispatcher")

    # The CIS sends a day's reads: one is far too high, so the one intake raises a reread whose reason
    # names the reading (not a database id).
    serial, high = _cis_high_read(day, work_date)
    meter = dispatcher.get("/api/meters", params={"serial": serial}).json()[0]
    rereads = dispatcher.get(
        "/api/orders", params={"order_type": "reread", "status": "new", "page_size": 200}
    ).json()["items"]
    questioned = [o for o in rereads if o["meter_id"] == meter["id"]]
    assert len(questioned) == 1, f"the high CIS read raised {len(questioned)} rereads"
    assert f"{high:,}" in questioned[0]["reason"] or str(high) in questioned[0]["reason"], questioned[0][
        "reason"
    ]

    # The supervisor releases the shut-off list with one account excluded; the dispatcher plans and publishes.
    approval = _approve_shutoffs(day)
    plan_output = day.cli("plan", "--date", work_date.isoformat(), "--time-limit", "3")
    assert "PST" in plan_output or "PDT" in plan_output, (
        f"the plan table does not name the zone:\n{plan_output}"
    )
    assert "Z " not in plan_output and not any(
        line.rstrip().endswith("Z") for line in plan_output.splitlines()
    )
    _plan_and_publish(day, work_date)
    dispatched = dispatcher.get("/api/orders", params={"status": "dispatched", "page_size": 500}).json()[
        "items"
    ]
    assert dispatched, "the published plan dispatched nothing"
    _make_sure_dispatched(day, questioned[0]["id"], dispatched[0]["technician_id"])
    dispatched = dispatcher.get("/api/orders", params={"status": "dispatched", "page_size": 500}).json()[
        "items"
    ]
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in dispatched:
        by_type[o["order_type"]].append(o)
    assert {"shut_off_nonpay", "meter_test"} <= set(by_type), f"the day dispatched only {sorted(by_type)}"

    # One order of every type dispatched, the reread in question among them; the CSFRs work on the work date.
    chosen = [next(o for o in dispatched if o["id"] == questioned[0]["id"])]
    chosen += [
        orders[0] for kind, orders in sorted(by_type.items()) if orders[0]["id"] != questioned[0]["id"]
    ]
    rereads_before = {
        o["id"]
        for o in dispatcher.get("/api/orders", params={"order_type": "reread", "page_size": 500}).json()[
            "items"
        ]
    }
    techs = {
        t["id"]: t["code"].lower() for t in dispatcher.get("/api/technicians").json()
    }  # t01 signs in as t01
    start = dt.datetime.combine(work_date, dt.time(7, 30), zone)
    clock = lambda: max(dt.datetime.now(dt.UTC), start.astimezone(dt.UTC))  # noqa: E731
    tablets: dict[str, Tablet] = {}
    typed: dict[int, str | None] = {}
    try:
        for o in chosen:
            tablets.setdefault(techs[o["technician_id"]], Tablet(day, techs[o["technician_id"]], clock))
        for code, t in tablets.items():
            mine = {o["id"] for o in chosen if techs[o["technician_id"]] == code}
            # Online at the yard: the route arrives as soon as the server's sync loop has published it.
            wait_for(
                lambda t=t, mine=mine: (t.sync() or True) and mine <= set(t.orders()), 60, f"{code}'s route"
            )
            heading = t.services.route.heading
            assert f"{work_date.day} {work_date:%B %Y}" in heading, heading
        for o in chosen:  # out of coverage: everything goes to the local store
            tablet = tablets[techs[o["technician_id"]]]
            on_tablet = tablet.orders()
            assert o["id"] in on_tablet, (
                f"order {o['id']} is not on {techs[o['technician_id']]}'s tablet: {sorted(on_tablet)}"
            )
            order = on_tablet[o["id"]]
            confirm = high if o["id"] == questioned[0]["id"] else None
            typed[o["id"]] = _complete(tablet, order, confirm_reading=confirm)
        for t in tablets.values():
            t.sync()  # back in coverage
        wanted = {o["id"] for o in chosen}

        def all_back() -> bool:
            done = dispatcher.get("/api/orders", params={"page_size": 500, "status": "completed"}).json()[
                "items"
            ]
            return wanted <= {o["id"] for o in done}

        wait_for(all_back, 90, "every field result on the server")
    finally:
        for t in tablets.values():
            t.close()

    # A hand-held docks at the station: its route loads, it is walked, and its reads land.
    given = _dock(day, procs)

    # A confirming reread closes the exception and raises nothing; readings inside the limits raise nothing.
    with day.engine.connect() as conn:
        questioned_read = conn.execute(
            select(MeterRead)
            .where(MeterRead.meter_id == meter["id"], MeterRead.source == "cis")
            .order_by(MeterRead.read_at.desc())
            .limit(1)
        ).one()
        confirming = conn.execute(
            select(MeterRead).where(MeterRead.meter_id == meter["id"], MeterRead.source == "field")
        ).all()
    assert len(confirming) == 1 and confirming[0].confirms_read_id == questioned_read.id, confirming
    rereads_after = dispatcher.get("/api/orders", params={"order_type": "reread", "page_size": 500}).json()[
        "items"
    ]
    worked = {o["meter_id"] for o in chosen if o.get("meter_id")}
    with day.engine.connect() as conn:
        worked |= set(conn.scalars(select(Meter.id).where(Meter.serial.in_(set(given)))))
    raised = [o for o in rereads_after if o["meter_id"] in worked and o["id"] not in rereads_before]
    assert not raised, f"readings inside the limits sent raised rereads: {[o['reason'] for o in raised]}"

    # Every read from every source stored once, in the units typed or carried.
    with day.engine.connect() as conn:
        dupes = conn.execute(
            select(MeterRead.meter_id, MeterRead.register, MeterRead.read_at, func.count())
            .where(MeterRead.duplicate_of_id.is_(None))
            .group_by(MeterRead.meter_id, MeterRead.register, MeterRead.read_at)
            .having(func.count() > 1)
        ).all()
        assert not dupes, f"reads stored twice: {dupes[:5]}"
        field_reads = conn.scalars(select(MeterRead.reading).where(MeterRead.source == "field")).all()
        handheld = conn.execute(
            select(MeterRead.reading, MeterRead.validation, Meter.serial)
            .join(Meter, Meter.id == MeterRead.meter_id)
            .where(MeterRead.source == "handheld")
        ).all()
    assert sorted(Decimal(str(r)).normalize() for r in field_reads) == sorted(
        Decimal(v).normalize() for v in typed.values() if v
    )
    for reading, validation, serial in handheld:
        record = given[serial]
        if record.low_limit is not None and record.high_limit is not None:
            digits = round(float(reading) * 10**record.decimals)
            assert record.low_limit <= digits <= record.high_limit, (serial, reading, record)
            assert validation == "ok", (serial, validation)

    # The station's spool is empty: every read delivered, nothing set aside.
    spool = Spool(procs.tmp / "spool.db")
    try:
        counts = spool.counts()
        assert (counts.unsent, counts.dead) == (0, 0), counts
    finally:
        spool.close()

    # Every order's status agrees with its audit trail.
    assert not _audit_agrees(day)

    # The shut-off review remembers: the next list shows the excluded account as excluded, not as new.
    next_day = _next_shutoff_day(work_date)
    day.cli("generate-orders", "--date", next_day.isoformat())
    batches = day.client("supervisor").get("/api/shutoff-batches").json()
    latest = next(b for b in batches if b["service_date"] == next_day.isoformat())
    detail = day.client("supervisor").get(f"/api/shutoff-batches/{latest['id']}").json()
    assert approval["excluded_account"] in {e["account_id"] for e in detail["excluded"]}, detail["excluded"]
    assert approval["excluded_account"] not in {o["account_id"] for o in detail["orders"]}
