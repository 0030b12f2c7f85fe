"""The one way a read enters: every source (hand-held upload, tablet result, a service change's reading)
calls `intake_reads`; the CIS import keeps its set-based bulk path but the same convention, duplicate
rule (`mark_duplicates`) and classifier.

Unit convention: a stored `MeterRead.reading` is the register as displayed, decimals applied (01234.5 on
a 6-dial register with 1 decimal is 1234.5), in the meter's `unit` before its `multiplier`. A sender
declares its form (`ReadingForm`): hand-helds count in dial digits (12345) and are converted here; the
tablet and the CIS send the displayed value.

What happens to each read, in order:

1. every read is checked before anything is stored: an unknown meter, a reading that does not fit the
   register or has more decimals than it shows, a unit other than the meter's, raise `ReadIntakeError`
   naming each (the sender sees it; nothing of the batch is stored);
2. duplicates are recognised: the same idempotency key, or the same meter, register, time and reading
   from any source, is recorded once and reported as a duplicate; a hand-held read of a register
   another read covered within `TWIN_WINDOW` is stored but flagged (never billed twice);
3. a reading taken to answer a reread (on the reread order, or a hand-held read typed as a reread)
   confirms or corrects the read in question (`policy.toml` [reads] confirm_*): a confirmation closes
   the exception and raises nothing; a correction replaces the read for billing, both stay on record;
4. the reads are derived (`server.meters.derive`) and classified by the one classifier
   (`server.orders.rules.reads.classify`); a read that needs a second look raises a reread order keyed
   `reread:read:<id>`, the daily run's key, so nothing is raised twice.

The limits sent to a tablet or hand-held (`expected_reads`) come from the same derivation and
classifier: a read is derived as if it arrived now, and `reads.reading_limits` asks the classifier
which readings pass. A reading inside them never raises a reread.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.orm import Session

from contracts.codes import CLOSED_STATUSES, OPEN_STATUSES, OrderType, ReadSource
from server.accounts.models import Account
from server.db import utcnow
from server.meters.derive import derive_pending, on_chain
from server.meters.models import Meter, MeterRead
from server.orders import lifecycle
from server.orders import service as orders
from server.orders.lifecycle import LifecycleError, Via
from server.orders.models import WorkOrder
from server.orders.policy import Policy, current_policy
from server.orders.rules.reads import (
    Register,
    Verdict,
    classify,
    describe_read,
    interval_use,
    read_norm,
    reading_limits,
    register_top,
    reread_reason,
    to_gallons,
)
from server.orders.schemas import OrderCreate
from server.timezone import utility_zone

__all__ = [
    "Expected",
    "IntakeResult",
    "ReadIn",
    "ReadIntakeError",
    "ReadOutcome",
    "ReadingForm",
    "Verdict",
    "expected_reads",
    "intake_reads",
    "mark_duplicates",
    "to_displayed",
]

# Another hand-held read of the same register within this window is the same visit read twice:
# stored and flagged, never billed twice.
TWIN_WINDOW = dt.timedelta(hours=12)
PROBE_SOURCE = "limits"  # the source of the never-committed read `expected_reads` derives
REREAD_KEY = re.compile(r"^reread:read:(\d+)$")
DEFAULT_INTERVAL_DAYS = 30.0  # a read in question with no read before it: a monthly cycle


class ReadingForm(StrEnum):
    """How a sender writes a reading."""

    DISPLAYED = "displayed"  # the register as displayed, decimals applied: 1234.5 (tablet, CIS)
    DIGITS = "digits"  # every dial digit as one integer: 12345 for 01234.5 (hand-held records)


def to_displayed(value: float, form: ReadingForm, decimals: int) -> float:
    """A reading in the stored convention (displayed, decimals applied) from the sender's form."""
    if form is ReadingForm.DIGITS:
        return round(value) / float(10**decimals)
    return value


