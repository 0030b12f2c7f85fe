"""Rating: what a period of service costs under the rate book. Pure functions, no I/O.

A period runs from its opening read date to its closing read date; its days are the difference. A full
period (between the book's full-period bounds) is charged as written; any other is prorated by days
over the standard period. A period that spans a schedule's effective date is split by days: each part
gets its share of the days, of the fixed charge, of the tier widths and of the consumption. Every
charge line is computed exactly and rounded to whole cents, half to even, once per line.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise
from typing import Any

from server.adjustments.rates import RateBook, RateError, convert
from server.orders.policy import normalise_size

# Components a rating produces; the other bill components (fees) are never re-rated.
RATED_PREFIXES = ("fixed", "tier_")
FEE_COMPONENTS = ("late_fee", "delinquency", "reconnection")


def is_rated(component: str) -> bool:
    """True for the components rating computes (fixed charge and volume tiers)."""
    return component == "fixed" or component.startswith("tier_")


def round_cents(exact: Fraction) -> int:
    """Whole cents, half to even (the rounding the rates file states)."""
    whole, rest = divmod(exact.numerator, exact.denominator)  # floor division: rest >= 0
    twice = 2 * rest
    if twice > exact.denominator or (twice == exact.denominator and whole % 2):
        whole += 1
    return whole


def show(value: Fraction | Decimal | int, places: int = 4) -> str:
    """An exact quantity as a decimal string for the working (`places` decimals, trailing zeros cut)."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    text = f"{Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class ChargeLine:
    """One rated line: a component of one part of the period under one schedule."""

    component: str  # fixed | tier_1 | tier_2 ...
    schedule: str
    start: dt.date
    end: dt.date
    quantity: Fraction  # units for tiers (in the schedule's unit); the prorating factor for `fixed`
    unit: str  # the schedule's unit, or "period" for the fixed charge
    price_cents: Fraction  # cents per unit (per full period for `fixed`)
    amount_cents: int  # quantity x price, rounded half to even

    def as_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "schedule": self.schedule,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "quantity": show(self.quantity),
            "unit": self.unit,
            "price_cents": show(self.price_cents),
            "exact_cents": show(self.quantity * self.price_cents),
            "amount_cents": self.amount_cents,
        }


@dataclass(frozen=True)
class Rating:
    """A rated period: its lines (per schedule part), their total, and how the period was read."""

    start: dt.date
    end: dt.date
    days: int
    factor: Fraction  # 1 for a full period, else days / standard period days
    consumption: Fraction
    unit: str
    lines: tuple[ChargeLine, ...]

    @property
    def total_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    def by_component(self) -> dict[str, int]:
        """Cents per component, the parts of a split period added together."""
        out: dict[str, int] = defaultdict(int)
        for line in self.lines:
            out[line.component] += line.amount_cents
        return dict(out)

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "factor": show(self.factor, 6),
            "consumption": show(self.consumption),
            "unit": self.unit,
            "lines": [line.as_dict() for line in self.lines],
            "total_cents": self.total_cents,
        }


def period_factor(book: RateBook, days: int) -> Fraction:
    """1 for a full period, else days over the standard period."""
    if book.full_period_min_days <= days <= book.full_period_max_days:
        return Fraction(1)
    return Fraction(days, book.standard_period_days)


@dataclass(frozen=True)
class _Part:
    """One schedule's part of a period, everything that does not depend on the consumption."""

    schedule: str
    start: dt.date
    end: dt.date
    use_factor: Fraction  # consumption in the bill's unit x this = the part's use in the schedule's unit
    unit: str
    fixed: ChargeLine
    tiers: tuple[tuple[Fraction | None, Fraction], ...]  # (scaled upper bound or None, price)


