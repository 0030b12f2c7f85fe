"""Reading routes, device assignment, downloads and idempotent uploads."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from contracts.codes import ReadSource, VolumeUnit
from contracts.handheld import ReadRecord, ReadType, RouteRecord
from server.accounts.models import Account, Customer, ServicePoint
from server.audit.service import record
from server.db import utcnow
from server.errors import ApiError, conflict, not_found
from server.handhelds.models import (
    HandheldDevice,
    HandheldSkip,
    HandheldUploadBatch,
    ReadingRoute,
    ReadingRouteStop,
    RouteAssignment,
)
from server.meters.intake import ReadIn, ReadingForm, ReadIntakeError, expected_reads, intake_reads
from server.meters.models import Meter
from server.results import service as results


def _walk_order(points: list[tuple[int, float, float]]) -> list[int]:
    """Greedy nearest-neighbour walk from the south-west-most premise; returns the ids in walk order."""
    if not points:
        return []
    remaining = {pid: (lat, lon) for pid, lat, lon in points}
    current = min(points, key=lambda p: (p[1] + p[2], p[0]))[0]
    order = [current]
    cur_lat, cur_lon = remaining.pop(current)
    while remaining:
        coslat = math.cos(math.radians(cur_lat))
        nxt = min(
            remaining,
            key=lambda pid: (
                (remaining[pid][0] - cur_lat) ** 2 + ((remaining[pid][1] - cur_lon) * coslat) ** 2,
                pid,
            ),
        )
        cur_lat, cur_lon = remaining.pop(nxt)
        order.append(nxt)
    return order


@dataclass(frozen=True)
class BuildResult:
    """What a route build made."""

    routes: int
    meters: int


def build_routes(*, db_session: Session, actor: str, cycle: str | None = None) -> BuildResult:
    """(Re)build reading routes from in-service meters: one per book and cycle, in walk order.

    A rebuilt route keeps its id (and so its device assignment); its stops are replaced.
    """
    query = (
        select(
            Meter.id,
            Account.id,
            ServicePoint.id,
            ServicePoint.route,
            Account.billing_cycle,
            ServicePoint.lat,
            ServicePoint.lon,
        )
        .join(ServicePoint, ServicePoint.id == Meter.service_point_id)
        .join(Account, Account.service_point_id == ServicePoint.id)
        .where(Meter.status == "in_service", Account.status != "closed", ServicePoint.route != "")
    )
    if cycle is not None:
        query = query.where(Account.billing_cycle == cycle)
    groups: dict[tuple[str, str], dict[int, tuple[int, int, float, float]]] = defaultdict(dict)
    for meter_id, account_id, sp_id, book, acct_cycle, lat, lon in db_session.execute(query):
        groups[(book, acct_cycle or "0")][meter_id] = (account_id, sp_id, lat, lon)
    meters = 0
    for (book, route_cycle), members in sorted(groups.items()):
        route = db_session.scalar(
            select(ReadingRoute).where(ReadingRoute.route_code == book, ReadingRoute.cycle == route_cycle)
        )
        if route is None:
            route = ReadingRoute(route_code=book, cycle=route_cycle)
            db_session.add(route)
            db_session.flush()
        else:
            route.built_at = utcnow()
            db_session.execute(delete(ReadingRouteStop).where(ReadingRouteStop.route_id == route.id))
        order = _walk_order([(mid, lat, lon) for mid, (_a, _s, lat, lon) in members.items()])
        db_session.add_all(
            ReadingRouteStop(
                route_id=route.id,
                sequence=(i + 1) * 10,
                meter_id=mid,
                account_id=members[mid][0],
                service_point_id=members[mid][1],
            )
            for i, mid in enumerate(order)
        )
        meters += len(order)
    record(
        db_session=db_session,
        actor=actor,
        action="built",
        entity_type="reading_routes",
        entity_id=cycle or "all",
        detail={"routes": len(groups), "meters": meters},
    )
    db_session.flush()
    return BuildResult(routes=len(groups), meters=meters)


def find_device(*, db_session: Session, device_id: str) -> HandheldDevice | None:
    """The device registered under that id (active or not), or None."""
    return db_session.scalar(select(HandheldDevice).where(HandheldDevice.device_id == device_id))


def get_device(*, db_session: Session, device_id: str) -> HandheldDevice:
    """The registered, active device with that id, or a 404 saying what to do about it."""
    device = find_device(db_session=db_session, device_id=device_id)
    if device is None:
        raise ApiError(
            404,
            "unknown_handheld",
            f"hand-held {device_id!r} is not registered on this server; register it "
            "(POST /api/handhelds/devices) before it docks",
            fields=[{"field": "device_id", "message": f"not a registered hand-held: {device_id}"}],
        )
    if not device.active:
        raise ApiError(
            404,
            "inactive_handheld",
            f"hand-held {device_id!r} is registered but retired (inactive)",
            fields=[{"field": "device_id", "message": f"retired hand-held: {device_id}"}],
        )
    return device


def register_device(*, db_session: Session, device_id: str, name: str, actor: str) -> HandheldDevice:
    """Register a hand-held so it may dock; 409 when that id is already registered."""
    if find_device(db_session=db_session, device_id=device_id) is not None:
        raise conflict(f"hand-held {device_id!r} is already registered")
    device = HandheldDevice(device_id=device_id, name=name)
    db_session.add(device)
    db_session.flush()
    record(
        db_session=db_session,
        actor=actor,
        action="registered",
        entity_type="handheld",
        entity_id=device_id,
        detail={"name": name},
    )
    return device


@dataclass(frozen=True)
class RouteSummaryRow:
    """A reading route with its size and the device holding it."""

    id: int
    route_code: str
    cycle: str
    meters: int
    device_id: str | None
    status: str | None


def route_summaries(*, db_session: Session, cycle: str | None = None) -> list[RouteSummaryRow]:
    """Every reading route with its size and where it is, by cycle and book."""
    sizes = (
        select(ReadingRouteStop.route_id, func.count().label("n"))
        .group_by(ReadingRouteStop.route_id)
        .subquery()
    )
    query = (
        select(ReadingRoute, sizes.c.n, HandheldDevice.device_id, RouteAssignment.status)
        .join(sizes, sizes.c.route_id == ReadingRoute.id)
        .outerjoin(RouteAssignment, RouteAssignment.route_id == ReadingRoute.id)
        .outerjoin(HandheldDevice, HandheldDevice.id == RouteAssignment.device_pk)
        .order_by(ReadingRoute.cycle, ReadingRoute.route_code)
    )
    if cycle is not None:
        query = query.where(ReadingRoute.cycle == cycle)
    return [
        RouteSummaryRow(id=r.id, route_code=r.route_code, cycle=r.cycle, meters=n, device_id=d, status=s)
        for r, n, d, s in db_session.execute(query)
    ]


def assign(*, db_session: Session, route_id: int, device_id: str, actor: str) -> RouteAssignment:
    """Give a route to a device (moving it from any other device)."""
    route = db_session.get(ReadingRoute, route_id)
    if route is None:
        raise not_found("reading route", route_id)
    device = get_device(db_session=db_session, device_id=device_id)
    current = db_session.scalar(select(RouteAssignment).where(RouteAssignment.route_id == route_id))
    if current is None:
        current = RouteAssignment(route_id=route_id, device_pk=device.id, assigned_by=actor)
        db_session.add(current)
    else:
        current.device_pk = device.id
        current.status = "assigned"
        current.assigned_by = actor
        current.assigned_at = utcnow()
        current.downloaded_at = None
    record(
        db_session=db_session,
        actor=actor,
        action="assigned",
        entity_type="reading_route",
        entity_id=route_id,
        detail={"device_id": device_id},
    )
    db_session.flush()
    return current


def _digits(value: float | None, decimals: int, dials: int) -> int | None:
    """A displayed reading as the register's integer digits (1234.5 on 1 decimal -> 12345), wrapped to the dials."""
    if value is None:
        return None
    return round(value * 10**decimals) % 10**dials