@dataclass(frozen=True)
class ReadIn:
    """One read as a sender gives it. Name the meter by id or serial; `ref` names the read to the sender
    in errors ('reads[3]', 'readings[0]')."""

    read_at: dt.datetime  # timezone-aware
    reading: float
    meter_id: int | None = None
    meter_serial: str | None = None
    register: int = 1
    form: ReadingForm = ReadingForm.DISPLAYED
    unit: str | None = None  # the unit the sender read in, when it says; must be the meter's
    read_code: str = ""
    estimated: bool = False
    idempotency_key: str | None = None
    order_id: int | None = None  # the order it was taken on: a reread order's reading answers it
    reread: bool = False  # the sender says it is a reread (hand-held read type) without naming the order
    ref: str = ""


@dataclass(frozen=True)
class ReadOutcome:
    """What became of one read: `stored`, `duplicate` (already held: nothing stored) or `flagged`
    (stored as another read's duplicate). `validation`/`reason` are the stored verdict."""

    ref: str
    status: str
    read_id: int
    meter_id: int
    validation: str = ""
    reason: str = ""


@dataclass
class IntakeResult:
    """What an intake did, read by read, with totals."""

    outcomes: list[ReadOutcome] = field(default_factory=list)
    rereads_raised: int = 0
    confirmed_read_ids: list[int] = field(default_factory=list)  # reads in question a reread confirmed
    corrected_read_ids: list[int] = field(default_factory=list)  # reads in question a reread replaced
    answered_order_ids: list[int] = field(default_factory=list)  # reread orders whose reading arrived
    closed_order_ids: list[int] = field(default_factory=list)  # of those, open ones cancelled as answered

    def count(self, status: str) -> int:
        """How many reads ended with `status`."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def stored(self) -> int:
        return self.count("stored") + self.count("flagged")

    @property
    def duplicates(self) -> int:
        return self.count("duplicate")

    @property
    def read_ids(self) -> list[int]:
        """The reads this intake stored."""
        return [o.read_id for o in self.outcomes if o.status != "duplicate"]


class ReadIntakeError(ValueError):
    """Reads that cannot be taken in, each named; nothing of the batch was stored."""

    def __init__(self, problems: Sequence[str], *, unknown_meters: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        self.unknown_meters = list(unknown_meters)
        shown = "; ".join(self.problems[:10])
        more = f"; and {len(self.problems) - 10} more" if len(self.problems) > 10 else ""
        super().__init__(f"{shown}{more}")


def register_of(meter: Meter) -> Register:
    """How a meter's register reads to a person."""
    return Register(decimals=meter.decimals, multiplier=meter.multiplier, unit=meter.unit)


def current_accounts(db_session: Session, service_point_ids: Collection[int]) -> dict[int, Account]:
    """The newest account that is not closed at each premise (the one validation judges occupancy by)."""
    out: dict[int, Account] = {}
    if not service_point_ids:
        return out
    for account in db_session.scalars(
        select(Account)
        .where(Account.service_point_id.in_(list(service_point_ids)), Account.status != "closed")
        .order_by(Account.id)
    ):
        out[account.service_point_id] = account
    return out


def _active_occupied(account: Account | None) -> bool:
    return account is not None and account.status == "active" and bool(account.occupied)


