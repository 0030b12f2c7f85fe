"""Derive each read's facts when it arrives, so that nothing later has to walk a register's history.

For every read on a register's chain (not a duplicate, not a reread's confirmation, not a read a reread
superseded: see `on_chain`), ordered by time:

* ``prev_read_id``: the read before it;
* ``use`` and ``rolled``: the use since that read, a dial rollover taken into account exactly as
  ``server.orders.rules.reads.interval_use`` does (a test holds the two together);
* ``norm`` and ``norm_count``: the mean usable use of the intervals ending in the same calendar month
  of the ``reads.history_years`` earlier years, and how many there were (the seasonal norm);
* ``history_count``: how many usable intervals the register had before this read;
* ``recent_mean``: the mean usable use of the twelve reads before it (the norm's fall-back).

"Usable" is a use that is not negative (a backwards read no rollover explains is left out).

A read is inserted with ``derived`` false. ``derive_pending`` finds the registers holding such reads
and re-derives each from its earliest underived read onwards, in one set-based UPDATE (window
functions over the register's history; SQLite 3.28+ and PostgreSQL both run it), so a read that
arrives late, out of order, also corrects the reads after it. Every path that adds reads calls it
(CIS import, hand-held upload, field results through sync) and so does every order-generation run, so
a read that slipped in some other way is derived before any rule looks at it.

The derivation depends on two policy values (``reads.rollover_max_fraction`` and
``reads.history_years``); they are recorded in ``read_derivation``, and a change re-derives every read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from server.meters.models import Meter, MeterRead, ReadDerivation
from server.orders.policy import Policy

ANALYTIC_WORK_MEM = "64MB"  # per sort or hash of the derivation query on PostgreSQL
RECENT_READS = 12  # reads before this one whose mean use is the norm's fall-back
UNDERIVED = text("NOT meter_reads.derived")  # the ix_meter_reads_underived predicate, verbatim


def on_chain() -> ColumnElement[bool]:
    """Reads on their register's chain: what use, norms, billing and the order rules count. Off it (kept
    on record): a duplicate, a reread's reading that confirmed the read in question, a read a reread
    corrected (server/meters/intake.py)."""
    return and_(
        MeterRead.duplicate_of_id.is_(None),
        MeterRead.confirms_read_id.is_(None),
        MeterRead.superseded_by_id.is_(None),
    )


def _register_top_sql(dials: Any, decimals: Any) -> ColumnElement[Any]:
    """SQL twin of `rules.reads.register_top`: 10 ** (dials - decimals) as a CASE (SQLite may lack POWER())."""
    digits = dials - decimals
    return case(*((digits == n, literal(float(10**n))) for n in range(13)), else_=literal(1e12))


@contextmanager
def _analytic_settings(db_session: Session) -> Iterator[None]:
    """On PostgreSQL, run one large read query with room to sort and hash in memory (the default 4 MB
    work_mem spills the window and join to disk at district scale) and without JIT compilation (about a
    second of compiling for a query that runs once); the previous settings come back afterwards."""
    if db_session.get_bind().dialect.name != "postgresql":
        yield
        return
    before = db_session.execute(text("SELECT current_setting('work_mem'), current_setting('jit')")).one()
    db_session.execute(
        text("SELECT set_config('work_mem', :mem, true), set_config('jit', 'off', true)"),
        {"mem": ANALYTIC_WORK_MEM},
    )
    try:
        yield
    finally:
        db_session.execute(
            text("SELECT set_config('work_mem', :mem, true), set_config('jit', :jit, true)"),
            {"mem": before[0], "jit": before[1]},
        )


def fingerprint(policy: Policy) -> str:
    """The policy values a derivation depends on."""
    p = policy.reads
    return f"v1 rollover_max_fraction={p.rollover_max_fraction!r} history_years={p.history_years}"


def _check_policy(db_session: Session, policy: Policy) -> None:
    """Mark every read underived when the policy values the stored derivations used have changed."""
    wanted = fingerprint(policy)
    row = db_session.get(ReadDerivation, 1)
    if row is None:
        # Reads derived before the table was filled cannot be trusted to match either.
        db_session.add(ReadDerivation(id=1, fingerprint=wanted))
    elif row.fingerprint != wanted:
        row.fingerprint = wanted
    else:
        return
    db_session.execute(update(MeterRead).where(MeterRead.derived).values(derived=False))
    db_session.flush()


def pending_registers(db_session: Session) -> int:
    """How many registers hold a read that is not derived yet."""
    db_session.flush()
    pending = select(MeterRead.meter_id, MeterRead.register).where(UNDERIVED).distinct().subquery("pending")
    return db_session.scalar(select(func.count()).select_from(pending)) or 0


def derive_pending(db_session: Session, policy: Policy) -> int:
    """Derive every underived read and the reads after it on its register; return how many were written."""
    db_session.flush()
    _check_policy(db_session, policy)
    # A read off the chain carries nothing (its original, or the read that stands for it, does).
    db_session.execute(
        update(MeterRead)
        .where(UNDERIVED, ~on_chain())
        .values(
            derived=True,
            prev_read_id=None,
            use=None,
            rolled=False,
            norm=None,
            norm_count=0,
            history_count=0,
            recent_mean=None,
        )
    )
    if not pending_registers(db_session):
        return 0
    d = _derivations(policy)
    with _analytic_settings(db_session):
        result = db_session.execute(
            update(MeterRead)
            .where(MeterRead.id == d.c.id, d.c.read_at >= d.c.first_at)
            .values(
                derived=True,
                prev_read_id=d.c.prev_id,
                use=d.c.use,
                rolled=d.c.rolled,
                norm=d.c.norm,
                norm_count=d.c.norm_count,
                history_count=d.c.history_count,
                recent_mean=d.c.recent_mean,
            )
            .execution_options(synchronize_session=False)
        )
    # The UPDATE went around the ORM: reads this session holds would show their old derivation.
    for obj in list(db_session.identity_map.values()):
        if isinstance(obj, MeterRead):
            db_session.expire(obj)
    return int(result.rowcount or 0)


def _derivations(policy: Policy) -> Any:
    """Subquery: every read of a register holding an underived read, with its derived values (see the
    module docstring) and `first_at`, the register's earliest underived read (the UPDATE writes from there on)."""
    reads_p = policy.reads
    pending = (
        select(
            MeterRead.meter_id.label("meter_id"),
            MeterRead.register.label("register"),
            func.min(MeterRead.read_at).label("first_at"),
        )
        .where(UNDERIVED)
        .group_by(MeterRead.meter_id, MeterRead.register)
        .subquery("pending")
    )
    register = (MeterRead.meter_id, MeterRead.register)
    in_time = (MeterRead.read_at, MeterRead.id)
    reading = cast(MeterRead.reading, Float)
    r = (
        select(
            MeterRead.id.label("id"),
            MeterRead.meter_id.label("meter_id"),
            MeterRead.register.label("register"),
            MeterRead.read_at.label("read_at"),
            reading.label("reading"),
            func.lag(reading).over(partition_by=register, order_by=in_time).label("prev"),
            func.lag(MeterRead.id).over(partition_by=register, order_by=in_time).label("prev_id"),
            _register_top_sql(Meter.dials, Meter.decimals).label("top"),
            pending.c.first_at,
        )
        .join(
            pending, and_(pending.c.meter_id == MeterRead.meter_id, pending.c.register == MeterRead.register)
        )
        .join(Meter, Meter.id == MeterRead.meter_id)
        .where(on_chain())
        .subquery("r")
    )
    rolled_use = r.c.top - r.c.prev + r.c.reading
    rolls = and_(
        r.c.reading < r.c.prev, rolled_use >= 0, rolled_use < reads_p.rollover_max_fraction * r.c.top
    )
    u = select(
        r.c.id,
        r.c.meter_id,
        r.c.register,
        r.c.read_at,
        r.c.first_at,
        r.c.prev_id,
        case((r.c.prev.is_(None), None), (rolls, rolled_use), else_=r.c.reading - r.c.prev).label("use"),
        case((rolls, True), else_=False).label("rolled"),
        cast(func.extract("month", r.c.read_at), Integer).label("mon"),
        cast(func.extract("year", r.c.read_at), Integer).label("yr"),
    ).subquery("u")
    usable = case((u.c.use >= 0, u.c.use), else_=None)
    season = {
        "partition_by": (u.c.meter_id, u.c.register, u.c.mon),
        "order_by": u.c.yr,
        "range_": (-reads_p.history_years, -1),
    }
    before = {"partition_by": (u.c.meter_id, u.c.register), "order_by": (u.c.read_at, u.c.id)}
    d = select(
        u.c.id,
        u.c.read_at,
        u.c.first_at,
        u.c.prev_id,
        u.c.use,
        u.c.rolled,
        func.avg(usable).over(**season).label("norm"),
        func.count(usable).over(**season).label("norm_count"),
        func.count(usable).over(**before, rows=(None, -1)).label("history_count"),
        func.avg(usable).over(**before, rows=(-RECENT_READS, -1)).label("recent_mean"),
    ).subquery("d")
    return d
