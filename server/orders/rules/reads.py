"""Read validation, leak, zero-use and theft rules over one meter register's recent reads.

Volumes: a reading is the register as displayed (decimals applied); use between two reads is in
register units, and `multiplier` times that in the meter's `unit`. The register rolls over at
10**dials / 10**decimals displayed units.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.codes import GALLONS_PER_UNIT, OrderType, VolumeUnit
from server.orders.policy import Policy, ReadsPolicy
from server.orders.rules.base import Decision, OrderSpec, Rule, create


def register_top(dials: int, decimals: int) -> float:
    """The displayed value at which the register rolls over to zero."""
    return 10**dials / 10**decimals


def interval_use(
    previous: float, current: float, *, dials: int, decimals: int, max_fraction: float
) -> tuple[float, bool]:
    """Use between two reads in register units and whether the register rolled over.

    Backwards movement is a rollover only when the rolled-over use (top - previous + current) is under
    `max_fraction` of the register's capacity; otherwise the negative use is returned as it is.
    """
    use = current - previous
    if use >= 0:
        return use, False
    top = register_top(dials, decimals)
    rolled = top - previous + current
    if 0 <= rolled < max_fraction * top:
        return rolled, True
    return use, False


def to_gallons(units: float, *, multiplier: int, unit: str) -> float:
    """Register units to gallons (for policy thresholds given in gallons)."""
    return units * multiplier * GALLONS_PER_UNIT[VolumeUnit(unit)]


def seasonal_norm(
    history: Sequence[tuple[dt.datetime, float]],
    at: dt.datetime,
    *,
    dials: int,
    decimals: int,
    max_fraction: float,
) -> tuple[float | None, int]:
    """Mean use of intervals ending in `at`'s calendar month in earlier years, and how many there were.

    Intervals whose use went backwards with no rollover to explain it are left out.
    """
    uses = []
    for (_t0, r0), (t1, r1) in itertools.pairwise(sorted(history)):
        if t1.month == at.month and t1.year < at.year:
            use, _ = interval_use(r0, r1, dials=dials, decimals=decimals, max_fraction=max_fraction)
            if use >= 0:
                uses.append(use)
    return (sum(uses) / len(uses) if uses else None), len(uses)


@dataclass(frozen=True, slots=True)
class Interval:
    """Use up to one read (newest first in MeterFacts.intervals)."""

    read_id: int
    read_at: dt.datetime
    reading: float
    use: float | None  # None for the meter's first read; negative when nothing explains it
    rolled: bool
    norm: float | None  # seasonal norm for the month of read_at (same month, earlier years)
    norm_count: int
    read_code: str = ""
    estimated: bool = False
    validated: bool = True  # validation already recorded on the read


@dataclass(frozen=True, slots=True)
class MeterFacts:
    """One meter register and what surrounds it, for the read rules."""

    meter_id: int
    register: int
    service_point_id: int
    dials: int
    decimals: int
    multiplier: int
    unit: str
    account_id: int | None
    account_status: str | None  # active | inactive | shut_off | locked | closed, or None (no account)
    occupied: bool
    intervals: tuple[Interval, ...]  # newest first: the latest read and a few before it
    history_count: int  # intervals with a usable use in the look-back (for "too little history")
    recent_mean: float | None  # mean use of up to 12 intervals before the latest (norm fall-back)

    @property
    def active_occupied(self) -> bool:
        return self.account_status == "active" and self.occupied


@dataclass(frozen=True, slots=True)
class Verdict:
    """A read's classification and whether it needs a reread."""

    validation: str  # ok | first | code | negative | estimated | zero | low | high | very_high | rollover
    reason: str
    reread: bool


def classify(
    *,
    use: float | None,
    rolled: bool,
    read_code: str,
    norm: float | None,
    history_count: int,
    active_occupied: bool,
    estimates_in_a_row: int,
    policy: ReadsPolicy,
) -> Verdict:
    """Classify one read from its use (see interval_use), the norm for its month and the account."""
    if read_code in policy.reread_codes:
        return Verdict("code", f"the reader asked for a reread (code {read_code})", True)
    if use is None:
        return Verdict("first", "the meter's first read: nothing to compare with", False)
    if use < 0:
        return Verdict(
            "negative", f"use went backwards by {-use:g} and no register rollover explains it", True
        )
    if estimates_in_a_row >= policy.estimates_in_a_row:
        return Verdict(
            "estimated", f"{estimates_in_a_row} estimated reads in a row: an actual read is due", True
        )
    if use == 0 and active_occupied:
        return Verdict("zero", "zero use on an active, occupied account", True)
    note = " after a register rollover" if rolled else ""
    if history_count < policy.min_history_intervals:
        return Verdict(
            "rollover" if rolled else "ok",
            f"too little history for limits ({history_count} of {policy.min_history_intervals} intervals){note}",
            False,
        )
    if norm is None or norm <= 0:
        return Verdict("rollover" if rolled else "ok", f"no seasonal norm to compare with{note}", False)
    if use > policy.very_high_factor * norm:
        return Verdict(
            "very_high",
            f"use {use:g} is over {policy.very_high_factor:g} times the seasonal norm {norm:g}{note}",
            True,
        )
    if use > policy.high_factor * norm:
        return Verdict(
            "high", f"use {use:g} is over {policy.high_factor:g} times the seasonal norm {norm:g}{note}", True
        )
    if use < policy.low_factor * norm and active_occupied:
        return Verdict(
            "low", f"use {use:g} is under {policy.low_factor:g} times the seasonal norm {norm:g}", True
        )
    return Verdict("rollover" if rolled else "ok", f"within the expected range{note}", False)


