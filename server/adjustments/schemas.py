"""API shapes for bills and adjustments."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["reread_correction", "meter_test", "leak_credit", "fee_reversal", "estimate_true_up"]
Status = Literal["proposed", "changed", "approved", "rejected"]


class AdjustmentPropose(BaseModel):
    """Propose an adjustment: the calculator runs on `inputs` (see docs/adjustments.md for each kind)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    account_id: int
    inputs: dict[str, Any]
    source_result_id: int | None = None
    note: str = Field(default="", max_length=2000)


class AdjustmentPreview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    account_id: int
    inputs: dict[str, Any]


class AdjustmentChange(BaseModel):
    """New inputs (recomputed) or an amount set by hand; a reason either way."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    inputs: dict[str, Any] | None = None
    amount_cents: int | None = None
    version: int | None = None


class AdjustmentDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)
    version: int | None = None


class Approval(BaseModel):
    by: str
    role: str
    at: dt.datetime


class AdjustmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: Kind
    status: Status
    account_id: int
    source_result_id: int | None
    amount_cents: int
    inputs: dict[str, Any]
    working: dict[str, Any]
    note: str
    proposed_by: str
    changed_by: str | None
    change_reason: str
    approvals: list[Approval]
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class WorkingRead(BaseModel):
    """A calculator's working: inputs, steps, bills re-rated, result (cents) and outcome."""

    kind: Kind
    inputs: dict[str, Any]
    steps: list[dict[str, Any]]
    bills: list[dict[str, Any]]
    amount_cents: int
    outcome: Literal["adjust", "none", "refused"]
    reason: str


class BillLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    component: str
    quantity: float | None
    amount_cents: int
    description: str


class BillRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cis_bill_id: str
    account_id: int
    meter_id: int | None
    period_start_date: dt.date
    period_end_date: dt.date
    start_read_at: dt.datetime | None
    start_reading: float | None
    end_read_at: dt.datetime | None
    end_reading: float | None
    consumption: float
    unit: str
    estimated: bool
    total_cents: int
    lines: list[BillLineRead] = []