# ---- limits for the next read -------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the next read of a meter's register is checked against: readings as displayed (decimals
    applied). `low`/`high` None: an open end (too little history, or a range across the rollover)."""

    meter_id: int
    previous: float | None
    previous_at: dt.datetime | None
    low: float | None
    high: float | None
    last_reads: tuple[tuple[dt.datetime, float], ...]  # newest first, on the register's chain


def expected_reads(
    *,
    db_session: Session,
    meter_ids: Collection[int],
    at: dt.datetime,
    register: int = 1,
    last: int = 3,
    policy: Policy | None = None,
) -> dict[int, Expected]:
    """The limits for each meter's next read taken at `at`, from the same derivation and classifier
    that will validate it: a read is inserted as if it arrived at `at` (inside a savepoint that is
    rolled back), derived like any other, and `reads.reading_limits` asks `classify` which readings
    pass with those facts. Set-based: one insert, one derivation and one select for all meters."""
    policy = policy or current_policy()
    ids = sorted(set(meter_ids))
    if not ids:
        return {}
    derive_pending(db_session, policy)  # the real reads first, so the probe's derivation is its own
    meters = {m.id: m for m in db_session.scalars(select(Meter).where(Meter.id.in_(ids)))}
    ranked = (
        select(
            MeterRead.meter_id.label("meter_id"),
            MeterRead.read_at.label("read_at"),
            MeterRead.reading.label("reading"),
            func.row_number()
            .over(partition_by=MeterRead.meter_id, order_by=(MeterRead.read_at.desc(), MeterRead.id.desc()))
            .label("rn"),
        )
        .where(MeterRead.meter_id.in_(ids), MeterRead.register == register, on_chain())
        .subquery("ranked")
    )
    history: dict[int, list[tuple[dt.datetime, float]]] = {}
    for mid, read_at, reading, _rn in db_session.execute(
        select(ranked).where(ranked.c.rn <= max(last, 1)).order_by(ranked.c.meter_id, ranked.c.rn)
    ):
        history.setdefault(mid, []).append((read_at, float(reading)))
    probes = {mid: max(at, reads[0][0] + dt.timedelta(microseconds=1)) for mid, reads in history.items()}
    derived: dict[int, tuple[float | None, int, int, float | None]] = {}
    if probes:
        savepoint = db_session.begin_nested()
        try:
            db_session.execute(
                insert(MeterRead),
                [
                    {
                        "meter_id": mid,
                        "register": register,
                        "read_at": probe_at,
                        "reading": history[mid][0][1],
                        "source": PROBE_SOURCE,
                        "received_at": utcnow(),
                        "derived": False,
                    }
                    for mid, probe_at in probes.items()
                ],
            )
            derive_pending(db_session, policy)
            for mid, norm, norm_count, history_count, recent_mean in db_session.execute(
                select(
                    MeterRead.meter_id,
                    MeterRead.norm,
                    MeterRead.norm_count,
                    MeterRead.history_count,
                    MeterRead.recent_mean,
                ).where(MeterRead.source == PROBE_SOURCE, MeterRead.meter_id.in_(list(probes)))
            ):
                derived[mid] = (norm, norm_count or 0, history_count or 0, recent_mean)
        finally:
            savepoint.rollback()
    accounts = current_accounts(
        db_session, {m.service_point_id for m in meters.values() if m.service_point_id is not None}
    )
    out: dict[int, Expected] = {}
    for mid in ids:
        meter = meters.get(mid)
        if meter is None:
            continue
        reads = history.get(mid, [])
        low = high = None
        if reads and mid in derived:
            norm, norm_count, history_count, recent_mean = derived[mid]
            account = accounts.get(meter.service_point_id) if meter.service_point_id else None
            low, high = reading_limits(
                previous=reads[0][1],
                norm=read_norm(norm, norm_count, recent_mean)[0],
                history_count=history_count,
                active_occupied=_active_occupied(account),
                dials=meter.dials,
                decimals=meter.decimals,
                policy=policy.reads,
            )
        out[mid] = Expected(
            meter_id=mid,
            previous=reads[0][1] if reads else None,
            previous_at=reads[0][0] if reads else None,
            low=low,
            high=high,
            last_reads=tuple(reads[:last]),
        )
    return out


# ---- intake ------------------------------------------------------------------------------------


def _check(
    reads: Sequence[ReadIn], by_id: dict[int, Meter], by_serial: dict[str, Meter]
) -> tuple[list[Meter], list[float]]:
    """Each read's meter and displayed reading, or ReadIntakeError naming every read that is wrong."""
    problems: list[str] = []
    unknown: list[str] = []
    meters: list[Meter] = []
    values: list[float] = []
    for i, read in enumerate(reads):
        ref = read.ref or f"reads[{i}]"
        meter = (
            by_id.get(read.meter_id) if read.meter_id is not None else by_serial.get(read.meter_serial or "")
        )
        if meter is None:
            name = str(read.meter_id) if read.meter_id is not None else (read.meter_serial or "(none)")
            label = "meter id" if read.meter_id is not None else "meter serial"
            problems.append(f"{ref}: unknown {label} {name}")
            unknown.append(name)
            continue
        if read.read_at.tzinfo is None:
            problems.append(f"{ref}: read_at must carry a time zone")
            continue
        value = to_displayed(read.reading, read.form, meter.decimals)
        top = register_top(meter.dials, meter.decimals)
        if not 0 <= value < top:
            problems.append(
                f"{ref}: reading {value:g} does not fit meter {meter.serial}'s register "
                f"({meter.dials} dials, {meter.decimals} decimals: below {top:,.{meter.decimals}f})"
            )
            continue
        if abs(round(value, meter.decimals) - value) > 1e-9:
            problems.append(
                f"{ref}: reading {value:g} has more decimal places than meter {meter.serial}'s register "
                f"shows ({meter.decimals})"
            )
            continue
        if read.unit is not None and read.unit != meter.unit:
            problems.append(f"{ref}: reading in {read.unit} but meter {meter.serial} counts in {meter.unit}")
            continue
        meters.append(meter)
        values.append(round(value, meter.decimals))
    if problems:
        raise ReadIntakeError(problems, unknown_meters=unknown)
    return meters, values


