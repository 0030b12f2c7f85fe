"""Work-order request and response shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.codes import OrderStatus, OrderType, Priority, Skill, UnableCode

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    items: list[T]
    total: int
    page: int
    page_size: int


class _Window(BaseModel):
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _window_order(self) -> _Window:
        if self.window_start and self.window_end and self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self


class OrderCreate(_Window):
    """A new work order; omitted priority, skills and minutes default by order type."""

    model_config = ConfigDict(extra="forbid")

    order_type: OrderType
    service_point_id: int | None = Field(default=None, description="where; defaults to the account's premise")
    account_id: int | None = None
    meter_id: int | None = None
    priority: Priority | None = None
    scheduled_date: dt.date | None = None
    required_skills: list[Skill] | None = None
    estimated_minutes: int | None = Field(default=None, ge=1, le=600)
    reason: str = Field(default="", max_length=2000)
    notes: str = Field(default="", max_length=4000)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=160)

    @model_validator(mode="after")
    def _needs_a_place(self) -> OrderCreate:
        if self.service_point_id is None and self.account_id is None:
            raise ValueError("give service_point_id or account_id: an order needs a place")
        return self


class OrderUpdate(_Window):
    """Fields a dispatcher may change; send If-Match with the version you read."""

    model_config = ConfigDict(extra="forbid")

    priority: Priority | None = None
    scheduled_date: dt.date | None = None
    required_skills: list[Skill] | None = None
    estimated_minutes: int | None = Field(default=None, ge=1, le=600)
    technician_id: int | None = None
    locked: bool | None = None
    notes: str | None = Field(default=None, max_length=4000)


class OrderTransition(BaseModel):
    """Move an order along its lifecycle."""

    model_config = ConfigDict(extra="forbid")

    to: OrderStatus
    reason: str = Field(default="", max_length=2000)
    unable_code: UnableCode | None = Field(default=None, description="required when to=unable_to_complete")

    @model_validator(mode="after")
    def _unable_needs_code(self) -> OrderTransition:
        if self.to is OrderStatus.UNABLE_TO_COMPLETE and self.unable_code is None:
            raise ValueError("unable_code is required when an order cannot be completed")
        return self


class OrderRead(BaseModel):
    """A work order as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    order_type: OrderType
    status: OrderStatus
    priority: Priority
    account_id: int | None
    service_point_id: int
    meter_id: int | None
    technician_id: int | None
    scheduled_date: dt.date | None
    original_scheduled_date: dt.date | None = None  # set when a plan carried it over to a later day
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    required_skills: list[str]
    estimated_minutes: int
    rule: str
    reason: str
    idempotency_key: str
    notes: str
    planned_arrival_at: dt.datetime | None
    route_sequence: int | None
    locked: bool
    status_reason: str
    outcome: dict[str, Any]
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None
    version: int


class ExclusionRequest(BaseModel):
    """Take one account off a shut-off list, with its own note, for some days or until a date."""

    model_config = ConfigDict(extra="forbid")

    account_id: int = Field(description="an account on the list")
    note: str = Field(
        min_length=3, max_length=2000, description="why, e.g. 'paying Monday, spoke to J. Ruiz'"
    )
    days: int | None = Field(
        default=None,
        ge=1,
        le=366,
        description="keep it off the lists of the next N days (default shutoff.exclusion_default_days)",
    )
    until: dt.date | None = Field(default=None, description="or: keep it off every list through this day")

    @model_validator(mode="after")
    def _one_end(self) -> ExclusionRequest:
        if self.days is not None and self.until is not None:
            raise ValueError("give days or until, not both")
        return self


class ExclusionLift(BaseModel):
    """Lift an exclusion: the account may be raised on the next list."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000, description="why it is lifted")


class ExclusionRead(BaseModel):
    """An exclusion from the shut-off lists, and whether it still holds (and if not, why)."""

    id: int
    account_id: int
    account_number: str
    batch_id: int
    order_id: int | None
    note: str
    excluded_by: str
    excluded_at: dt.datetime
    until_date: dt.date
    lifted_at: dt.datetime | None
    lifted_by: str
    lift_note: str
    holds: bool
    ended: str | None  # why it no longer holds: lifted, days ran out, a payment, a new balance
