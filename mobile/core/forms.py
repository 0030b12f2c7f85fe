"""Completion forms, one per flow: what the rep types (as text), the rules, and what goes into the result.

Each form keeps raw strings and booleans exactly as the screen has them; `errors()` maps a field name
to a message the rep can act on (empty = ready); `payload()` is what `FieldWork.complete` writes, its
`fields` one of the typed models of `contracts.forms` (the server checks the result against the same model).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from contracts.codes import OrderType, UnableCode
from contracts.couch import MeterFacts, OrderDoc
from contracts.forms import (
    ARRANGEMENT_TYPES,
    EXPECTED_POSITION,
    MAX_INSTALMENTS,
    SEAL_PATTERN,
    SERVICE_READ_REQUIRED,
    CurbStopPosition,
    FlowPointName,
    FormFields,
    InvestigationFields,
    MeterTestFields,
    MeterTestPoint,
    PaymentArrangementFields,
    RereadFields,
    ServiceFields,
    UnableFields,
)
from mobile.core.meter_test import IN_SERVICE_LIMITS, AccuracyLimits, FlowPoint, MeterTestOutcome, evaluate
from mobile.core.reading import ReadingCheck, check_reading


@dataclass(frozen=True)
class Photo:
    """A picture taken on site, stored as an attachment of the result."""

    name: str  # attachment name, e.g. 'register-1.png'
    data: bytes
    content_type: str
    taken_at: dt.datetime
    caption: str = ""


@dataclass(frozen=True)
class Payload:
    """What a valid form contributes to a ResultDoc."""

    outcome: str  # 'completed' | 'unable_to_complete'
    readings: list[tuple[MeterFacts, float]]
    fields: FormFields  # the order type's form (contracts.forms)
    notes: str | None
    photos: list[Photo]
    unable_code: UnableCode | None = None


class FormInvalid(ValueError):
    """Raised by `payload()` on a form with errors; `errors` maps field -> message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _first_meter(order: OrderDoc) -> MeterFacts | None:
    return order.meters[0] if order.meters else None


@dataclass
class ReadingFields:
    """The reading block shared by rereads and service changes."""

    reading: str = ""
    reading_confirm: str = ""

    def check(self, meter: MeterFacts) -> ReadingCheck:
        """The reading verdict for this meter."""
        return check_reading(self.reading, self.reading_confirm, meter)

    def reading_errors(self, meter: MeterFacts | None, *, required: bool) -> dict[str, str]:
        """Errors for 'reading' / 'reading_confirm'."""
        if meter is None:
            return {}
        if not required and not self.reading.strip():
            return {}
        verdict = self.check(meter)
        if verdict.error:
            return {"reading": verdict.error}
        if verdict.confirmation_error:
            return {"reading_confirm": verdict.confirmation_error}
        return {}


@dataclass
class RereadForm(ReadingFields):
    """Reread / zero-use check: the reading (dials, range, confirmation) and a photo of the register."""

    order: OrderDoc | None = None
    photos: list[Photo] = field(default_factory=list)
    notes: str = ""
    photo_required: bool = True  # a policy setting

    def errors(self) -> dict[str, str]:
        """Field -> message."""
        assert self.order is not None
        meter = _first_meter(self.order)
        out = self.reading_errors(meter, required=True)
        if self.photo_required and not self.photos:
            out["photos"] = "Take a photo of the register"
        return out

    def payload(self) -> Payload:
        """The result contents; FormInvalid when errors() is not empty."""
        errors = self.errors()
        if errors:
            raise FormInvalid(errors)
        assert self.order is not None
        meter = _first_meter(self.order)
        readings: list[tuple[MeterFacts, float]] = []
        fields = RereadFields()
        if meter is not None:
            verdict = self.check(meter)
            assert verdict.value is not None
            readings.append((meter, verdict.value))
            fields = RereadFields(reading_confirmed_out_of_range=verdict.needs_confirmation)
        return Payload("completed", readings, fields, self.notes.strip() or None, list(self.photos))


CURB_STOP_POSITIONS: tuple[CurbStopPosition, ...] = get_args(CurbStopPosition)


