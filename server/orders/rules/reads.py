"""Read validation, leak, zero-use and theft rules over one meter register's recent reads.

Volumes: a reading is the register as displayed (decimals applied); use between two reads is in
register units, and `multiplier` times that in the meter's `unit`. The register rolls over at
10**dials / 10**decimals displayed units.

This module is the one classifier of a read (`classify`), the one choice of the norm it compares
with (`read_norm`), the limits handed to a tablet or hand-held (`reading_limits`, computed by asking
`classify` itself, so a reading inside them never needs a reread) and the one wording of a read for a
person (`Register`, `describe_read`): intake and the daily run both use them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

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


@dataclass(frozen=True, slots=True)
class Register:
    """How a register's numbers read to a person: digits right of the point, multiplier and unit."""

    decimals: int = 0
    multiplier: int = 1
    unit: str = VolumeUnit.GALLON.value

    def reading(self, value: float) -> str:
        """A reading as the register shows it, with its unit: '245,120 gal', '1,234.5 ccf', '2,451 x10 gal'."""
        scale = f"x{self.multiplier:,} " if self.multiplier != 1 else ""
        return f"{value:,.{self.decimals}f} {scale}{self.unit}"

    def volume(self, units: float) -> str:
        """A use (or norm) in register units as a volume in the meter's unit: '15,051 gal' (multiplier applied)."""
        volume = units * self.multiplier
        places = self.decimals if self.multiplier == 1 else 0
        return f"{volume:,.{places}f} {self.unit}"


def describe_read(
    register: Register, reading: float, read_at: dt.datetime, zone: ZoneInfo | None = None
) -> str:
    """'reading 245,120 gal of 2026-10-22': how a reason names a read (never by its database id).

    The date is the utility's (`zone`) when given, else UTC's.
    """
    local = read_at.astimezone(zone) if zone is not None and read_at.tzinfo is not None else read_at
    return f"reading {register.reading(reading)} of {local.date().isoformat()}"