def _questioned_read(
    db_session: Session, read: ReadIn, meter: Meter
) -> tuple[MeterRead | None, WorkOrder | None]:
    """The read a reread's reading answers, and its reread order: the order the read was taken on when
    it is a reread order of this meter, else (a read the sender marks as a reread) the meter's newest
    open reread order."""
    order = None
    if read.order_id is not None:
        order = db_session.get(WorkOrder, read.order_id)
        if order is not None and (order.order_type != OrderType.REREAD.value or order.meter_id != meter.id):
            order = None
    elif read.reread:
        order = db_session.scalar(
            select(WorkOrder)
            .where(
                WorkOrder.order_type == OrderType.REREAD.value,
                WorkOrder.meter_id == meter.id,
                WorkOrder.status.in_([s.value for s in OPEN_STATUSES]),
            )
            .order_by(WorkOrder.id.desc())
            .limit(1)
        )
    if order is None:
        return None, None
    match = REREAD_KEY.match(order.idempotency_key)
    questioned = db_session.get(MeterRead, int(match.group(1))) if match else None
    if (
        questioned is None
        or questioned.meter_id != meter.id
        or questioned.register != read.register
        or questioned.read_at >= read.read_at
        or questioned.superseded_by_id is not None
    ):
        return None, order
    return questioned, order


def confirms(
    db_session: Session,
    questioned: MeterRead,
    reading: float,
    read_at: dt.datetime,
    meter: Meter,
    policy: Policy,
) -> tuple[bool, str]:
    """Whether a reread's `reading` confirms the read in question, and why (see the module docstring
    and policy.toml [reads] confirm_use_factor / confirm_margin_gallons)."""
    p = policy.reads
    units = register_of(meter)
    if questioned.estimated:
        return False, "the read in question was an estimate"
    use, _ = interval_use(
        float(questioned.reading),
        reading,
        dials=meter.dials,
        decimals=meter.decimals,
        max_fraction=p.rollover_max_fraction,
    )
    if use < 0:
        return False, f"the register is {units.volume(-use)} behind the read in question"
    interval_days = _interval_days(db_session, questioned)
    norm, _ = read_norm(questioned.norm, questioned.norm_count, questioned.recent_mean)
    daily = max(questioned.use or 0.0, norm or 0.0) / interval_days
    days = max((read_at - questioned.read_at).total_seconds() / 86400, 0.0)
    margin = p.confirm_margin_gallons / to_gallons(1.0, multiplier=meter.multiplier, unit=meter.unit)
    allowance = p.confirm_use_factor * daily * days + margin
    verdict = use <= allowance + 1e-9
    why = (
        f"{units.volume(use)} on since it in {days:.1f} days, "
        f"{'within' if verdict else 'beyond'} the {units.volume(allowance)} expected"
    )
    return verdict, why