@dataclass
class ServiceForm(ReadingFields):
    """Turn-on, turn-off, non-pay shut-off, restore (and notice delivery): read, valve, seal, people, hanger."""

    order: OrderDoc | None = None
    curb_stop_position: str = ""  # 'open' | 'closed'
    seal_number: str = ""  # lock or seal number
    someone_home: bool = False
    door_hanger_left: bool = False
    notes: str = ""
    photos: list[Photo] = field(default_factory=list)

    @property
    def order_type(self) -> OrderType:
        """The order's type."""
        assert self.order is not None
        return self.order.order_type

    def errors(self) -> dict[str, str]:
        """Field -> message."""
        assert self.order is not None
        meter = _first_meter(self.order)
        out = self.reading_errors(meter, required=self.order_type in SERVICE_READ_REQUIRED)
        expected = EXPECTED_POSITION.get(self.order_type)
        if expected is not None:
            if self.curb_stop_position not in CURB_STOP_POSITIONS:
                out["curb_stop_position"] = (
                    f"Choose the curb stop position as you left it (should be {expected})"
                )
            elif self.curb_stop_position != expected and not self.notes.strip():
                out["notes"] = (
                    f"Curb stop left {self.curb_stop_position} on a {self.order_type.value.replace('_', ' ')}: "
                    "explain why in the notes"
                )
        if self.order_type is OrderType.SHUT_OFF_NONPAY and not self.seal_number.strip():
            out["seal_number"] = "Enter the lock or seal number you fitted"
        if self.seal_number.strip() and not re.fullmatch(SEAL_PATTERN, self.seal_number.strip().upper()):
            out["seal_number"] = "Seal number may hold letters, digits and dashes only (at most 32)"
        if (
            self.order_type in (OrderType.SHUT_OFF_NONPAY, OrderType.NOTICE_DELIVERY)
            and not self.door_hanger_left
            and not self.someone_home
        ):
            out["door_hanger_left"] = "Leave a door hanger when nobody is home"
        return out

    def payload(self) -> Payload:
        """The result contents; FormInvalid when errors() is not empty."""
        errors = self.errors()
        if errors:
            raise FormInvalid(errors)
        assert self.order is not None
        meter = _first_meter(self.order)
        readings: list[tuple[MeterFacts, float]] = []
        if meter is not None and self.reading.strip():
            verdict = self.check(meter)
            assert verdict.value is not None
            readings.append((meter, verdict.value))
        position = next((p for p in CURB_STOP_POSITIONS if p == self.curb_stop_position), None)
        fields = ServiceFields(
            curb_stop_position=position,
            seal_number=self.seal_number.strip().upper() or None,
            someone_home=self.someone_home,
            door_hanger_left=self.door_hanger_left,
        )
        return Payload("completed", readings, fields, self.notes.strip() or None, list(self.photos))


def _parse_volume(text: str, label: str) -> tuple[float | None, str]:
    cleaned = text.strip().replace(",", "")
    if not cleaned:
        return None, f"Enter the {label}"
    try:
        value = float(cleaned)
    except ValueError:
        return None, f"{label[0].upper()}{label[1:]} must be a number (got {text.strip()!r})"
    if value < 0 or value != value:
        return None, f"{label[0].upper()}{label[1:]} cannot be negative"
    return value, ""


_FLOW_NAME: dict[FlowPoint, FlowPointName] = {
    FlowPoint.LOW: "low",
    FlowPoint.INTERMEDIATE: "intermediate",
    FlowPoint.HIGH: "high",
}


def _recommendation(text: str) -> Literal["keep", "replace"]:
    return "replace" if text == "replace" else "keep"


