"""What each completion form puts in a result's `fields` (``ResultDoc.fields``), typed.

The tablet builds one of these models per visit (`mobile.core.forms`) and writes its JSON into the
result document; the server checks the document against the form its order's type calls for
(`check_result`) before it applies anything, and reads the typed model afterwards (the change-out rule
reads a meter test's verdict from `MeterTestFields`). A field the form does not know, a field it
requires and is missing, or a value of the wrong type is a `FormMismatch` naming that field.

| form            | order types                                                    |
|-----------------|----------------------------------------------------------------|
| `reread`        | reread, zero-use check                                         |
| `service`       | turn-on, turn-off, non-pay shut-off, restore, notice delivery  |
| `meter_test`    | meter test                                                     |
| `investigation` | leak / high-bill, theft, emergency, meter exchange             |
| `unable`        | any order the CSFR could not complete (the code is `ResultDoc.unable_code`) |
| `payment_arrangement` | a non-pay shut-off or notice delivery where the customer offered a payment plan at the door instead (outcome `unable_to_complete`, code `arrangement_offered`) |

Readings are not fields: every register reading travels in ``ResultDoc.readings`` (one path for reads);
`check_result` says which forms need one.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contracts.codes import OrderType, UnableCode
from contracts.couch import GeoPoint, ResultDoc


class FormKind(StrEnum):
    """The completion forms; `FORM_FOR_TYPE` says which an order type uses."""

    REREAD = "reread"
    SERVICE = "service"  # turn-on, turn-off, shut-off, restore, notice delivery
    METER_TEST = "meter_test"
    INVESTIGATION = "investigation"  # leak / high bill, theft, emergency, exchange: findings and photos
    UNABLE = "unable"  # could not complete: the code and a note
    PAYMENT_ARRANGEMENT = "payment_arrangement"  # a plan offered at the door instead of the cut


FORM_FOR_TYPE: dict[OrderType, FormKind] = {
    OrderType.REREAD: FormKind.REREAD,
    OrderType.ZERO_USE_CHECK: FormKind.REREAD,
    OrderType.TURN_ON: FormKind.SERVICE,
    OrderType.TURN_OFF: FormKind.SERVICE,
    OrderType.SHUT_OFF_NONPAY: FormKind.SERVICE,
    OrderType.RESTORE: FormKind.SERVICE,
    OrderType.NOTICE_DELIVERY: FormKind.SERVICE,
    OrderType.METER_TEST: FormKind.METER_TEST,
    OrderType.LEAK_INVESTIGATION: FormKind.INVESTIGATION,
    OrderType.THEFT_INVESTIGATION: FormKind.INVESTIGATION,
    OrderType.EMERGENCY: FormKind.INVESTIGATION,
    OrderType.METER_EXCHANGE: FormKind.INVESTIGATION,
}

CurbStopPosition = Literal["open", "closed"]

# The position a service change should leave the curb stop in (other positions need a note).
EXPECTED_POSITION: dict[OrderType, CurbStopPosition] = {
    OrderType.TURN_ON: "open",
    OrderType.RESTORE: "open",
    OrderType.TURN_OFF: "closed",
    OrderType.SHUT_OFF_NONPAY: "closed",
}
# Service changes whose reading is required (a notice delivery may be read but need not be).
SERVICE_READ_REQUIRED = frozenset(EXPECTED_POSITION)
SEAL_PATTERN = r"^[A-Z0-9][A-Z0-9-]{0,31}$"  # letters, digits and dashes, upper case


class FormFields(BaseModel):
    """Base of every form's fields: strict (no unknown keys), with the device's position at completion."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gps: GeoPoint | None = None  # where the tablet was when the CSFR finished (None: no fix)


class RereadFields(FormFields):
    """Reread / zero-use check: the reading is in ``readings``; whether the CSFR confirmed it out of range."""

    form: Literal[FormKind.REREAD] = FormKind.REREAD
    reading_confirmed_out_of_range: bool = False


class ServiceFields(FormFields):
    """Turn-on, turn-off, non-pay shut-off, restore, notice delivery: valve, seal, who was there, hanger."""

    form: Literal[FormKind.SERVICE] = FormKind.SERVICE
    curb_stop_position: CurbStopPosition | None = None  # as the CSFR left it
    seal_number: str | None = Field(default=None, pattern=SEAL_PATTERN)  # lock or seal fitted
    someone_home: bool = False
    door_hanger_left: bool = False


