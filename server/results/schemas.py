"""Review queue, decisions, account history and CIS export shapes."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.codes import OrderType


class DecisionKind(StrEnum):
    """What an advisor does with a review item."""

    ACCEPT = "accept"  # carry out the recommendation
    CHANGE = "change"  # propose an adjustment of another amount (or kind), with a reason
    DISMISS = "dismiss"  # do nothing, with a reason
    DISPATCH = "dispatch"  # send back to dispatch (a new visit)


class Decision(BaseModel):
    """Body of ``POST /api/review/items/{id}/decisions``."""

    model_config = ConfigDict(extra="forbid")

    decision: DecisionKind
    reason: str = Field(default="", max_length=2000)
    amount_cents: int | None = Field(
        default=None, ge=-10_000_000, le=10_000_000
    )  # change: + charge, - credit
    adjustment_kind: str | None = Field(default=None, min_length=1, max_length=32)
    order_type: OrderType | None = None  # dispatch: the visit to send (default: the original order's type)
    scheduled_date: dt.date | None = None
    window_start: AwareDatetime | None = None  # dispatch: the appointment window agreed with the customer
    window_end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.decision in (DecisionKind.CHANGE, DecisionKind.DISMISS) and not self.reason.strip():
            raise ValueError(f"reason: required to {self.decision.value} a recommendation")
        if self.decision is DecisionKind.CHANGE and self.amount_cents is None:
            raise ValueError("amount_cents: required to change a recommendation")
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("window_start and window_end: give both or neither")
        if self.window_start and self.window_end and self.window_end <= self.window_start:
            raise ValueError("window_end: must be after window_start")
        return self


class PhotoRead(BaseModel):
    """A photo of a result (fetch its bytes from `url`)."""

    id: int
    caption: str
    taken_at: dt.datetime | None
    content_type: str
    length: int | None
    available: bool
    url: str


class ResultRead(BaseModel):
    """A typed field result."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    kind: str
    order_id: int | None
    account_id: int | None
    service_point_id: int | None
    meter_id: int | None
    technician_id: int | None
    device_id: str
    outcome: str
    unable_code: str
    occurred_at: dt.datetime
    data: dict[str, Any]
    read_ids: list[int]
    notes: str


class ReviewItemRead(BaseModel):
    """A review item as the queue lists it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    result_id: int
    kind: str
    action: str
    adjustment_kind: str
    amount_cents: int | None
    code: str
    next_step: str
    summary: str
    status: str
    created_at: dt.datetime
    decided_by: str
    decided_at: dt.datetime | None
    decision_reason: str
    adjustment_id: int | None
    new_order_id: int | None
    arrangement_id: int | None
    account_id: int | None = None
    route: str = ""
    age_days: float = 0.0


class ReviewItemDetail(ReviewItemRead):
    """One item with its result, photos, the recommendation's working, consumption and bills."""

    working: dict[str, Any]
    result: ResultRead
    photos: list[PhotoRead]
    history: AccountHistory | None


class HistoryRead(BaseModel):
    """One read on the account's meters, with its validation (for the consumption graph)."""

    read_id: int
    meter_id: int
    read_at: dt.datetime
    reading: float
    use: float | None
    unit: str
    source: str
    estimated: bool
    validation: str
    validation_reason: str
    on_chain: bool  # counts for billing (not a duplicate, confirmation or superseded read)


class PaymentRead(BaseModel):
    """A payment."""

    paid_at: dt.datetime
    amount_cents: int
    method: str


class AccountHistory(BaseModel):
    """Reads, bills and payments of one account, oldest first, shaped as series for graphs."""

    account_id: int
    reads: list[HistoryRead]
    bills: list[dict[str, Any]]
    payments: list[PaymentRead]
    series: dict[str, list[list[Any]]]  # name -> [[iso time, value], ...]: use, bills_cents, payments_cents


ReviewItemDetail.model_rebuild()


class ExportPage(BaseModel):
    """One page of the CIS feed; pass `next_cursor` back to resume exactly after the last record."""

    records: list[dict[str, Any]]
    next_cursor: str
    more: bool