@lru_cache(maxsize=8192)
def _plan(
    book: RateBook, customer_class: str, meter_size: str, start: dt.date, end: dt.date, unit: str
) -> tuple[int, Fraction, tuple[_Part, ...]]:
    """The parts of a period and their scaled tiers (cached: bills of one cycle share them)."""
    days = (end - start).days
    if days < 1:
        raise RateError(f"a period needs at least one day: {start} to {end}")
    factor = period_factor(book, days)
    size = normalise_size(meter_size)
    cuts = [start, *book.changes_between(customer_class, start, end), end]
    parts = []
    for part_start, part_end in pairwise(cuts):
        schedule = book.in_force(customer_class, part_start)
        if size not in schedule.fixed_cents:
            raise RateError(
                f"schedule {schedule.name} has no fixed charge for a {meter_size} meter "
                f"(sizes: {', '.join(schedule.fixed_cents)})"
            )
        share = Fraction((part_end - part_start).days, days)
        scale = factor * share  # of the fixed charge and of each tier width
        fixed_price = Fraction(schedule.fixed_cents[size])
        fixed = ChargeLine(
            "fixed",
            schedule.name,
            part_start,
            part_end,
            scale,
            "period",
            fixed_price,
            round_cents(scale * fixed_price),
        )
        tiers = tuple(
            (None if tier.up_to is None else tier.up_to * scale, Fraction(tier.price_cents))
            for tier in schedule.tiers
        )
        parts.append(
            _Part(
                schedule.name,
                part_start,
                part_end,
                convert(share, unit, schedule.unit),
                schedule.unit,
                fixed,
                tiers,
            )
        )
    return days, factor, tuple(parts)


def rate_period(
    book: RateBook,
    *,
    customer_class: str,
    meter_size: str,
    start: dt.date,
    end: dt.date,
    consumption: Fraction | Decimal | int | float,
    unit: str,
) -> Rating:
    """Charge lines for `consumption` (in `unit`) used from `start` to `end` by a `meter_size` meter."""
    used = Fraction(Decimal(str(consumption))) if isinstance(consumption, float) else Fraction(consumption)
    if used < 0:
        raise RateError(f"consumption cannot be negative ({show(used)} {unit})")
    days, factor, parts = _plan(book, customer_class, meter_size, start, end, unit)
    lines: list[ChargeLine] = []
    for part in parts:
        lines.append(part.fixed)
        part_use = used * part.use_factor
        lower = Fraction(0)
        for n, (upper, price) in enumerate(part.tiers, start=1):
            quantity = part_use - lower if upper is None else min(part_use, upper) - lower
            if quantity <= 0:
                break
            lines.append(
                ChargeLine(
                    f"tier_{n}",
                    part.schedule,
                    part.start,
                    part.end,
                    quantity,
                    part.unit,
                    price,
                    round_cents(quantity * price),
                )
            )
            if upper is None:
                break
            lower = upper
    return Rating(start, end, days, factor, used, unit, tuple(lines))


@dataclass(frozen=True)
class LineDifference:
    """One component before and after re-rating."""

    component: str
    before_cents: int
    after_cents: int

    @property
    def difference_cents(self) -> int:
        return self.after_cents - self.before_cents

    def as_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "before_cents": self.before_cents,
            "after_cents": self.after_cents,
            "difference_cents": self.difference_cents,
        }


@dataclass(frozen=True)
class Rerating:
    """A period rated as billed and as corrected, and the difference line by line."""

    before: Rating
    after: Rating
    lines: tuple[LineDifference, ...] = field(default=())

    @property
    def difference_cents(self) -> int:
        return sum(d.difference_cents for d in self.lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "lines": [d.as_dict() for d in self.lines],
            "difference_cents": self.difference_cents,
        }


def _component_order(name: str) -> tuple[int, int]:
    if name == "fixed":
        return (0, 0)
    if name.startswith("tier_"):
        return (1, int(name.removeprefix("tier_")))
    return (2, 0)


def difference(before: Rating, after: Rating) -> tuple[LineDifference, ...]:
    """Component by component, what `after` charges minus what `before` did (missing lines count 0)."""
    b, a = before.by_component(), after.by_component()
    return tuple(
        LineDifference(c, b.get(c, 0), a.get(c, 0)) for c in sorted(set(a) | set(b), key=_component_order)
    )


def rerate(
    book: RateBook,
    *,
    customer_class: str,
    meter_size: str,
    start: dt.date,
    end: dt.date,
    consumption: Fraction | Decimal | int | float,
    corrected_consumption: Fraction | Decimal | int | float,
    unit: str,
) -> Rerating:
    """The period rated with its billed and with its corrected consumption, and the difference by line."""
    common = {
        "customer_class": customer_class,
        "meter_size": meter_size,
        "start": start,
        "end": end,
        "unit": unit,
    }
    before = rate_period(book, consumption=consumption, **common)  # type: ignore[arg-type]
    after = rate_period(book, consumption=corrected_consumption, **common)  # type: ignore[arg-type]
    return Rerating(before, after, difference(before, after))