@dataclass
class MeterTestForm:
    """Meter test: meter and reference volumes at low, intermediate and high flow; recommendation."""

    order: OrderDoc | None = None
    meter_volume: dict[FlowPoint, str] = field(default_factory=lambda: {p: "" for p in FlowPoint})
    reference_volume: dict[FlowPoint, str] = field(default_factory=lambda: {p: "" for p in FlowPoint})
    recommendation: str = ""  # 'keep' | 'replace'; empty = follow the verdict
    notes: str = ""
    limits: AccuracyLimits = IN_SERVICE_LIMITS
    photos: list[Photo] = field(default_factory=list)

    def _volumes(self) -> tuple[dict[FlowPoint, tuple[float, float]], dict[str, str]]:
        volumes: dict[FlowPoint, tuple[float, float]] = {}
        errors: dict[str, str] = {}
        for point in FlowPoint:
            meter, e1 = _parse_volume(self.meter_volume.get(point, ""), f"meter volume at {point.value} flow")
            ref, e2 = _parse_volume(
                self.reference_volume.get(point, ""), f"reference volume at {point.value} flow"
            )
            if e1:
                errors[f"meter_volume.{point.value}"] = e1
            if e2:
                errors[f"reference_volume.{point.value}"] = e2
            elif ref == 0:
                errors[f"reference_volume.{point.value}"] = (
                    f"Reference volume at {point.value} flow must be more than 0"
                )
            if meter is not None and ref:
                volumes[point] = (meter, ref)
        return volumes, errors

    def outcome(self) -> MeterTestOutcome | None:
        """The computed test once all six volumes are valid, else None (shown live on the screen)."""
        volumes, errors = self._volumes()
        if errors or len(volumes) != len(FlowPoint):
            return None
        assert self.order is not None
        meter = _first_meter(self.order)
        return evaluate(volumes, meter.size_in if meter else None, self.limits)

    def errors(self) -> dict[str, str]:
        """Field -> message."""
        _volumes, errors = self._volumes()
        if self.recommendation not in ("", "keep", "replace"):
            errors["recommendation"] = "Recommendation is keep or replace"
        outcome = self.outcome()
        if (
            outcome is not None
            and self.recommendation == "keep"
            and not outcome.passed
            and not self.notes.strip()
        ):
            errors["notes"] = "The meter failed the test: explain in the notes why it should be kept"
        return errors

    def payload(self) -> Payload:
        """The result contents; FormInvalid when errors() is not empty."""
        errors = self.errors()
        if errors:
            raise FormInvalid(errors)
        outcome = self.outcome()
        assert outcome is not None and self.order is not None
        meter = _first_meter(self.order)
        fields = MeterTestFields(
            meter_id=meter.meter_id if meter else None,
            meter_size=meter.size_in if meter else None,
            points=[
                MeterTestPoint(
                    point=_FLOW_NAME[p.point],
                    flow_gpm=p.flow_gpm,
                    meter_volume=p.meter_volume,
                    reference_volume=p.reference_volume,
                    accuracy_pct=round(p.accuracy_pct, 3),
                    min_pct=p.min_pct,
                    max_pct=p.max_pct,
                    passed=p.passed,
                )
                for p in outcome.points
            ],
            passed=outcome.passed,
            billing_accuracy_pct=round(outcome.billing_accuracy_pct, 3),
            recommendation=_recommendation(self.recommendation or outcome.recommendation),
        )
        return Payload("completed", [], fields, self.notes.strip() or None, list(self.photos))


@dataclass
class InvestigationForm:
    """Leak / high-bill investigation: findings, where, customer informed, photos, notes."""

    order: OrderDoc | None = None
    leak_found: bool = False
    leak_location: str = ""  # 'toilet', 'service line', 'irrigation', ...
    leak_repaired: bool = False  # seen repaired on site: the proof a leak credit needs
    customer_informed: bool = False
    findings: str = ""
    notes: str = ""
    reading: str = ""  # optional register reading while there
    photos: list[Photo] = field(default_factory=list)

    def errors(self) -> dict[str, str]:
        """Field -> message."""
        out: dict[str, str] = {}
        if not self.findings.strip():
            out["findings"] = "Describe what you found"
        if self.leak_found and not self.leak_location.strip():
            out["leak_location"] = "Say where the leak is"
        if self.leak_found and not self.photos:
            out["photos"] = "Take at least one photo of the leak"
        if self.reading.strip():
            assert self.order is not None
            meter = _first_meter(self.order)
            if meter is not None:
                verdict = check_reading(
                    self.reading, self.reading, meter
                )  # an investigation read is not a billing read
                if verdict.error:
                    out["reading"] = verdict.error
        return out

    def payload(self) -> Payload:
        """The result contents; FormInvalid when errors() is not empty."""
        errors = self.errors()
        if errors:
            raise FormInvalid(errors)
        assert self.order is not None
        readings: list[tuple[MeterFacts, float]] = []
        meter = _first_meter(self.order)
        if meter is not None and self.reading.strip():
            value = check_reading(self.reading, self.reading, meter).value
            assert value is not None
            readings.append((meter, value))
        fields = InvestigationFields(
            leak_found=self.leak_found,
            leak_location=self.leak_location.strip() if self.leak_found else None,
            leak_repaired=self.leak_found and self.leak_repaired,
            customer_informed=self.customer_informed,
            findings=self.findings.strip(),
        )
        return Payload("completed", readings, fields, self.notes.strip() or None, list(self.photos))


UNABLE_LABEL: dict[UnableCode, str] = {code: code.value.replace("_", " ").capitalize() for code in UnableCode}
UNABLE_LABEL.update(
    {
        UnableCode.CANT_LOCATE: "Can't locate meter",
        UnableCode.BURIED_BOX: "Meter box buried / covered",
        UnableCode.INSIDE_NOBODY_HOME: "Inside meter, nobody home",
        UnableCode.ALREADY_ON_OFF: "Already on / off",
        UnableCode.DAMAGED_EQUIPMENT: "Damaged meter / module / wire",
        UnableCode.SNOW_ICE: "Snow / ice",
        UnableCode.TAMPER_CUT_LOCK: "Tamper / cut lock",
    }
)


