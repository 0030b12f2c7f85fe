"""The CIS import file layouts: one place that says what each CSV column is and how it parses.

docs/cis-import.md is written from the same tables (see `describe()`), so the documentation and the
parser cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from contracts.codes import ReadCode, ReadSource, VolumeUnit


class FieldError(ValueError):
    """A value that does not parse; the message says what was expected."""


Parser = Callable[[str], object]


def text(max_len: int) -> Parser:
    def parse(raw: str) -> str:
        if len(raw) > max_len:
            raise FieldError(f"longer than {max_len} characters")
        return raw

    parse.__doc__ = f"text, at most {max_len} characters"
    return parse


def integer(lo: int, hi: int) -> Parser:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise FieldError(f"{raw!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise FieldError(f"{value} is outside {lo}..{hi}")
        return value

    parse.__doc__ = f"whole number {lo}..{hi}"
    return parse


def number(lo: float, hi: float) -> Parser:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise FieldError(f"{raw!r} is not a number") from None
        if not lo <= value <= hi or value != value:
            raise FieldError(f"{raw} is outside {lo}..{hi}")
        return value

    parse.__doc__ = f"number {lo}..{hi}"
    return parse


def reading(raw: str) -> float:
    """register reading: a non-negative decimal, at most 4 places"""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise FieldError(f"{raw!r} is not a reading") from None
    if not value.is_finite() or value < 0:
        raise FieldError(f"{raw!r} is not a non-negative reading")
    if -value.as_tuple().exponent > 4:  # type: ignore[operator]
        raise FieldError(f"{raw!r} has more than 4 decimal places")
    return float(value)


def money_cents(raw: str) -> int:
    """money in dollars with at most 2 decimals (e.g. 123.45 or -10.00); kept as integer cents"""
    cleaned = raw.replace(",", "").replace("$", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise FieldError(f"{raw!r} is not an amount of money") from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise FieldError(f"{raw!r} has fractions of a cent")
    return int(value * 100)


def boolean(raw: str) -> bool:
    """true/false, yes/no, y/n or 1/0"""
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "y", "t"}:
        return True
    if lowered in {"0", "false", "no", "n", "f"}:
        return False
    raise FieldError(f"{raw!r} is not yes/no")


def date(raw: str) -> dt.date:
    """date as YYYY-MM-DD"""
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise FieldError(f"{raw!r} is not a date (YYYY-MM-DD)") from None


def timestamp(zone: ZoneInfo) -> Parser:
    def parse(raw: str) -> dt.datetime:
        try:
            value = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise FieldError(f"{raw!r} is not a timestamp (YYYY-MM-DDTHH:MM[:SS][+HH:MM])") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(dt.UTC)

    parse.__doc__ = "timestamp YYYY-MM-DDTHH:MM[:SS][+HH:MM]; without an offset, the utility's local time"
    return parse


def choice(*values: str) -> Parser:
    allowed = frozenset(values)

    def parse(raw: str) -> str:
        if raw not in allowed:
            raise FieldError(f"{raw!r} is not one of: {', '.join(sorted(allowed))}")
        return raw

    parse.__doc__ = "one of: " + ", ".join(v or "(empty)" for v in values)
    return parse


def word_list(raw: str) -> list[str]:
    """words separated by ';' (e.g. dog;locked_gate)"""
    words = [w.strip() for w in raw.split(";") if w.strip()]
    for word in words:
        if not re.fullmatch(r"[a-z0-9_]{1,32}", word):
            raise FieldError(f"{word!r} is not a lower-case code word")
    return words


def volume(raw: str) -> float:
    """volume: a non-negative decimal, at most 4 places"""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise FieldError(f"{raw!r} is not a volume") from None
    if not value.is_finite() or value < 0:
        raise FieldError(f"{raw!r} is not a non-negative volume")
    if -value.as_tuple().exponent > 4:  # type: ignore[operator]
        raise FieldError(f"{raw!r} has more than 4 decimal places")
    return float(value)


# Bill charge components: the rated ones (fixed charge, volume tiers) and the fees that are not rated.
BILL_COMPONENTS = (
    "fixed",
    *(f"tier_{n}" for n in range(1, 10)),
    "late_fee",
    "delinquency",
    "reconnection",
    "other",
)

METER_SIZES = ("5/8", "3/4", "1", "1-1/2", "2", "3", "4", "6", "8", "10", "12")
ACCOUNT_STATUSES = ("active", "inactive", "shut_off", "locked", "closed")


@dataclass(frozen=True)
class Column:
    """One CSV column: its header, how it parses, and whether it must be filled."""

    name: str
    parse: Parser
    required: bool = False
    default: object = None
    meaning: str = ""


@dataclass(frozen=True)
class FileSpec:
    """One CSV file of a CIS extract."""

    filename: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # natural key: unique within the file, upsert key in the database
    meaning: str
    # column -> (file whose key it references, that file's key column)
    refs: tuple[tuple[str, str], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def specs(zone: ZoneInfo) -> dict[str, FileSpec]:
    """Every importable file, in the order they must be applied (references first)."""
    ts = timestamp(zone)
    files = [
        FileSpec(
            "service_points.csv",
            (
                Column("service_point_id", text(32), True, meaning="the CIS premise id"),
                Column("address", text(200), True),
                Column("city", text(80), default=""),
                Column("postal_code", text(16), default=""),
                Column("lat", number(-90, 90), True, meaning="WGS84 latitude"),
                Column("lon", number(-180, 180), True, meaning="WGS84 longitude"),
                Column("access_notes", text(2000), default="", meaning="gate code, where the meter is"),
                Column("hazards", word_list, default=[], meaning="e.g. dog;locked_gate;confined_space"),
                Column("service_area", text(32), default=""),
                Column("route", text(32), default="", meaning="meter-reading book/route"),
            ),
            key=("service_point_id",),
            meaning="premises: where water is delivered",
        ),
        FileSpec(
            "accounts.csv",
            (
                Column("account_number", text(32), True),
                Column("customer_id", text(32), True, meaning="the CIS customer (person) id"),
                Column("customer_name", text(120), True),
                Column("phone", text(32), default=""),
                Column("email", text(120), default=""),
                Column("mailing_address", text(200), default=""),
                Column(
                    "low_income", boolean, default=False, meaning="under 200% of the federal poverty line"
                ),
                Column("service_point_id", text(32), True),
                Column("status", choice(*ACCOUNT_STATUSES), default="active"),
                Column("occupied", boolean, default=True),
                Column(
                    "service_class",
                    choice("residential", "commercial", "irrigation", "industrial"),
                    default="residential",
                ),
                Column("billing_cycle", text(8), default=""),
                Column("opened_date", date),
                Column("closed_date", date),
            ),
            key=("account_number",),
            meaning="billing accounts and their customers",
            refs=(("service_point_id", "service_points.csv"),),
        ),
        FileSpec(
            "meters.csv",
            (
                Column("serial", text(32), True),
                Column("service_point_id", text(32), meaning="empty for a meter in stock"),
                Column("size", choice(*METER_SIZES), True, meaning="nominal size in inches"),
                Column("make", text(40), default=""),
                Column("model", text(40), default=""),
                Column("dials", integer(3, 10), True, meaning="register digits; it rolls over at 10^dials"),
                Column("decimals", integer(0, 4), default=0),
                Column("multiplier", integer(1, 10_000), default=1),
                Column("unit", choice(*(u.value for u in VolumeUnit)), default="gal"),
                Column("radio_id", text(32), default=""),
                Column("install_date", date),
                Column("last_test_date", date),
                Column("status", choice("in_service", "removed"), default="in_service"),
            ),
            key=("serial",),
            meaning="meters",
            refs=(("service_point_id", "service_points.csv"),),
        ),
        FileSpec(
            "reads.csv",
            (
                Column("meter_serial", text(32), True),
                Column("read_at", ts, True),
                Column("reading", reading, True),
                Column("register", integer(1, 9), default=1),
                Column("source", choice(*(s.value for s in ReadSource)), default="cis"),
                Column("read_code", choice(*(c.value for c in ReadCode)), default=""),
                Column("estimated", boolean, default=False),
            ),
            key=("meter_serial", "register", "read_at", "source"),
            meaning="read history",
            refs=(("meter_serial", "meters.csv"),),
        ),
        FileSpec(
            "balances.csv",
            (
                Column("account_number", text(32), True),
                Column("balance", money_cents, True, meaning="everything owed, dollars"),
                Column("past_due", money_cents, default=0, meaning="owed past its due date, dollars"),
                Column("oldest_past_due_date", date, meaning="due date of the oldest unpaid bill"),
                Column("as_of", ts),
            ),
            key=("account_number",),
            meaning="receivables per account",
            refs=(("account_number", "accounts.csv"),),
        ),
        FileSpec(
            "payments.csv",
            (
                Column("payment_id", text(40), True),
                Column("account_number", text(32), True),
                Column("amount", money_cents, True),
                Column("paid_at", ts, True),
                Column("method", text(16), default=""),
            ),
            key=("payment_id",),
            meaning="payments posted",
            refs=(("account_number", "accounts.csv"),),
        ),
        FileSpec(
            "arrangements.csv",
            (
                Column("arrangement_id", text(40), True),
                Column("account_number", text(32), True),
                Column("status", choice("active", "defaulted", "completed"), True),
                Column("made_date", date, True),
                Column("end_date", date),
                Column("total", money_cents, default=0),
                Column("down_payment", money_cents, default=0),
            ),
            key=("arrangement_id",),
            meaning="payment arrangements (plans)",
            refs=(("account_number", "accounts.csv"),),
        ),
        FileSpec(
            "holds.csv",
            (
                Column("hold_id", text(40), True),
                Column("account_number", text(32), True),
                Column("kind", choice("medical_certificate", "cannot_pay", "dispute", "other"), True),
                Column("start_date", date, True),
                Column("end_date", date),
                Column("note", text(2000), default=""),
            ),
            key=("hold_id",),
            meaning="shut-off holds (medical certificates, disputes)",
            refs=(("account_number", "accounts.csv"),),
        ),
        FileSpec(
            "notices.csv",
            (
                Column("notice_id", text(40), True),
                Column("account_number", text(32), True),
                Column(
                    "kind", choice("written", "final"), True, meaning="written notice or final door hanger"
                ),
                Column("served_at", ts, True),
            ),
            key=("notice_id",),
            meaning="shut-off notices served",
            refs=(("account_number", "accounts.csv"),),
        ),
        FileSpec(
            "move_requests.csv",
            (
                Column("request_id", text(40), True),
                Column("service_point_id", text(32), True),
                Column("account_number", text(32)),
                Column("kind", choice("move_in", "move_out"), True),
                Column("requested_date", date, True),
                Column("customer_name", text(120), default=""),
                Column("status", choice("pending", "cancelled"), default="pending"),
            ),
            key=("request_id",),
            meaning="move-in (turn-on) and move-out (turn-off) requests",
            refs=(("service_point_id", "service_points.csv"), ("account_number", "accounts.csv")),
        ),
        FileSpec(
            "bills.csv",
            (
                Column("bill_id", text(40), True, meaning="the CIS bill id"),
                Column("account_number", text(32), True),
                Column("meter_serial", text(32), meaning="the meter the bill was read from"),
                Column("period_start", date, True, meaning="date of the opening read"),
                Column("period_end", date, True, meaning="date of the closing read; days = end - start"),
                Column("start_read_at", ts, meaning="when the opening read was taken"),
                Column("start_reading", reading, meaning="the opening read's register value"),
                Column("end_read_at", ts, meaning="when the closing read was taken"),
                Column("end_reading", reading, meaning="the closing read's register value"),
                Column("consumption", volume, True, meaning="volume billed, in `unit`"),
                Column("unit", choice(*(u.value for u in VolumeUnit)), default="gal"),
                Column("estimated", boolean, default=False, meaning="billed on an estimated closing read"),
                Column(
                    "total", money_cents, meaning="checked against the sum of its lines in bill_lines.csv"
                ),
            ),
            key=("bill_id",),
            meaning="bills issued (charge lines in bill_lines.csv)",
            refs=(("account_number", "accounts.csv"), ("meter_serial", "meters.csv")),
        ),
        FileSpec(
            "bill_lines.csv",
            (
                Column("bill_id", text(40), True),
                Column("component", choice(*BILL_COMPONENTS), True, meaning="tier_N: the Nth volume block"),
                Column("amount", money_cents, True, meaning="dollars charged (negative: a credit)"),
                Column("quantity", volume, meaning="units charged at this tier"),
                Column("description", text(120), default=""),
            ),
            key=("bill_id", "component"),
            meaning="a bill's charges, one line per component",
            refs=(("bill_id", "bills.csv"),),
        ),
    ]
    return {f.filename: f for f in files}


def describe(zone: ZoneInfo) -> str:
    """Markdown tables of every file layout (used to write docs/cis-import.md)."""
    out: list[str] = []
    for spec in specs(zone).values():
        out.append(f"### `{spec.filename}`: {spec.meaning}\n")
        out.append(f"Key: {', '.join(spec.key)}.\n")
        out.append("| column | required | format | default | meaning |\n|---|---|---|---|---|")
        for col in spec.columns:
            default = "" if col.required or col.default in (None, "", []) else f"`{col.default}`"
            fmt = (col.parse.__doc__ or "").strip().split("\n")[0]
            out.append(
                f"| `{col.name}` | {'yes' if col.required else ''} | {fmt} | {default} | {col.meaning} |"
            )
        out.append("")
    return "\n".join(out)