def verdict_for(facts: MeterFacts, policy: Policy) -> Verdict | None:
    """Classify the meter's latest read (None when it has no reads)."""
    if not facts.intervals:
        return None
    latest = facts.intervals[0]
    estimates = 0
    for iv in facts.intervals:
        if not iv.estimated:
            break
        estimates += 1
    return classify(
        use=latest.use,
        rolled=latest.rolled,
        read_code=latest.read_code,
        norm=latest.norm if latest.norm_count else facts.recent_mean,
        history_count=facts.history_count,
        active_occupied=facts.active_occupied,
        estimates_in_a_row=estimates,
        policy=policy.reads,
    )


def reread_rule(facts: MeterFacts, policy: Policy, run_date: dt.date) -> Decision | None:
    """A reread for the latest read when validation asks for one and the read is recent."""
    verdict = verdict_for(facts, policy)
    if verdict is None or not verdict.reread:
        return None
    latest = facts.intervals[0]
    if latest.validated and (run_date - latest.read_at.date()).days > policy.reads.reread_lookback_days:
        return None
    return create(
        Rule.REREAD,
        f"read {latest.read_id} of {latest.read_at.date().isoformat()}: {verdict.reason}",
        OrderSpec(
            OrderType.REREAD,
            key=f"reread:read:{latest.read_id}",
            service_point_id=facts.service_point_id,
            account_id=facts.account_id,
            meter_id=facts.meter_id,
        ),
    )


def zero_use_rule(facts: MeterFacts, policy: Policy) -> Decision | None:
    """A meter test when an active, occupied account shows zero use for N intervals in a row."""
    cycles = policy.reads.zero_use_meter_test_cycles
    if not facts.active_occupied or len(facts.intervals) < cycles:
        return None
    recent = facts.intervals[:cycles]
    if not all(iv.use == 0 and not iv.estimated for iv in recent):
        return None
    return create(
        Rule.METER_TEST,
        f"zero use on an active, occupied account for {cycles} reads in a row "
        f"(since {recent[-1].read_at.date().isoformat()}): the meter may be stuck",
        OrderSpec(
            OrderType.METER_TEST,
            key=f"meter_test:zero:{facts.meter_id}:{recent[0].read_id}",
            service_point_id=facts.service_point_id,
            account_id=facts.account_id,
            meter_id=facts.meter_id,
        ),
    )


def leak_rule(facts: MeterFacts, policy: Policy, run_date: dt.date) -> Decision | None:
    """An investigation for sustained use well above the seasonal norm, or a continuous-flow flag."""
    if not facts.intervals or facts.account_status in (None, "closed"):
        return None
    latest = facts.intervals[0]
    if (run_date - latest.read_at.date()).days > policy.leak.lookback_days:
        return None
    spec = OrderSpec(
        OrderType.LEAK_INVESTIGATION,
        key=f"leak:{facts.meter_id}:{latest.read_id}",
        service_point_id=facts.service_point_id,
        account_id=facts.account_id,
        meter_id=facts.meter_id,
    )
    if latest.read_code in policy.leak.flag_codes:
        return create(Rule.LEAK, f"read {latest.read_id} carries the {latest.read_code} flag", spec)
    cycles = policy.leak.cycles
    recent = facts.intervals[:cycles]
    if len(recent) < cycles:
        return None
    for iv in recent:
        if iv.use is None or iv.use < 0 or iv.norm is None or iv.norm <= 0 or iv.norm_count == 0:
            return None
        if iv.use <= policy.leak.factor * iv.norm:
            return None
    assert latest.use is not None and latest.norm is not None
    excess = to_gallons(latest.use - latest.norm, multiplier=facts.multiplier, unit=facts.unit)
    if excess < policy.leak.min_excess_gallons:
        return None
    ratios = ", ".join(f"{iv.use / iv.norm:.1f}x" for iv in recent if iv.use is not None and iv.norm)
    return create(
        Rule.LEAK,
        f"use above {policy.leak.factor:g} times the seasonal norm for {cycles} reads in a row ({ratios}); "
        f"{excess:,.0f} gal over the norm in the latest",
        spec,
    )


def theft_rule(facts: MeterFacts, policy: Policy, run_date: dt.date) -> Decision | None:
    """An investigation when water is used on a shut-off or locked account."""
    if facts.account_status not in ("shut_off", "locked") or not facts.intervals:
        return None
    latest = facts.intervals[0]
    if latest.use is None or latest.use <= 0:
        return None
    if (run_date - latest.read_at.date()).days > policy.leak.lookback_days:
        return None
    gallons = to_gallons(latest.use, multiplier=facts.multiplier, unit=facts.unit)
    if gallons < policy.theft.min_use_gallons:
        return None
    return create(
        Rule.THEFT,
        f"{gallons:,.0f} gal used up to read {latest.read_id} on an account that is {facts.account_status}",
        OrderSpec(
            OrderType.THEFT_INVESTIGATION,
            key=f"theft:{facts.meter_id}:{latest.read_id}",
            service_point_id=facts.service_point_id,
            account_id=facts.account_id,
            meter_id=facts.meter_id,
        ),
    )