FlowPointName = Literal["low", "intermediate", "high"]
ROUNDING_PCT = 0.001  # accuracies travel rounded to 3 decimals
FLOW_POINTS: tuple[FlowPointName, ...] = ("low", "intermediate", "high")


class MeterTestPoint(BaseModel):
    """One test point: volumes through the meter and the reference, accuracy and its accepted band."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    point: FlowPointName
    flow_gpm: float | None = Field(default=None, gt=0)  # None when the meter size has no test table row
    meter_volume: float = Field(ge=0)
    reference_volume: float = Field(gt=0)
    accuracy_pct: float = Field(ge=0)  # 100 x meter volume / reference volume
    min_pct: float
    max_pct: float
    passed: bool

    @model_validator(mode="after")
    def _verdict_matches(self) -> Self:
        # The tablet judges the unrounded accuracy and sends it to 3 decimals: allow that rounding.
        inside = self.min_pct - ROUNDING_PCT <= self.accuracy_pct <= self.max_pct + ROUNDING_PCT
        clearly_inside = self.min_pct + ROUNDING_PCT <= self.accuracy_pct <= self.max_pct - ROUNDING_PCT
        if (self.passed and not inside) or (not self.passed and clearly_inside):
            raise ValueError(
                f"passed is {self.passed} but {self.accuracy_pct:g}% is "
                f"{'inside' if inside else 'outside'} {self.min_pct:g}-{self.max_pct:g}%"
            )
        return self


class MeterTestFields(FormFields):
    """Meter test: one point per flow (low, intermediate, high), the verdict, billing accuracy, advice."""

    form: Literal[FormKind.METER_TEST] = FormKind.METER_TEST
    meter_id: str | None = None
    meter_size: str | None = None
    points: list[MeterTestPoint] = Field(min_length=len(FLOW_POINTS), max_length=len(FLOW_POINTS))
    passed: bool
    billing_accuracy_pct: float = Field(ge=0)  # mean of the intermediate and high points
    recommendation: Literal["keep", "replace"]

    @field_validator("points")
    @classmethod
    def _one_point_per_flow(cls, points: list[MeterTestPoint]) -> list[MeterTestPoint]:
        seen = [p.point for p in points]
        missing = [f for f in FLOW_POINTS if f not in seen]
        if missing or len(set(seen)) != len(seen):
            raise ValueError(f"low, intermediate and high once each (missing: {', '.join(missing) or '-'})")
        return points

    @model_validator(mode="after")
    def _verdict(self) -> Self:
        if self.passed != all(p.passed for p in self.points):
            raise ValueError("passed must be true exactly when every point passed")
        return self

    def point(self, name: FlowPointName) -> MeterTestPoint:
        """The result at one flow point."""
        return next(p for p in self.points if p.point == name)


class InvestigationFields(FormFields):
    """Leak / high-bill (and theft, emergency, exchange) visit: what was found and who was told."""

    form: Literal[FormKind.INVESTIGATION] = FormKind.INVESTIGATION
    leak_found: bool
    leak_location: str | None = Field(default=None, min_length=1, max_length=200)
    customer_informed: bool
    findings: str = Field(min_length=1, max_length=4000)
    leak_repaired: bool = False  # the CSFR saw the leak repaired (the proof a leak credit needs)

    @model_validator(mode="after")
    def _leak_has_a_place(self) -> Self:
        if self.leak_found and not self.leak_location:
            raise ValueError("leak_location is required when leak_found is true")
        return self


# Orders on which a customer may offer a payment plan at the door (the visit is about the debt).
ARRANGEMENT_TYPES = frozenset({OrderType.SHUT_OFF_NONPAY, OrderType.NOTICE_DELIVERY})
MAX_INSTALMENTS = 24


class PaymentArrangementFields(FormFields):
    """A payment plan the customer offered at the door (money in integer cents; an advisor approves it)."""

    form: Literal[FormKind.PAYMENT_ARRANGEMENT] = FormKind.PAYMENT_ARRANGEMENT
    down_payment_cents: int = Field(ge=0)  # paid or promised now
    instalment_cents: int = Field(gt=0)  # each instalment
    instalments: int = Field(ge=1, le=MAX_INSTALMENTS)
    first_due_date: dt.date  # the first instalment's due date (utility calendar)
    interval_days: int = Field(default=30, ge=7, le=31)  # between instalments
    customer_name: str = Field(min_length=1, max_length=120)  # who made the offer
    contact_phone: str | None = Field(default=None, max_length=32)

    @property
    def total_cents(self) -> int:
        """Down payment plus every instalment."""
        return self.down_payment_cents + self.instalment_cents * self.instalments

    @property
    def last_due_date(self) -> dt.date:
        """The last instalment's due date."""
        return self.first_due_date + dt.timedelta(days=self.interval_days * (self.instalments - 1))