def route_records(*, db_session: Session, device_id: str) -> list[RouteRecord]:
    """Everything assigned to a device, as route records in walk order; marks the assignments downloaded."""
    device = get_device(db_session=db_session, device_id=device_id)
    device.last_seen_at = utcnow()
    assignments = list(
        db_session.scalars(select(RouteAssignment).where(RouteAssignment.device_pk == device.id))
    )
    out: list[RouteRecord] = []
    for assignment in assignments:
        route = db_session.get(ReadingRoute, assignment.route_id)
        assert route is not None
        rows = db_session.execute(
            select(ReadingRouteStop, Meter, ServicePoint, Account, Customer)
            .join(Meter, Meter.id == ReadingRouteStop.meter_id)
            .join(ServicePoint, ServicePoint.id == ReadingRouteStop.service_point_id)
            .outerjoin(Account, Account.id == ReadingRouteStop.account_id)
            .outerjoin(Customer, Customer.id == Account.customer_id)
            .where(ReadingRouteStop.route_id == route.id)
            .order_by(ReadingRouteStop.sequence)
        ).all()
        # The limits come from the same derivation and classifier that validate the reads coming back
        # (server.meters.intake.expected_reads), as register digits like every reading on the line.
        expected = expected_reads(
            db_session=db_session, meter_ids=[m.id for _s, m, _sp, _a, _c in rows], at=utcnow()
        )
        for stop, meter, sp, account, customer in rows:
            facts = expected[meter.id]
            low = _digits(facts.low, meter.decimals, meter.dials)
            high = _digits(facts.high, meter.decimals, meter.dials)
            out.append(
                RouteRecord(
                    route_id=route.route_code,
                    cycle=route.cycle,
                    sequence=stop.sequence,
                    account=account.account_number if account else "-",
                    service_point_id=sp.cis_service_point_id,
                    customer_name=(customer.name if customer else "")[:200],
                    address=sp.address[:200],
                    meter_serial=meter.serial,
                    endpoint_id=meter.radio_id[:20],
                    register_number=1,
                    dials=meter.dials,
                    decimals=meter.decimals,
                    multiplier=meter.multiplier,
                    unit=VolumeUnit(meter.unit),
                    previous_read=_digits(facts.previous, meter.decimals, meter.dials),
                    low_limit=low,
                    high_limit=high,
                    location_note=sp.access_notes[:200],
                    hazard_note=", ".join(sp.hazards)[:200],
                )
            )
        assignment.status = "downloaded"
        assignment.downloaded_at = utcnow()
    db_session.flush()
    return out