def _interval_days(db_session: Session, read: MeterRead) -> float:
    """Days the read's use covers (from the read before it on the chain); a month when unknown."""
    if read.prev_read_id is None or read.use is None:
        return DEFAULT_INTERVAL_DAYS
    prev = db_session.get(MeterRead, read.prev_read_id)
    if prev is None:
        return DEFAULT_INTERVAL_DAYS
    return max((read.read_at - prev.read_at).total_seconds() / 86400, 1.0)


def intake_reads(
    *,
    db_session: Session,
    reads: Sequence[ReadIn],
    source: ReadSource,
    actor: str,
    policy: Policy | None = None,
    zone: ZoneInfo | None = None,
) -> IntakeResult:
    """Take reads in from any source: check, store once, answer rereads, derive, classify, raise rereads.

    Raises ReadIntakeError (nothing stored) when any read names an unknown meter or does not fit its
    register. See the module docstring for each step.
    """
    policy = policy or current_policy()
    zone = zone or utility_zone()
    result = IntakeResult()
    if not reads:
        return result
    ids = {r.meter_id for r in reads if r.meter_id is not None}
    serials = {r.meter_serial for r in reads if r.meter_id is None and r.meter_serial}
    by_id = {m.id: m for m in db_session.scalars(select(Meter).where(Meter.id.in_(ids)))} if ids else {}
    by_serial = (
        {m.serial: m for m in db_session.scalars(select(Meter).where(Meter.serial.in_(serials)))}
        if serials
        else {}
    )
    meters, values = _check(reads, by_id, by_serial)
    derive_pending(db_session, policy)  # the reads in question carry their derivation before we compare

    keys = [r.idempotency_key for r in reads if r.idempotency_key]
    by_key = (
        dict(
            db_session.execute(
                select(MeterRead.idempotency_key, MeterRead.id).where(MeterRead.idempotency_key.in_(keys))
            ).all()
        )
        if keys
        else {}
    )
    seen_keys: dict[str, int] = {}
    slots: list[ReadOutcome | None] = [None] * len(reads)  # outcomes in the order the reads were given
    stored: list[tuple[int, MeterRead, Meter, str, MeterRead | None, bool]] = []
    for i, (read, meter, value) in enumerate(zip(reads, meters, values, strict=True)):
        ref = read.ref or f"reads[{i}]"
        at = read.read_at.astimezone(dt.UTC)
        known = by_key.get(read.idempotency_key or "") or seen_keys.get(read.idempotency_key or "")
        if known is not None:
            slots[i] = ReadOutcome(ref, "duplicate", known, meter.id)
            continue
        same = db_session.scalar(
            select(MeterRead.id)
            .where(
                MeterRead.meter_id == meter.id,
                MeterRead.register == read.register,
                MeterRead.read_at == at,
                MeterRead.reading == value,
            )
            .order_by(MeterRead.id)
            .limit(1)
        )
        if same is not None:
            slots[i] = ReadOutcome(ref, "duplicate", same, meter.id)
            continue
        clash = db_session.scalar(
            select(MeterRead).where(
                MeterRead.meter_id == meter.id,
                MeterRead.register == read.register,
                MeterRead.read_at == at,
                MeterRead.source == source.value,
            )
        )
        if clash is not None:
            raise ReadIntakeError(
                [
                    f"{ref}: meter {meter.serial} already has a {source.value} reading at {at.isoformat()} "
                    f"({register_of(meter).reading(float(clash.reading))}), not "
                    f"{register_of(meter).reading(value)}"
                ]
            )
        questioned, order = _questioned_read(db_session, read, meter)
        if order is not None and order.id not in result.answered_order_ids:
            result.answered_order_ids.append(order.id)
        twin = None
        if source is ReadSource.HANDHELD and questioned is None:
            twin = db_session.scalar(
                select(MeterRead)
                .where(
                    MeterRead.meter_id == meter.id,
                    MeterRead.register == read.register,
                    MeterRead.read_at.between(at - TWIN_WINDOW, at + TWIN_WINDOW),
                    on_chain(),
                )
                .order_by(MeterRead.id)
                .limit(1)
            )
        row = MeterRead(
            meter_id=meter.id,
            register=read.register,
            read_at=at,
            reading=value,
            source=source.value,
            read_code=read.read_code,
            estimated=read.estimated,
            idempotency_key=read.idempotency_key,
            received_at=utcnow(),
        )
        confirmed, why, said, mine = False, "", "", ""
        if twin is not None:
            row.duplicate_of_id = twin.id
            row.validation = "duplicate"
            row.validation_reason = (
                f"same register read within {TWIN_WINDOW.total_seconds() / 3600:g} hours: the "
                f"{describe_read(register_of(meter), float(twin.reading), twin.read_at, zone)}"
            )[:200]
        elif questioned is not None:
            said = describe_read(register_of(meter), float(questioned.reading), questioned.read_at, zone)
            mine = describe_read(register_of(meter), value, at, zone)
            confirmed, why = confirms(db_session, questioned, value, at, meter, policy)
            if confirmed:
                row.confirms_read_id = questioned.id
                row.validation = "confirms"
                row.validation_reason = f"confirms the {said}: {why}"[:200]
            else:
                row.corrects_read_id = questioned.id
        db_session.add(row)
        db_session.flush()
        if read.idempotency_key:
            seen_keys[read.idempotency_key] = row.id
        if questioned is not None and twin is None:
            if confirmed:
                questioned.validation = "confirmed"
                questioned.validation_reason = f"confirmed by a reread: the {mine}"[:200]
                result.confirmed_read_ids.append(questioned.id)
            else:
                questioned.superseded_by_id = row.id
                questioned.validation = "superseded"
                questioned.validation_reason = f"replaced for billing by a reread: the {mine} ({why})"[:200]
                result.corrected_read_ids.append(questioned.id)
                # Reads after the one replaced counted from it: derive them again.
                db_session.execute(
                    update(MeterRead)
                    .where(
                        MeterRead.meter_id == meter.id,
                        MeterRead.register == read.register,
                        MeterRead.read_at > questioned.read_at,
                        on_chain(),
                    )
                    .values(derived=False)
                    .execution_options(synchronize_session=False)
                )
            if order is not None and read.order_id is None:
                # Answered by a read not taken on the order (a hand-held reread): nothing is left to do there.
                outcome = "confirms" if confirmed else "corrects"
                if _close_answered(
                    db_session,
                    order,
                    actor,
                    f"answered by a {source.value} reread: the {mine} {outcome} the {said}",
                ):
                    result.closed_order_ids.append(order.id)
        stored.append((i, row, meter, ref, questioned, confirmed))
    db_session.flush()
    derive_pending(db_session, policy)

    accounts = current_accounts(
        db_session, {m.service_point_id for _i, _r, m, *_ in stored if m.service_point_id is not None}
    )
    defaults = policy.order_defaults(OrderType.REREAD)
    for i, row, meter, ref, questioned, confirmed in stored:
        db_session.refresh(row)
        if row.duplicate_of_id is not None or confirmed:
            status = "flagged" if row.duplicate_of_id is not None else "stored"
            slots[i] = ReadOutcome(ref, status, row.id, meter.id, row.validation, row.validation_reason)
            continue
        account = accounts.get(meter.service_point_id) if meter.service_point_id else None
        verdict = _classify(db_session, row, meter, account, policy)
        if questioned is not None:
            # A technician stood at the meter for this one: never a reread of a reread (that loops).
            verdict = Verdict(
                verdict.validation,
                f"corrects the {describe_read(register_of(meter), float(questioned.reading), questioned.read_at, zone)}; "
                f"{verdict.reason}",
                False,
            )
        row.validation = verdict.validation
        row.validation_reason = verdict.reason[:200]
        if verdict.reread and meter.service_point_id is not None:
            _, created = orders.create(
                db_session=db_session,
                body=OrderCreate(
                    order_type=OrderType.REREAD,
                    service_point_id=meter.service_point_id,
                    account_id=account.id if account is not None else None,
                    meter_id=meter.id,
                    priority=defaults.priority,
                    estimated_minutes=defaults.minutes,
                    required_skills=sorted(defaults.skills),
                    reason=reread_reason(register_of(meter), float(row.reading), row.read_at, verdict, zone),
                ),
                actor=actor,
                idempotency_key=f"reread:read:{row.id}",
                rule="reread",
            )
            result.rereads_raised += created
        slots[i] = ReadOutcome(ref, "stored", row.id, meter.id, row.validation, row.validation_reason)
    db_session.flush()
    result.outcomes = [o for o in slots if o is not None]
    return result


