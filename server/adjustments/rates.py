"""Rate schedules from a TOML file (setting `rates_file`, env `CURBSTOP_RATES_FILE`), validated.

The built-in `rates.toml` beside this module documents every key and is the demo district's tariff. A
utility's file replaces it as a whole (a tariff is not merged key by key). Loading refuses a bad file
with the line and key that are wrong (`server.orders.policy.PolicyError`).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from contracts.codes import GALLONS_PER_UNIT, VolumeUnit
from server.orders.policy import PolicyError, cache_key, normalise_size

DEFAULT_RATES_PATH = Path(__file__).with_name("rates.toml")
CUSTOMER_CLASSES = ("residential", "commercial", "irrigation", "industrial")

# Gallons per volume unit, exact. Meter units come from contracts (one place); the rate units add the
# hundred and thousand gallon blocks tariffs are often written in.
GALLONS: dict[str, Fraction] = {
    **{u.value: Fraction(Decimal(str(g))) for u, g in GALLONS_PER_UNIT.items()},
    "hgal": Fraction(100),
    "kgal": Fraction(1000),
}
RATE_UNITS = ("gal", "hgal", "kgal", "cf", "ccf", "m3")
METER_UNITS = tuple(u.value for u in VolumeUnit)


def convert(volume: Fraction, from_unit: str, to_unit: str) -> Fraction:
    """`volume` in `from_unit` expressed in `to_unit`, exactly."""
    if from_unit == to_unit:
        return volume
    return volume * GALLONS[from_unit] / GALLONS[to_unit]


@dataclass(frozen=True)
class Tier:
    """One block of a tiered volume charge: up to `up_to` units per standard period (None: no limit)."""

    up_to: Fraction | None
    price_cents: Decimal  # cents per unit of the schedule


@dataclass(frozen=True)
class RateSchedule:
    """The charges for one customer class from `effective_date` on."""

    name: str
    customer_class: str
    effective_date: dt.date
    unit: str
    fixed_cents: dict[str, int]  # meter size -> cents per standard period
    tiers: tuple[Tier, ...]


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: rating caches per book
class RateBook:
    """Every schedule and the period rules, validated."""

    standard_period_days: int
    full_period_min_days: int
    full_period_max_days: int
    schedules: tuple[RateSchedule, ...]
    rounding: str = "half_even"
    source: str = "built-in"

    def classes(self) -> list[str]:
        """The customer classes that have a schedule."""
        return sorted({s.customer_class for s in self.schedules})

    def in_force(self, customer_class: str, on: dt.date) -> RateSchedule:
        """The schedule of `customer_class` in force on `on`; RateError when there is none."""
        found = [s for s in self.schedules if s.customer_class == customer_class and s.effective_date <= on]
        if not found:
            known = [s for s in self.schedules if s.customer_class == customer_class]
            if not known:
                raise RateError(
                    f"no rate schedule for customer class {customer_class!r} (have: {', '.join(self.classes())})"
                )
            first = min(s.effective_date for s in known)
            raise RateError(
                f"no {customer_class} rate schedule is in force on {on} (the first starts {first})"
            )
        return max(found, key=lambda s: s.effective_date)

    def changes_between(self, customer_class: str, start: dt.date, end: dt.date) -> list[dt.date]:
        """Effective dates of `customer_class` strictly inside (start, end)."""
        return sorted(
            s.effective_date
            for s in self.schedules
            if s.customer_class == customer_class and start < s.effective_date < end
        )


class RateError(ValueError):
    """A period that cannot be rated (no schedule, an unknown meter size, an empty period)."""


def _line(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def _cents_price(v: Any, where: str, path: str, text: str) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise PolicyError(path, _line(text, "price_cents"), where, f"expected a number of cents, got {v!r}")
    try:
        price = Decimal(str(v))
    except InvalidOperation:
        raise PolicyError(path, None, where, f"{v!r} is not a price") from None
    if price < 0 or -price.as_tuple().exponent > 4:  # type: ignore[operator]
        raise PolicyError(path, None, where, f"{v!r}: a price is non-negative with at most 4 decimals")
    return price


def _schedule(raw: Any, index: int, path: str, text: str) -> RateSchedule:
    where = f"schedule[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(path, None, where, "must be a table ([[schedule]])")
    known = {"name", "customer_class", "effective_date", "unit", "fixed_cents", "tiers"}
    for key in raw:
        if key not in known:
            raise PolicyError(
                path, _line(text, key), f"{where}.{key}", f"unknown key; known: {', '.join(sorted(known))}"
            )
    for key in known:
        if key not in raw:
            raise PolicyError(path, None, f"{where}.{key}", "is required")
    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise PolicyError(path, None, f"{where}.name", "must be a non-empty text")
    where = f"schedule {name!r}"
    line = _line(text, f'"{name}"')
    if raw["customer_class"] not in CUSTOMER_CLASSES:
        raise PolicyError(
            path,
            line,
            f"{where}.customer_class",
            f"expected one of {', '.join(CUSTOMER_CLASSES)}, got {raw['customer_class']!r}",
        )
    eff = raw["effective_date"]
    if isinstance(eff, str):
        try:
            eff = dt.date.fromisoformat(eff)
        except ValueError:
            raise PolicyError(
                path, line, f"{where}.effective_date", f"{eff!r} is not a date (YYYY-MM-DD)"
            ) from None
    if not isinstance(eff, dt.date) or isinstance(eff, dt.datetime):
        raise PolicyError(path, line, f"{where}.effective_date", f"{eff!r} is not a date (YYYY-MM-DD)")
    if raw["unit"] not in RATE_UNITS:
        raise PolicyError(
            path, line, f"{where}.unit", f"expected one of {', '.join(RATE_UNITS)}, got {raw['unit']!r}"
        )
    fixed = raw["fixed_cents"]
    if not isinstance(fixed, dict) or not fixed:
        raise PolicyError(path, line, f"{where}.fixed_cents", "must be a table of meter size = cents")
    fixed_cents: dict[str, int] = {}
    for size, cents in fixed.items():
        if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
            raise PolicyError(
                path,
                line,
                f"{where}.fixed_cents.{size}",
                f"must be a whole number of cents, at least 0, got {cents!r}",
            )
        fixed_cents[normalise_size(size)] = cents
    tiers_raw = raw["tiers"]
    if not isinstance(tiers_raw, list) or not tiers_raw:
        raise PolicyError(path, line, f"{where}.tiers", "must be a list of at least one tier")
    tiers: list[Tier] = []
    previous = Fraction(0)
    for n, tier in enumerate(tiers_raw, start=1):
        twhere = f"{where}.tiers[{n}]"
        if not isinstance(tier, dict) or set(tier) - {"up_to", "price_cents"} or "price_cents" not in tier:
            raise PolicyError(
                path, line, twhere, "a tier is { up_to = <units>, price_cents = <cents per unit> }"
            )
        price = _cents_price(tier["price_cents"], f"{twhere}.price_cents", path, text)
        up_to = tier.get("up_to")
        last = n == len(tiers_raw)
        if up_to is None:
            if not last:
                raise PolicyError(path, line, f"{twhere}.up_to", "only the last tier may have no upper bound")
            tiers.append(Tier(None, price))
            continue
        if last:
            raise PolicyError(
                path, line, f"{twhere}.up_to", "the last tier has no upper bound: leave up_to out"
            )
        if isinstance(up_to, bool) or not isinstance(up_to, int | float):
            raise PolicyError(
                path, line, f"{twhere}.up_to", f"expected a number of {raw['unit']}, got {up_to!r}"
            )
        bound = Fraction(Decimal(str(up_to)))
        if bound <= previous:
            raise PolicyError(
                path, line, f"{twhere}.up_to", f"{up_to} must be above the tier before ({float(previous):g})"
            )
        previous = bound
        tiers.append(Tier(bound, price))
    return RateSchedule(
        name=name,
        customer_class=raw["customer_class"],
        effective_date=eff,
        unit=raw["unit"],
        fixed_cents=fixed_cents,
        tiers=tuple(tiers),
    )


def parse_rates(text: str, path: str) -> RateBook:
    """Validate a rates file's text; PolicyError naming the line and key that are wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(path, None, "", f"not valid TOML: {exc}") from None
    known = {"rounding", "standard_period_days", "full_period_min_days", "full_period_max_days", "schedule"}
    for key in data:
        if key not in known:
            raise PolicyError(path, _line(text, key), key, f"unknown key; known: {', '.join(sorted(known))}")
    if data.get("rounding", "half_even") != "half_even":
        raise PolicyError(path, _line(text, "rounding"), "rounding", 'only "half_even" is supported')
    ints = {}
    for key, lo, hi in (
        ("standard_period_days", 1, 366),
        ("full_period_min_days", 1, 366),
        ("full_period_max_days", 1, 366),
    ):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise PolicyError(
                path, _line(text, key), key, f"expected a whole number of days {lo}..{hi}, got {value!r}"
            )
        ints[key] = value
    if not ints["full_period_min_days"] <= ints["standard_period_days"] <= ints["full_period_max_days"]:
        raise PolicyError(
            path,
            None,
            "standard_period_days",
            "must lie between full_period_min_days and full_period_max_days",
        )
    raw_schedules = data.get("schedule")
    if not isinstance(raw_schedules, list) or not raw_schedules:
        raise PolicyError(path, None, "schedule", "at least one [[schedule]] is required")
    schedules = [_schedule(raw, i, path, text) for i, raw in enumerate(raw_schedules, start=1)]
    seen: dict[tuple[str, dt.date], str] = {}
    names: set[str] = set()
    for s in schedules:
        if s.name in names:
            raise PolicyError(
                path, _line(text, f'"{s.name}"'), f"schedule {s.name!r}", "the name is used twice"
            )
        names.add(s.name)
        slot = (s.customer_class, s.effective_date)
        if slot in seen:
            raise PolicyError(
                path,
                _line(text, f'"{s.name}"'),
                f"schedule {s.name!r}",
                f"{seen[slot]!r} already takes effect for {s.customer_class} on {s.effective_date}",
            )
        seen[slot] = s.name
    return RateBook(
        standard_period_days=ints["standard_period_days"],
        full_period_min_days=ints["full_period_min_days"],
        full_period_max_days=ints["full_period_max_days"],
        schedules=tuple(schedules),
        source=path,
    )


def load_rates(path: Path | str | None = None) -> RateBook:
    """The rate book at `path`, or the built-in one."""
    p = Path(path) if path is not None else DEFAULT_RATES_PATH
    try:
        text = p.read_text()
    except OSError as exc:
        raise PolicyError(str(p), None, "", f"cannot read the rates file: {exc.strerror}") from None
    return parse_rates(text, "built-in rates" if path is None else str(p))


@lru_cache(maxsize=8)
def _cached(path: str | None, mtime: float) -> RateBook:
    return load_rates(path)


def current_rates(path: Path | None = None) -> RateBook:
    """The configured rate book (settings.rates_file when `path` is None), reloaded when the file changes."""
    if path is None:
        from server.config import get_settings

        path = get_settings().rates_file
    return _cached(*cache_key(path))
