"""The order-generation policy: every threshold, calendar and order-type default, from a TOML file.

The built-in `policy.toml` beside this module is both the documentation and the defaults; a utility's
own file (setting `policy_file`, env `CURBSTOP_POLICY_FILE`) overrides any of its keys. Loading
validates every key and refuses a bad file with the line and key that are wrong (`PolicyError`), so a
typo cannot silently fall back to a default that shuts off the wrong customer.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from contracts.codes import (
    DEFAULT_PRIORITY,
    DEFAULT_SERVICE_MIN,
    DEFAULT_SKILLS,
    OrderType,
    Priority,
    ReadCode,
    Skill,
)

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.toml")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PolicyError(ValueError):
    """A policy file that cannot be used, with where and why."""

    def __init__(self, path: str, line: int | None, key: str, message: str) -> None:
        self.path, self.line, self.key, self.message = path, line, key, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


@dataclass(frozen=True)
class CalendarPolicy:
    weekend_days: frozenset[int]  # date.weekday() numbers
    holidays: frozenset[dt.date]  # the utility's own closure days
    business_hours_start: dt.time
    business_hours_end: dt.time
    public_holidays: bool = True  # the public holidays of country/subdivision (the `holidays` package)
    country: str = "US"
    subdivision: str = ""  # e.g. "CA": the state's holidays too


@dataclass(frozen=True)
class ReadsPolicy:
    high_factor: float
    very_high_factor: float
    low_factor: float
    min_history_intervals: int
    history_years: int
    rollover_max_fraction: float
    reread_lookback_days: int
    reread_codes: frozenset[str]
    estimates_in_a_row: int
    zero_use_meter_test_cycles: int
    confirm_use_factor: float
    confirm_margin_gallons: float
    very_low_factor: float = 0.1  # below this share of the norm: very low


@dataclass(frozen=True)
class LeakPolicy:
    factor: float
    cycles: int
    min_excess_gallons: float
    flag_codes: frozenset[str]
    lookback_days: int


@dataclass(frozen=True)
class TheftPolicy:
    min_use_gallons: float


@dataclass(frozen=True)
class ShutoffPolicy:
    enabled: bool
    service_classes: frozenset[str]
    min_days_delinquent: int
    min_past_due_cents: int
    written_notice_business_days: int
    final_notice_required: bool
    final_notice_hours: int
    deliver_final_notice: bool
    hold_kinds: frozenset[str]
    forbidden_weekdays: frozenset[int]
    no_shutoff_day_before_holiday: bool
    batch_review: bool
    exclusion_default_days: int  # how long a supervisor's exclusion holds when they name no days
    exclusion_max_days: int  # the longest an exclusion may hold
    # The hours of day a cut may be done (the order's window): e.g. 08:00-16:00, none after noon before a closure.
    cut_hours_start: dt.time = dt.time(8)
    cut_hours_end: dt.time = dt.time(16)
    cut_end_before_closure: dt.time = dt.time(12)
    # SB 998's protected customer (medical certificate + cannot-pay statement + a payment plan): a cut only
    # after this many days of plan default, and this many business days after a final notice posted then.
    protected_plan_default_days: int = 60
    protected_final_notice_business_days: int = 5


@dataclass(frozen=True)
class RestorePolicy:
    max_remaining_past_due_cents: int
    after_hours: str  # same_day | next_business_day
    fee_cents: int
    after_hours_fee_cents: int
    low_income_fee_cap_cents: int
    low_income_after_hours_fee_cap_cents: int


@dataclass(frozen=True)
class DispatchPolicy:
    include_carry_over: bool  # a plan offers open orders due on an earlier day (flagged as carried over)
    # What a plan pays for (server/dispatch/value.py, docs/routing.md "The objective"): what each priority
    # is worth in minutes of driving, raised as its due date comes; appointments are worth at least
    # `appointment_value_minutes`; priorities outside `overtime_worthy` never open overtime.
    value_minutes: dict[str, int] = field(
        default_factory=lambda: {
            "emergency": 20000,
            "restore": 3000,
            "shut_off": 300,
            "investigation": 40,
            "reread": 25,
            "meter_test": 20,
        }
    )
    appointment_value_minutes: int = 3000
    due_boost: float = 2.0
    due_ramp_business_days: int = 5
    reread_due_business_days: int = 3
    due_business_days: int = 10
    overtime_worthy: frozenset[str] = frozenset({"emergency", "restore"})
    overtime_min_minutes: int = 30
    balance_cost_per_s: int = 0
    look_ahead_days: int = 5
    later_share: float = 0.25


@dataclass(frozen=True)
class MovesPolicy:
    lead_days: int


@dataclass(frozen=True)
class MeterTestPolicy:
    default_interval_years: int
    interval_years: dict[str, int]
    max_open_periodic: int
    change_out_on_fail: bool
    periodic_share: float = 0.5  # of the testers' hours a day that periodic tests are scheduled into

    def interval_for(self, size: str) -> int:
        """Years between periodic tests for a meter of `size` ("5/8", "1-1/2", ...)."""
        return self.interval_years.get(normalise_size(size), self.default_interval_years)


@dataclass(frozen=True)
class OrderTypeDefaults:
    priority: Priority
    minutes: int
    skills: frozenset[Skill]


@dataclass(frozen=True)
class Policy:
    """A validated policy. `source` names the file it came from."""

    calendar: CalendarPolicy
    reads: ReadsPolicy
    leak: LeakPolicy
    theft: TheftPolicy
    shutoff: ShutoffPolicy
    restore: RestorePolicy
    moves: MovesPolicy
    meter_test: MeterTestPolicy
    dispatch: DispatchPolicy = field(default_factory=lambda: DispatchPolicy(include_carry_over=True))
    order_types: dict[OrderType, OrderTypeDefaults] = field(default_factory=dict)
    source: str = "built-in"

    def order_defaults(self, order_type: OrderType) -> OrderTypeDefaults:
        return self.order_types[order_type]


def normalise_size(size: str) -> str:
    """'1 1/2', '1-1/2"', '1.5' -> '1-1/2'; '5/8"' -> '5/8'."""
    s = size.strip().rstrip('"').strip().replace(" ", "-")
    return {"1.5": "1-1/2", "0.625": "5/8", "0.75": "3/4"}.get(s, s)


# ---- converters: each raises ValueError with a message a person can act on ----


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def conv(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"expected a whole number, got {v!r}")
        if lo is not None and v < lo:
            raise ValueError(f"must be at least {lo}, got {v}")
        if hi is not None and v > hi:
            raise ValueError(f"must be at most {hi}, got {v}")
        return v

    return conv


def _float(lo: float | None = None, hi: float | None = None) -> Callable[[Any], float]:
    def conv(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"expected a number, got {v!r}")
        if lo is not None and v < lo:
            raise ValueError(f"must be at least {lo:g}, got {v:g}")
        if hi is not None and v > hi:
            raise ValueError(f"must be at most {hi:g}, got {v:g}")
        return float(v)

    return conv


def _choice(*options: str) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if v not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {v!r}")
        return str(v)

    return conv


def _str_set(allowed: frozenset[str] | None = None) -> Callable[[Any], frozenset[str]]:
    def conv(v: Any) -> frozenset[str]:
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"expected a list of strings, got {v!r}")
        if allowed is not None:
            bad = [x for x in v if x not in allowed]
            if bad:
                raise ValueError(
                    f"unknown value(s) {', '.join(map(repr, bad))}; known: {', '.join(sorted(allowed))}"
                )
        return frozenset(v)

    return conv


def _weekdays(v: Any) -> frozenset[int]:
    names = _str_set(frozenset(WEEKDAYS))(v)
    return frozenset(WEEKDAYS.index(n) for n in names)


def _dates(v: Any) -> frozenset[dt.date]:
    if not isinstance(v, list):
        raise ValueError(f"expected a list of dates, got {v!r}")
    out = set()
    for x in v:
        if isinstance(x, dt.date) and not isinstance(x, dt.datetime):
            out.add(x)
        elif isinstance(x, str):
            try:
                out.add(dt.date.fromisoformat(x))
            except ValueError:
                raise ValueError(f"{x!r} is not a date (YYYY-MM-DD)") from None
        else:
            raise ValueError(f"{x!r} is not a date (YYYY-MM-DD)")
    return frozenset(out)


def _clock(v: Any) -> dt.time:
    if isinstance(v, dt.time):
        return v
    if isinstance(v, str) and re.fullmatch(r"\d{2}:\d{2}", v):
        try:
            return dt.time.fromisoformat(v)
        except ValueError:
            pass
    raise ValueError(f'expected a time of day as "HH:MM", got {v!r}')


def _priority_minutes(v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        raise ValueError(f"expected a table of priority = minutes, got {v!r}")
    known = [p.value for p in Priority]
    out = {}
    for name, minutes in v.items():
        if name not in known:
            raise ValueError(f"unknown priority {name!r}" + _suggest(name, known))
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
            raise ValueError(f"{name}: minutes must be a whole number of at least 1, got {minutes!r}")
        out[name] = minutes
    missing = [p for p in known if p not in out]
    if missing:
        raise ValueError(f"every priority needs a value; missing {', '.join(missing)}")
    return out


def _intervals(v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        raise ValueError(f"expected a table of meter size = years, got {v!r}")
    out = {}
    for size, years in v.items():
        if isinstance(years, bool) or not isinstance(years, int) or years < 1:
            raise ValueError(f"size {size!r}: years must be a whole number of at least 1, got {years!r}")
        out[normalise_size(size)] = years
    return out


def _region_code(v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9]{0,3}", v):
        raise ValueError(f'expected an ISO code such as "US" or "CA", got {v!r}')
    return v.upper()


_READ_CODES = frozenset(c.value for c in ReadCode if c.value)

# section -> key -> converter. The keys are exactly those of the built-in policy.toml.
SCHEMA: dict[str, dict[str, Callable[[Any], Any]]] = {
    "calendar": {
        "weekend_days": _weekdays,
        "us_federal_holidays": _bool,  # before public_holidays/country; still read (see _build)
        "public_holidays": _bool,
        "country": _region_code,
        "subdivision": _region_code,
        "holidays": _dates,
        "business_hours_start": _clock,
        "business_hours_end": _clock,
    },
    "reads": {
        "high_factor": _float(1.0),
        "very_high_factor": _float(1.0),
        "low_factor": _float(0.0, 1.0),
        "very_low_factor": _float(0.0, 1.0),
        "min_history_intervals": _int(1, 60),
        "history_years": _int(1, 10),
        "rollover_max_fraction": _float(0.01, 0.99),
        "reread_lookback_days": _int(1, 366),
        "reread_codes": _str_set(_READ_CODES),
        "estimates_in_a_row": _int(1, 12),
        "zero_use_meter_test_cycles": _int(1, 12),
        "confirm_use_factor": _float(1.0, 100.0),
        "confirm_margin_gallons": _float(0.0),
    },
    "leak": {
        "factor": _float(1.0),
        "cycles": _int(1, 12),
        "min_excess_gallons": _float(0.0),
        "flag_codes": _str_set(_READ_CODES),
        "lookback_days": _int(1, 400),
    },
    "theft": {"min_use_gallons": _float(0.0)},
    "shutoff": {
        "enabled": _bool,
        "service_classes": _str_set(),
        "min_days_delinquent": _int(0, 3650),
        "min_past_due_cents": _int(0),
        "written_notice_business_days": _int(0, 60),
        "final_notice_required": _bool,
        "final_notice_hours": _int(0, 24 * 30),
        "deliver_final_notice": _bool,
        "hold_kinds": _str_set(),
        "forbidden_weekdays": _weekdays,
        "no_shutoff_day_before_holiday": _bool,
        "batch_review": _bool,
        "exclusion_default_days": _int(1, 366),
        "exclusion_max_days": _int(1, 366),
        "cut_hours_start": _clock,
        "cut_hours_end": _clock,
        "cut_end_before_closure": _clock,
        "protected_plan_default_days": _int(60, 3650),
        "protected_final_notice_business_days": _int(5, 60),
    },
    "restore": {
        "max_remaining_past_due_cents": _int(0),
        "after_hours": _choice("same_day", "next_business_day"),
        "fee_cents": _int(0),
        "after_hours_fee_cents": _int(0),
        "low_income_fee_cap_cents": _int(0),
        "low_income_after_hours_fee_cap_cents": _int(0),
    },
    "moves": {"lead_days": _int(0, 30)},
    "dispatch": {
        "include_carry_over": _bool,
        "value_minutes": _priority_minutes,
        "appointment_value_minutes": _int(1),
        "due_boost": _float(0.0, 100.0),
        "due_ramp_business_days": _int(1, 60),
        "reread_due_business_days": _int(0, 60),
        "due_business_days": _int(0, 260),
        "overtime_worthy": _str_set(frozenset(p.value for p in Priority)),
        "overtime_min_minutes": _int(0, 240),
        "balance_cost_per_s": _int(0, 100),
        "look_ahead_days": _int(1, 20),
        "later_share": _float(0.0, 1.0),
    },
    "meter_test": {
        "default_interval_years": _int(1, 50),
        "interval_years": _intervals,
        "max_open_periodic": _int(0),
        "periodic_share": _float(0.0, 1.0),
        "change_out_on_fail": _bool,
    },
}
_ORDER_TYPE_KEYS: dict[str, Callable[[Any], Any]] = {
    "priority": _choice(*(p.value for p in Priority)),
    "minutes": _int(1, 8 * 60),
    "skills": _str_set(frozenset(s.value for s in Skill)),
}


def key_line(text: str, section: str, key: str | None = None) -> int | None:
    """The 1-based line of `key` in `[section]` (or of the section header) in TOML text, if found."""
    current = ""
    header_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            current = header.group(1).replace('"', "").replace(" ", "")
            if current == section:
                header_line = number
            continue
        if key is None:
            continue
        assign = re.match(r'^"?([A-Za-z0-9_\-./]+)"?\s*=', stripped)
        if not assign:
            continue
        name = assign.group(1)
        full = f"{current}.{name}" if current else name
        if full == f"{section}.{key}":
            return number
    return header_line


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(options)}"


def _convert(data: dict[str, Any], text: str, path: str, *, strict_keys: bool) -> dict[str, dict[str, Any]]:
    """Validate one file's tables; return section -> key -> converted value (only keys present)."""
    out: dict[str, dict[str, Any]] = {}
    for section, table in data.items():
        if section == "order_types":
            if not isinstance(table, dict):
                raise PolicyError(path, key_line(text, section), section, "must be a table of order types")
            for type_name, entries in table.items():
                name = f"order_types.{type_name}"
                if type_name not in {t.value for t in OrderType}:
                    raise PolicyError(
                        path,
                        key_line(text, name),
                        name,
                        "unknown order type" + _suggest(type_name, [t.value for t in OrderType]),
                    )
                if not isinstance(entries, dict):
                    raise PolicyError(path, key_line(text, name), name, "must be a table")
                converted = {}
                for key, value in entries.items():
                    if key not in _ORDER_TYPE_KEYS:
                        raise PolicyError(
                            path,
                            key_line(text, name, key),
                            f"{name}.{key}",
                            "unknown key" + _suggest(key, list(_ORDER_TYPE_KEYS)),
                        )
                    try:
                        converted[key] = _ORDER_TYPE_KEYS[key](value)
                    except ValueError as exc:
                        raise PolicyError(
                            path, key_line(text, name, key), f"{name}.{key}", str(exc)
                        ) from None
                out[name] = converted
            continue
        if section not in SCHEMA:
            raise PolicyError(
                path,
                key_line(text, section),
                section,
                "unknown section" + _suggest(section, [*SCHEMA, "order_types"]),
            )
        if not isinstance(table, dict):
            raise PolicyError(path, key_line(text, section), section, "must be a table ([section])")
        converted = {}
        for key, value in table.items():
            if key not in SCHEMA[section]:
                if not strict_keys:
                    continue
                raise PolicyError(
                    path,
                    key_line(text, section, key),
                    f"{section}.{key}",
                    "unknown key" + _suggest(key, list(SCHEMA[section])),
                )
            try:
                converted[key] = SCHEMA[section][key](value)
            except ValueError as exc:
                raise PolicyError(path, key_line(text, section, key), f"{section}.{key}", str(exc)) from None
        out[section] = converted
    return out