def read_norm(norm: float | None, norm_count: int, recent_mean: float | None) -> tuple[float | None, str]:
    """The norm a read is compared with and its name: the seasonal norm when the register has one for the
    read's month, else the mean use of its recent reads."""
    if norm_count and norm is not None:
        return norm, "the seasonal norm"
    return recent_mean, "the recent mean"


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
    corrects: bool = False  # the reading of a reread that replaced the read it was sent to check


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

    validation: (
        str  # ok | first | code | negative | estimated | zero | very_low | low | high | very_high | rollover
    )
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
    register: Register | None = None,
    norm_name: str = "the seasonal norm",
) -> Verdict:
    """Classify one read from its use (see interval_use), its norm (see read_norm) and the account.

    `register` words the volumes in the reason (gallons on a plain register when not given).
    """
    units = register or Register()
    if read_code in policy.reread_codes:
        return Verdict("code", f"the reader asked for a reread (code {read_code})", True)
    if use is None:
        return Verdict("first", "the meter's first read: nothing to compare with", False)
    if use < 0:
        return Verdict(
            "negative",
            f"use went backwards by {units.volume(-use)} and no register rollover explains it",
            True,
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
        return Verdict("rollover" if rolled else "ok", f"no norm to compare with{note}", False)
    used, normal = units.volume(use), units.volume(norm)
    if use > policy.very_high_factor * norm:
        return Verdict(
            "very_high",
            f"use {used} is over {policy.very_high_factor:g} times {norm_name} of {normal}{note}",
            True,
        )
    if use > policy.high_factor * norm:
        return Verdict(
            "high", f"use {used} is over {policy.high_factor:g} times {norm_name} of {normal}{note}", True
        )
    # Low use is flagged on every account (../shared/DOMAIN.md: "low below 40%"); only ZERO use is limited
    # to active, occupied accounts - a vacant house using nothing is expected, one using a little is not.
    if use == 0:
        return Verdict("ok", "zero use on an account that is not active and occupied", False)
    if use < policy.very_low_factor * norm:
        return Verdict(
            "very_low",
            f"use {used} is under {policy.very_low_factor:g} times {norm_name} of {normal}{note}",
            True,
        )
    if use < policy.low_factor * norm:
        return Verdict(
            "low", f"use {used} is under {policy.low_factor:g} times {norm_name} of {normal}{note}", True
        )
    return Verdict("rollover" if rolled else "ok", f"within the expected range{note}", False)


def reading_limits(
    *,
    previous: float,
    norm: float | None,
    history_count: int,
    active_occupied: bool,
    dials: int,
    decimals: int,
    policy: ReadsPolicy,
) -> tuple[float | None, float | None]:
    """The lowest and highest next reading (displayed register values) that `classify` accepts without a
    reread, given the register's previous reading and the facts the next read will be derived with.

    Found by asking `classify` itself (the thresholds give a first guess; the ends are then moved one
    register step at a time until the reading at each end passes and the one beyond it does not), so the
    limits and the validation cannot disagree. An open end is None; both are None when the range would
    cross the register's rollover (the digits would wrap: no simple range to give). One reading outside
    the range also passes on an account that is not active and occupied: `previous` itself (zero use).
    """
    step = 10.0**-decimals
    top = register_top(dials, decimals)

    def on_step(value: float) -> float:
        return round(value, decimals)

    def passes(reading: float) -> bool:
        use, rolled = interval_use(
            previous, reading, dials=dials, decimals=decimals, max_fraction=policy.rollover_max_fraction
        )
        verdict = classify(
            use=use,
            rolled=rolled,
            read_code="",
            norm=norm,
            history_count=history_count,
            active_occupied=active_occupied,
            estimates_in_a_row=0,
            policy=policy,
        )
        return not verdict.reread

    limited = history_count >= policy.min_history_intervals and norm is not None and norm > 0
    low_use = policy.low_factor * norm if limited and norm is not None else 0.0
    low = on_step(previous + math.ceil(low_use / step - 1e-9) * step)
    # At most a few steps either way: the guess is off only by float rounding or the zero-use rule.
    for _ in range(1000):
        if not passes(low):
            low = on_step(low + step)
        elif low - step >= previous and passes(on_step(low - step)):
            low = on_step(low - step)
        else:
            break
    if not limited:
        return (low if low < top else None), None
    assert norm is not None
    high = on_step(previous + math.floor(policy.high_factor * norm / step + 1e-9) * step)
    if high >= top:
        return None, None
    for _ in range(1000):
        if not passes(high) and high > low:
            high = on_step(high - step)
        elif on_step(high + step) < top and passes(on_step(high + step)):
            high = on_step(high + step)
        else:
            break
    if low > high or not passes(low) or not passes(high):
        return None, None
    return low, high


def register_of(facts: MeterFacts) -> Register:
    """How the facts' register reads to a person."""
    return Register(decimals=facts.decimals, multiplier=facts.multiplier, unit=facts.unit)


def verdict_for(facts: MeterFacts, policy: Policy) -> Verdict | None:
    """Classify the meter's latest read (None when it has no reads).

    A reread's reading that corrected the read it was sent to check is classified for the record but
    never asks for another reread (a technician stood at the meter for it: that would loop).
    """
    if not facts.intervals:
        return None
    latest = facts.intervals[0]
    estimates = 0
    for iv in facts.intervals:
        if not iv.estimated:
            break
        estimates += 1
    norm, norm_name = read_norm(latest.norm, latest.norm_count, facts.recent_mean)
    verdict = classify(
        use=latest.use,
        rolled=latest.rolled,
        read_code=latest.read_code,
        norm=norm,
        history_count=facts.history_count,
        active_occupied=facts.active_occupied,
        estimates_in_a_row=estimates,
        policy=policy.reads,
        register=register_of(facts),
        norm_name=norm_name,
    )
    return replace(verdict, reread=False) if latest.corrects else verdict


def reread_reason(
    register: Register, reading: float, read_at: dt.datetime, verdict: Verdict, zone: ZoneInfo | None = None
) -> str:
    """The reason on a reread order: the read as a person knows it, then why it needs a second look."""
    return f"{describe_read(register, reading, read_at, zone)}: {verdict.reason}"


def reread_rule(
    facts: MeterFacts, policy: Policy, run_date: dt.date, zone: ZoneInfo | None = None
) -> Decision | None:
    """A reread for the latest read when validation asks for one and the read is recent."""
    verdict = verdict_for(facts, policy)
    if verdict is None or not verdict.reread:
        return None
    latest = facts.intervals[0]
    if latest.validated and (run_date - latest.read_at.date()).days > policy.reads.reread_lookback_days:
        return None
    return create(
        Rule.REREAD,
        reread_reason(register_of(facts), latest.reading, latest.read_at, verdict, zone),
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
        read = describe_read(register_of(facts), latest.reading, latest.read_at)
        return create(Rule.LEAK, f"{read} carries the {latest.read_code} flag", spec)
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
        f"{gallons:,.0f} gal used up to the {describe_read(register_of(facts), latest.reading, latest.read_at)} "
        f"on an account that is {facts.account_status}",
        OrderSpec(
            OrderType.THEFT_INVESTIGATION,
            key=f"theft:{facts.meter_id}:{latest.read_id}",
            service_point_id=facts.service_point_id,
            account_id=facts.account_id,
            meter_id=facts.meter_id,
        ),
    )
