"""Register readings typed on the tablet: digits that fit the dials, and the expected-range check.

A reading outside the expected range is not refused (the meter may really say so) but must be typed
a second time, identically, before it is accepted: the commonest field error is a slipped digit.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.couch import MeterFacts


@dataclass(frozen=True)
class ExpectedRange:
    """The register values a plausible read falls between (from the meter's history; either end may be open)."""

    low: float | None
    high: float | None

    def contains(self, value: float) -> bool:
        """Whether `value` is inside the range (open ends accept anything)."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def label(self) -> str:
        """'1,200 - 1,450', 'at least 1,200' or 'no expected range'."""
        if self.low is not None and self.high is not None:
            return f"{self.low:,.0f} - {self.high:,.0f}"
        if self.low is not None:
            return f"at least {self.low:,.0f}"
        if self.high is not None:
            return f"at most {self.high:,.0f}"
        return "no expected range"


def _extra_float(meter: MeterFacts, key: str) -> float | None:
    value = (meter.model_extra or {}).get(key)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def expected_range(meter: MeterFacts) -> ExpectedRange:
    """The server's `expected_low`/`expected_high` when it sent them, else at least the last read."""
    low = _extra_float(meter, "expected_low")
    high = _extra_float(meter, "expected_high")
    if low is None and high is None and meter.last_read is not None:
        low = meter.last_read
    return ExpectedRange(low, high)


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


def parse_reading(text: str, dials: int | None) -> tuple[float | None, str]:
    """A register value from what was typed (whole dials only), or an error naming the rule broken."""
    cleaned = text.strip().replace(",", "").replace(" ", "")
    if not cleaned:
        return None, "Enter the reading shown on the register"
    if not cleaned.isdigit():
        return None, f"Reading must be digits only (got {text.strip()!r})"
    if dials is not None and len(cleaned.lstrip("0") or "0") > dials:
        return None, f"This register has {dials} dials: a reading has at most {dials} digits"
    return float(int(cleaned)), ""


def check_reading(text: str, confirm_text: str, meter: MeterFacts) -> ReadingCheck:
    """Parse `text`; if it is outside the expected range, `confirm_text` must repeat it exactly."""
    value, error = parse_reading(text, meter.dials)
    if value is None:
        return ReadingCheck(None, error)
    expected = expected_range(meter)
    if expected.contains(value):
        return ReadingCheck(value)
    confirm_value, _ = parse_reading(confirm_text, meter.dials) if confirm_text.strip() else (None, "")
    if confirm_value == value:
        return ReadingCheck(value, needs_confirmation=True)
    side = "below" if expected.low is not None and value < expected.low else "above"
    message = (
        f"{value:,.0f} is {side} the expected range ({expected.label()}): "
        "check the register and enter the reading again to confirm"
    )
    if confirm_text.strip():
        message = (
            f"The two entries differ ({value:,.0f} and {confirm_text.strip()}): check the register again"
        )
    return ReadingCheck(value, needs_confirmation=True, confirmation_error=message)