def _parse(text: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        raise PolicyError(
            path, int(found.group(1)) if found else None, "", f"not valid TOML: {exc}"
        ) from None


def load_policy(path: Path | str | None = None) -> Policy:
    """The built-in defaults overlaid with the file at `path` (if any), validated."""
    default_text = DEFAULT_POLICY_PATH.read_text()
    values = _convert(
        _parse(default_text, str(DEFAULT_POLICY_PATH)), default_text, "built-in policy", strict_keys=True
    )
    source = "built-in"
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise PolicyError(str(p), None, "", f"cannot read the policy file: {exc.strerror}") from None
        for section, table in _convert(_parse(text, str(p)), text, str(p), strict_keys=True).items():
            values.setdefault(section, {}).update(table)
        source = str(p)
    return _build(values, source, path=str(path) if path else "built-in policy")


def _build(values: dict[str, dict[str, Any]], source: str, *, path: str) -> Policy:
    reads = ReadsPolicy(**values["reads"])
    if reads.very_high_factor < reads.high_factor:
        raise PolicyError(path, None, "reads.very_high_factor", "must not be below reads.high_factor")
    if reads.very_low_factor > reads.low_factor:
        raise PolicyError(path, None, "reads.very_low_factor", "must not be above reads.low_factor")
    calendar = dict(values["calendar"])
    legacy = calendar.pop("us_federal_holidays", None)
    if legacy is not None:  # only a utility's older file has it: the US federal holidays on or off
        calendar["public_holidays"] = legacy
    cal = CalendarPolicy(**calendar)
    from server.orders.calendar import check_region

    try:
        check_region(cal.country, cal.subdivision)
    except ValueError as exc:
        raise PolicyError(
            path, None, "calendar.subdivision" if "subdivision" in str(exc) else "calendar.country", str(exc)
        ) from None
    if cal.business_hours_end <= cal.business_hours_start:
        raise PolicyError(path, None, "calendar.business_hours_end", "must be after business_hours_start")
    shutoff = ShutoffPolicy(**values["shutoff"])
    if shutoff.cut_hours_end <= shutoff.cut_hours_start:
        raise PolicyError(path, None, "shutoff.cut_hours_end", "must be after shutoff.cut_hours_start")
    if shutoff.cut_end_before_closure <= shutoff.cut_hours_start:
        raise PolicyError(
            path, None, "shutoff.cut_end_before_closure", "must be after shutoff.cut_hours_start"
        )
    if shutoff.exclusion_default_days > shutoff.exclusion_max_days:
        raise PolicyError(
            path, None, "shutoff.exclusion_default_days", "must not be above shutoff.exclusion_max_days"
        )
    order_types = {}
    for t in OrderType:
        override = values.get(f"order_types.{t.value}", {})
        order_types[t] = OrderTypeDefaults(
            priority=Priority(override.get("priority", DEFAULT_PRIORITY[t].value)),
            minutes=override.get("minutes", DEFAULT_SERVICE_MIN[t]),
            skills=frozenset(Skill(s) for s in override.get("skills", {s.value for s in DEFAULT_SKILLS[t]})),
        )
    return Policy(
        calendar=cal,
        reads=reads,
        leak=LeakPolicy(**values["leak"]),
        theft=TheftPolicy(**values["theft"]),
        shutoff=shutoff,
        restore=RestorePolicy(**values["restore"]),
        moves=MovesPolicy(**values["moves"]),
        meter_test=MeterTestPolicy(**values["meter_test"]),
        dispatch=DispatchPolicy(**values["dispatch"]),
        order_types=order_types,
        source=source,
    )


@lru_cache(maxsize=8)
def _cached(path: str | None, mtime: float) -> Policy:
    return load_policy(path)


def cache_key(path: Path | None) -> tuple[str | None, float]:
    """(path, modification time) for a memoised loader: a policy file is reloaded when it changes.

    The built-in default is (None, 0.0); a file that cannot be read keys on -1 so loading it reports why.
    """
    if path is None:
        return None, 0.0
    try:
        return str(path), Path(path).stat().st_mtime
    except OSError:
        return str(path), -1.0


def current_policy(path: Path | None = None) -> Policy:
    """The configured policy (settings.policy_file when `path` is None), reloaded when the file changes."""
    if path is None:
        from server.config import get_settings

        path = get_settings().policy_file
    return _cached(*cache_key(path))