@dataclass
class UnableForm:
    """Unable to complete: a code and a note; the order goes back to dispatch."""

    order: OrderDoc | None = None
    code: str = ""
    notes: str = ""
    photos: list[Photo] = field(default_factory=list)
    min_note_chars: int = 5

    def errors(self) -> dict[str, str]:
        """Field -> message."""
        out: dict[str, str] = {}
        try:
            code = UnableCode(self.code)
        except ValueError:
            out["code"] = "Choose why the order could not be completed"
        else:
            if code is UnableCode.ARRANGEMENT_OFFERED:
                out["code"] = "Use the payment-arrangement form for a plan the customer offers"
        if len(self.notes.strip()) < self.min_note_chars:
            out["notes"] = f"Add a note for dispatch (at least {self.min_note_chars} characters)"
        return out

    def payload(self) -> Payload:
        """The result contents; FormInvalid when errors() is not empty."""
        errors = self.errors()
        if errors:
            raise FormInvalid(errors)
        return Payload(
            "unable_to_complete",
            [],
            UnableFields(),
            self.notes.strip(),
            list(self.photos),
            unable_code=UnableCode(self.code),
        )


# The codes the unable-to-complete screen offers (a payment plan has its own form).
UNABLE_CHOICES: tuple[UnableCode, ...] = tuple(
    c for c in UnableCode if c is not UnableCode.ARRANGEMENT_OFFERED
)


def _cents(text: str) -> int | None:
    """'12.50' or '12' dollars as whole cents; None when it is not an amount."""
    match = re.fullmatch(r"\s*\$?\s*(\d{1,7})(?:\.(\d{1,2}))?\s*", text)
    if match is None:
        return None
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


@dataclass
class PaymentArrangementForm:
    """A payment plan the customer offers at the door of a shut-off or notice delivery, instead of the cut;
    the order goes back to dispatch and an advisor approves the plan (which pulls the shut-off)."""

    order: OrderDoc | None = None
    down_payment: str = ""  # dollars, e.g. '50' or '50.00'
    instalment: str = ""  # dollars per instalment
    instalments: str = ""
    first_due_date: str = ""  # YYYY-MM-DD
    customer_name: str = ""
    contact_phone: str = ""
    notes: str = ""
    photos: list[Photo] = field(default_factory=list)

    def errors(self) -> dict[str, str]:
        """Field -> message."""
        out: dict[str, str] = {}
        if self.order is not None and OrderType(self.order.order_type) not in ARRANGEMENT_TYPES:
            out["order"] = "A payment plan is taken only on a shut-off or notice delivery"
        if _cents(self.down_payment) is None:
            out["down_payment"] = "Enter the amount paid now in dollars (0 if none)"
        instalment = _cents(self.instalment)
        if instalment is None or instalment <= 0:
            out["instalment"] = "Enter each instalment in dollars"
        if not self.instalments.strip().isdigit() or not 1 <= int(self.instalments) <= MAX_INSTALMENTS:
            out["instalments"] = f"Enter the number of instalments (1-{MAX_INSTALMENTS})"
        try:
            dt.date.fromisoformat(self.first_due_date.strip())
        except ValueError:
            out["first_due_date"] = "Enter the first due date as YYYY-MM-DD"
        if not self.customer_name.strip():
            out["customer_name"] = "Enter who offered the plan"
        return out

    def payload(self) -> Payload:
        """The result contents; FormInvalid when errors() is not empty."""
        errors = self.errors()
        if errors:
            raise FormInvalid(errors)
        down, each = _cents(self.down_payment), _cents(self.instalment)
        assert down is not None and each is not None
        fields = PaymentArrangementFields(
            down_payment_cents=down,
            instalment_cents=each,
            instalments=int(self.instalments),
            first_due_date=dt.date.fromisoformat(self.first_due_date.strip()),
            customer_name=self.customer_name.strip(),
            contact_phone=self.contact_phone.strip() or None,
        )
        return Payload(
            "unable_to_complete",
            [],
            fields,
            self.notes.strip() or None,
            list(self.photos),
            unable_code=UnableCode.ARRANGEMENT_OFFERED,
        )


CompletionForm = (
    RereadForm | ServiceForm | MeterTestForm | InvestigationForm | UnableForm | PaymentArrangementForm
)