def _close_answered(db_session: Session, order: WorkOrder, actor: str, reason: str) -> bool:
    """Cancel a reread order a read from elsewhere answered (through the order lifecycle); False when the
    lifecycle refuses (the order is already closed)."""
    if order.status in {s.value for s in CLOSED_STATUSES}:
        return False
    try:
        lifecycle.cancel(db_session=db_session, order=order, actor=actor, via=Via.API, reason=reason[:500])
    except LifecycleError:
        return False
    return True


def _classify(
    db_session: Session, row: MeterRead, meter: Meter, account: Account | None, policy: Policy
) -> Verdict:
    """The one classifier over a stored, derived read."""
    p = policy.reads
    estimates = 0
    walk: MeterRead | None = row
    while walk is not None and walk.estimated and estimates < p.estimates_in_a_row:
        estimates += 1
        walk = db_session.get(MeterRead, walk.prev_read_id) if walk.prev_read_id is not None else None
    norm, norm_name = read_norm(row.norm, row.norm_count, row.recent_mean)
    return classify(
        use=row.use,
        rolled=row.rolled,
        read_code=row.read_code,
        norm=norm,
        history_count=row.history_count,
        active_occupied=_active_occupied(account),
        estimates_in_a_row=estimates,
        policy=p,
        register=register_of(meter),
        norm_name=norm_name,
    )


