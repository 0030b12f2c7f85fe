"""Register readings typed on the tablet: digits that fit the dials, and the expected-range check.

A reading is typed as the register displays it, decimals included (01234.5 is typed 1234.5): the same
number the server stores and sends back as last reads and limits (`contracts.couch.MeterFacts`), so
what the rep sees, types and is checked against are all in one unit. The expected range is the
server's (`expected_low`/`expected_high`, computed by its own validation: a reading inside never raises
a reread). A reading outside it is not refused (the meter may really say so) but must be typed a second
time, identically, before it is accepted: the commonest field error is a slipped digit.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.couch import MeterFacts


def format_reading(value: float, meter: MeterFacts) -> str:
    """A reading as the register shows it, with its unit: '245,120 gal', '1,234.5 ccf', '2,451 x10 gal'."""
    scale = f"x{meter.multiplier:,} " if meter.multiplier != 1 else ""
    return f"{value:,.{meter.decimals}f} {scale}{meter.unit.value}"


@dataclass(frozen=True)
class ExpectedRange:
    """The register values a plausible read falls between (from the server; either end may be open)."""

    low: float | None
    high: float | None
    decimals: int = 0
    unit: str = ""

    def contains(self, value: float) -> bool:
        """Whether `value` is inside the range (open ends accept anything)."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def _number(self, value: float) -> str:
        return f"{value:,.{self.decimals}f}"

    def label(self) -> str:
        """'1,200 - 1,450 gal', 'at least 1,200 gal' or 'no expected range'."""
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"{self._number(self.low)} - {self._number(self.high)}{unit}"
        if self.low is not None:
            return f"at least {self._number(self.low)}{unit}"
        if self.high is not None:
            return f"at most {self._number(self.high)}{unit}"
        return "no expected range"


def expected_range(meter: MeterFacts) -> ExpectedRange:
    """The server's `expected_low`/`expected_high` when it sent them, else at least the last read."""
    low, high = meter.expected_low, meter.expected_high
    if low is None and high is None and meter.last_read is not None:
        low = meter.last_read
    return ExpectedRange(low, high, decimals=meter.decimals, unit=meter.unit.value)


@dataclass(frozen=True)
class ReadingCheck:
    """The verdict on what was typed: an error, or a value that may still need confirming."""

    value: float | None
    error: str = ""
    needs_confirmation: bool = False
    confirmation_error: str = ""

    @property
    def accepted(self) -> bool:
        """A value that can go into a result."""
        return self.value is not None and not self.error and not self.confirmation_error


def parse_reading(text: str, dials: int | None, decimals: int = 0) -> tuple[float | None, str]:
    """A register value as displayed from what was typed (digits, and a point when the register shows
    decimals), or an error naming the rule broken."""
    cleaned = text.strip().replace(",", "").replace(" ", "")
    if not cleaned:
        return None, "Enter the reading shown on the register"
    whole, point, fraction = cleaned.partition(".")
    if not (whole or fraction) or not (whole or "0").isdigit() or (fraction and not fraction.isdigit()):
        allowed = "digits and one decimal point" if decimals else "digits only"
        return None, f"Reading must be {allowed} (got {text.strip()!r})"
    if point and not decimals:
        return None, f"Reading must be digits only (got {text.strip()!r}): this register shows no decimals"
    if len(fraction) > decimals:
        return None, f"This register shows {decimals} decimal place(s): got {len(fraction)}"
    if dials is not None and len(whole.lstrip("0") or "0") > dials - decimals:
        shown = f"{dials - decimals} digits before the point" if decimals else f"{dials} digits"
        return None, f"This register has {dials} dials: a reading has at most {shown}"
    return round(float(f"{whole or '0'}.{fraction or '0'}"), decimals), ""


def check_reading(text: str, confirm_text: str, meter: MeterFacts) -> ReadingCheck:
    """Parse `text`; if it is outside the expected range, `confirm_text` must repeat it exactly."""
    value, error = parse_reading(text, meter.dials, meter.decimals)
    if value is None:
        return ReadingCheck(None, error)
    expected = expected_range(meter)
    if expected.contains(value):
        return ReadingCheck(value)
    confirm_value, _ = (
        parse_reading(confirm_text, meter.dials, meter.decimals) if confirm_text.strip() else (None, "")
    )
    if confirm_value == value:
        return ReadingCheck(value, needs_confirmation=True)
    side = "below" if expected.low is not None and value < expected.low else "above"
    message = (
        f"{format_reading(value, meter)} is {side} the expected range ({expected.label()}): "
        "check the register and enter the reading again to confirm"
    )
    if confirm_text.strip():
        message = (
            f"The two entries differ ({format_reading(value, meter)} and {confirm_text.strip()}): "
            "check the register again"
        )
    return ReadingCheck(value, needs_confirmation=True, confirmation_error=message)
