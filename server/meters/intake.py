"""What happens to every read that arrives (CIS import, hand-held upload, field result).

The read is classified against its meter's own history and, when it needs a second look, a reread
order is raised, keyed by the read so that validating it again makes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.codes import OrderType, ReadCode
from server.meters.models import Meter, MeterRead
from server.orders import service as orders
from server.orders.schemas import OrderCreate

# Defaults until the policy file carries them (DOMAIN.md: high above 250% of the seasonal norm, low below 40%).
HIGH_FACTOR = 2.5
LOW_FACTOR = 0.4
REREAD_CODES = frozenset(
    {ReadCode.REREAD_REQUESTED.value, ReadCode.DIAL_DAMAGED.value, ReadCode.CANT_READ.value}
)


@dataclass(frozen=True)
class Verdict:
    """A read's classification and whether it needs a reread."""

    validation: str  # ok | high | low | zero | negative | rollover | code | first
    reason: str
    reread: bool


def classify(
    *, current: float, previous: float | None, norm: float | None, dials: int, decimals: int, read_code: str
) -> Verdict:
    """Classify one read from the previous read and the seasonal norm of use (same register units)."""
    if read_code in REREAD_CODES:
        return Verdict("code", f"the reader asked for a reread ({read_code})", True)
    if previous is None:
        return Verdict("first", "no earlier read to compare with", False)
    use = current - previous
    rolled = False
    if use < 0:
        top = 10**dials / 10**decimals
        # A rollover explains it when the register was in its top tenth and now reads in its bottom tenth.
        if previous >= 0.9 * top and current <= 0.1 * top:
            use += top
            rolled = True
        else:
            return Verdict("negative", f"use went backwards by {-use:g}, which no rollover explains", True)
    if norm is None or norm <= 0:
        return Verdict(
            "rollover" if rolled else "ok",
            "no seasonal norm yet" if not rolled else "register rolled over",
            False,
        )
    if use > HIGH_FACTOR * norm:
        return Verdict("high", f"use {use:g} is above {HIGH_FACTOR:.0%} of the seasonal norm {norm:g}", True)
    if use < LOW_FACTOR * norm:
        kind = "zero" if use == 0 else "low"
        return Verdict(kind, f"use {use:g} is below {LOW_FACTOR:.0%} of the seasonal norm {norm:g}", True)
    return Verdict(
        "rollover" if rolled else "ok",
        "register rolled over" if rolled else "within the expected range",
        False,
    )


def _seasonal_norm(history: Sequence[tuple[dt.datetime, float]], at: dt.datetime, top: float) -> float | None:
    """Mean monthly use in the same calendar month of earlier years (not a flat average)."""
    uses = []
    ordered = sorted(history)
    for (_t0, r0), (t1, r1) in itertools.pairwise(ordered):
        if t1.month == at.month and t1.year < at.year:
            uses.append((r1 - r0) % top)
    return sum(uses) / len(uses) if uses else None


def expected_next(
    history: Sequence[tuple[dt.datetime, float]], *, dials: int, decimals: int
) -> tuple[float | None, float | None]:
    """Low and high limits for the next read (displayed register values) from the meter's recent monthly use.

    The same factors as validation (LOW_FACTOR, HIGH_FACTOR) applied to the mean of the last twelve
    intervals; None when there is too little history or the range would cross the register's rollover.
    """
    if len(history) < 2:
        return None, None
    ordered = sorted(history)
    top = 10**dials / 10**decimals
    uses = [(b[1] - a[1]) % top for a, b in itertools.pairwise(ordered)][-12:]
    typical = sum(uses) / len(uses)
    last = ordered[-1][1]
    low, high = last + LOW_FACTOR * typical, last + HIGH_FACTOR * typical
    if high >= top:
        return None, None
    return round(low, decimals), round(high, decimals)


def validate_new_reads(*, db_session: Session, read_ids: Sequence[int], actor: str) -> int:
    """Classify each read and raise reread orders where needed; return how many orders were raised."""
    raised = 0
    for read_id in read_ids:
        read = db_session.get(MeterRead, read_id)
        if read is None or read.duplicate_of_id is not None:
            continue
        meter = db_session.get(Meter, read.meter_id)
        assert meter is not None
        history = [
            (t, r)
            for t, r in db_session.execute(
                select(MeterRead.read_at, MeterRead.reading).where(
                    MeterRead.meter_id == meter.id,
                    MeterRead.register == read.register,
                    MeterRead.id != read.id,
                    MeterRead.read_at < read.read_at,
                    MeterRead.duplicate_of_id.is_(None),
                    MeterRead.read_at >= read.read_at - dt.timedelta(days=3 * 366),
                )
            )
        ]
        previous = max(history)[1] if history else None
        top = 10**meter.dials / 10**meter.decimals
        verdict = classify(
            current=read.reading,
            previous=previous,
            norm=_seasonal_norm(history, read.read_at, top),
            dials=meter.dials,
            decimals=meter.decimals,
            read_code=read.read_code,
        )
        read.validation = verdict.validation
        read.validation_reason = verdict.reason[:200]
        if verdict.reread and meter.service_point_id is not None:
            _, created = orders.create(
                db_session=db_session,
                body=OrderCreate(
                    order_type=OrderType.REREAD,
                    service_point_id=meter.service_point_id,
                    meter_id=meter.id,
                    reason=f"read {read.id}: {verdict.reason}",
                ),
                actor=actor,
                idempotency_key=f"reread:read:{read.id}",
                rule="reread.validation",
            )
            raised += created
    db_session.flush()
    return raised