def mark_duplicates(db_session: Session) -> int:
    """Set-based duplicate rule for bulk paths (the CIS import): an underived read with the same meter,
    register, time and reading as an earlier read (any source) becomes that read's duplicate (kept, off
    the chain, never billed twice). Returns how many were marked.

    One aggregate over the unique index finds the (meter, register, time) groups holding more than one
    read (the unique key is per source, so a twin has another source: rare); only those rows are read,
    and their underived ones marked."""
    db_session.flush()
    key = (MeterRead.meter_id, MeterRead.register, MeterRead.read_at)
    # Only key columns: the (meter, register, read_at, source) unique index answers it without the table.
    groups = select(*key).group_by(*key).having(func.count() > 1).subquery("groups")
    rows = db_session.execute(
        select(
            MeterRead.id,
            MeterRead.meter_id,
            MeterRead.register,
            MeterRead.read_at,
            MeterRead.reading,
            MeterRead.derived,
        )
        .join(
            groups,
            and_(
                groups.c.meter_id == MeterRead.meter_id,
                groups.c.register == MeterRead.register,
                groups.c.read_at == MeterRead.read_at,
            ),
        )
        .where(MeterRead.duplicate_of_id.is_(None))
        .order_by(MeterRead.id)
    ).all()
    first: dict[tuple[int, int, dt.datetime, float], int] = {}
    marked = 0
    for read_id, meter_id, register, read_at, reading, derived in rows:
        original = first.setdefault((meter_id, register, read_at, float(reading)), read_id)
        if original != read_id and not derived:
            db_session.execute(
                update(MeterRead)
                .where(MeterRead.id == read_id)
                .values(
                    duplicate_of_id=original,
                    validation="duplicate",
                    validation_reason="same reading already held",
                )
                .execution_options(synchronize_session=False)
            )
            marked += 1
    return marked