class UnableFields(FormFields):
    """Could not complete: the reason code is ``ResultDoc.unable_code`` (typed there), the note ``notes``."""

    form: Literal[FormKind.UNABLE] = FormKind.UNABLE


CompletionFields = Annotated[
    RereadFields
    | ServiceFields
    | MeterTestFields
    | InvestigationFields
    | UnableFields
    | PaymentArrangementFields,
    Field(discriminator="form"),
]
FORM_MODEL: dict[FormKind, type[FormFields]] = {
    FormKind.REREAD: RereadFields,
    FormKind.SERVICE: ServiceFields,
    FormKind.METER_TEST: MeterTestFields,
    FormKind.INVESTIGATION: InvestigationFields,
    FormKind.UNABLE: UnableFields,
    FormKind.PAYMENT_ARRANGEMENT: PaymentArrangementFields,
}


class FormMismatch(ValueError):
    """A result's fields do not fit its order type's form; `field` names the first that does not."""

    def __init__(self, form: FormKind, field: str, message: str) -> None:
        super().__init__(f"{form.value} form: {field}: {message}")
        self.form = form
        self.field = field
        self.message = message


def form_for(order_type: OrderType, outcome: str, unable_code: UnableCode | None = None) -> FormKind:
    """The form a result of `outcome` ('completed' | 'unable_to_complete') on `order_type` must carry
    (a plan offered at the door, code `arrangement_offered`, carries the payment-arrangement form)."""
    if outcome == "unable_to_complete":
        return (
            FormKind.PAYMENT_ARRANGEMENT if unable_code is UnableCode.ARRANGEMENT_OFFERED else FormKind.UNABLE
        )
    return FORM_FOR_TYPE[order_type]


def _where(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "fields"


def parse_fields(form: FormKind, fields: dict[str, object]) -> FormFields:
    """`fields` as `form`'s model; FormMismatch naming the first field that does not fit."""
    given = fields.get("form", form.value)
    if given != form.value:
        raise FormMismatch(form, "form", f"is {given!r}; this order needs the {form.value} form")
    try:
        return FORM_MODEL[form].model_validate({**fields, "form": form.value})
    except ValidationError as exc:
        first = exc.errors()[0]
        message = "missing" if first["type"] == "missing" else first["msg"]
        if first["type"] == "extra_forbidden":
            message = f"not a field of the {form.value} form"
        raise FormMismatch(form, _where(first["loc"]), message) from None


def check_result(*, order_type: OrderType, result: ResultDoc) -> FormFields:
    """The result's fields as its order type's form, with the form's rules that span the document
    (a reading where one is required, the curb stop and seal of a service change); FormMismatch else."""
    form = form_for(order_type, result.outcome, result.unable_code)
    if form is FormKind.PAYMENT_ARRANGEMENT and order_type not in ARRANGEMENT_TYPES:
        allowed = ", ".join(sorted(t.value for t in ARRANGEMENT_TYPES))
        raise FormMismatch(
            form, "unable_code", f"a payment plan is offered on a {allowed} order, not a {order_type.value}"
        )
    fields = parse_fields(form, result.fields)
    if result.outcome != "completed":
        return fields
    if form is FormKind.REREAD and not result.readings:
        raise FormMismatch(form, "readings", f"a {order_type.value.replace('_', ' ')} needs the reading")
    if isinstance(fields, ServiceFields):
        if order_type in SERVICE_READ_REQUIRED and not result.readings:
            raise FormMismatch(form, "readings", f"a {order_type.value.replace('_', ' ')} needs the reading")
        expected = EXPECTED_POSITION.get(order_type)
        if expected is not None and fields.curb_stop_position is None:
            raise FormMismatch(form, "curb_stop_position", f"missing (should be {expected})")
        if (
            expected is not None
            and fields.curb_stop_position != expected
            and not (result.notes or "").strip()
        ):
            raise FormMismatch(
                form,
                "notes",
                f"curb stop left {fields.curb_stop_position} (should be {expected}) without a note",
            )
        if order_type is OrderType.SHUT_OFF_NONPAY and not fields.seal_number:
            raise FormMismatch(form, "seal_number", "missing: a shut-off records the lock or seal fitted")
    return fields