@dataclass
class UploadOutcome:
    """What an upload did: new reads stored, reads already held, new reads flagged as another device's duplicate."""

    accepted: int
    duplicates: int
    flagged: int
    skips: int
    new_read_ids: list[int]


def ingest_upload(
    *, db_session: Session, device_id: str, reads: Sequence[ReadRecord], batch_key: str | None, station: str
) -> UploadOutcome:
    """Store a device's reads exactly once; a repeated batch or read changes nothing."""
    device = get_device(db_session=db_session, device_id=device_id)
    device.last_seen_at = utcnow()
    if batch_key:
        seen = db_session.scalar(
            select(HandheldUploadBatch).where(HandheldUploadBatch.idempotency_key == batch_key)
        )
        if seen is not None:
            return UploadOutcome(accepted=0, duplicates=len(reads), flagged=0, skips=0, new_read_ids=[])
    serials = {r.meter_serial for r in reads}
    meters = {m.serial: m for m in db_session.scalars(select(Meter).where(Meter.serial.in_(serials)))}
    unknown = sorted(serials - set(meters))
    if unknown:
        raise ApiError(
            422,
            "unknown_meter",
            f"unknown meter serial(s): {', '.join(unknown[:20])}; nothing was stored",
            fields=[
                {"field": "reads.meter_serial", "message": f"not a known meter: {s}"} for s in unknown[:20]
            ],
        )
    # Reads go through the one intake (digits converted to the displayed register value, duplicates,
    # rereads answered, the one classifier); it checks every read before storing any.
    taken = [
        ReadIn(
            meter_serial=read.meter_serial,
            register=read.register_number,
            read_at=read.read_at,
            reading=read.reading,
            form=ReadingForm.DIGITS,
            read_code=str(read.trouble_code)
            or ("tamper" if read.tamper else "leak_suspected" if read.leak else ""),
            idempotency_key=read.idempotency_key,
            reread=read.read_type is ReadType.REREAD,
            ref=f"reads[{i}] (meter {read.meter_serial})",
        )
        for i, read in enumerate(reads)
        if read.reading is not None
    ]
    try:
        intake = intake_reads(db_session=db_session, reads=taken, source=ReadSource.HANDHELD, actor=station)
    except ReadIntakeError as exc:
        raise ApiError(
            422,
            "unknown_meter" if exc.unknown_meters else "invalid_read",
            f"{exc}; nothing was stored",
            fields=[{"field": "reads", "message": problem} for problem in exc.problems[:20]],
        ) from None
    # One typed result (and review item) per read and skip (server/results), idempotent by read key.
    results.record_from_handheld(db_session=db_session, reads=reads, intake=intake, station=station)
    outcome = UploadOutcome(
        accepted=intake.stored,
        duplicates=intake.duplicates,
        flagged=intake.count("flagged"),
        skips=0,
        new_read_ids=[o.read_id for o in intake.outcomes if o.status == "stored"],
    )
    skips = [read for read in reads if read.reading is None]
    keys = [r.idempotency_key for r in skips]
    have = set(
        db_session.scalars(select(HandheldSkip.idempotency_key).where(HandheldSkip.idempotency_key.in_(keys)))
    )
    in_batch: Counter[str] = Counter()
    for read in skips:
        key = read.idempotency_key
        if key in have or in_batch[key]:
            outcome.duplicates += 1
            continue
        in_batch[key] += 1
        db_session.add(
            HandheldSkip(
                idempotency_key=key,
                device_pk=device.id,
                meter_id=meters[read.meter_serial].id,
                read_at=read.read_at,
                skip_code=str(read.skip_code),
                note=read.note,
                detail=read.model_dump(mode="json", exclude={"idempotency_key"}),
            )
        )
        outcome.skips += 1
        outcome.accepted += 1
    if batch_key:
        db_session.add(
            HandheldUploadBatch(
                idempotency_key=batch_key,
                device_pk=device.id,
                station=station,
                accepted=outcome.accepted,
                duplicates=outcome.duplicates,
            )
        )
    record(
        db_session=db_session,
        actor=station,
        action="upload",
        entity_type="handheld",
        entity_id=device_id,
        detail={
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "flagged": outcome.flagged,
            "skips": outcome.skips,
            "batch": batch_key,
        },
    )
    db_session.flush()
    return outcome
