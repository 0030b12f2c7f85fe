"""Dispatch shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class PlanRequest(BaseModel):
    """Plan a day (or one service area of it)."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date
    service_area: str = Field(default="", max_length=32)
    time_limit_s: float = Field(default=20.0, gt=0, le=600)
    seed: int = Field(default=0, ge=0)
    include_carry_over: bool | None = Field(
        default=None,
        description="plan open orders due on an earlier day (flagged carried_over); "
        "null: the policy's dispatch.include_carry_over",
    )


class ReplanRequest(BaseModel):
    """Re-plan the rest of a published day from `now` (default: the current time)."""

    model_config = ConfigDict(extra="forbid")

    now: AwareDatetime | None = None
    time_limit_s: float = Field(default=10.0, gt=0, le=600)
    seed: int = Field(default=0, ge=0)


class EmergencyRequest(BaseModel):
    """Insert one urgent order into today's published plan and dispatch it at once."""

    model_config = ConfigDict(extra="forbid")

    order_id: int
    now: AwareDatetime | None = None
    service_area: str = Field(default="", max_length=32)


class PlanRead(BaseModel):
    """A plan as a dispatcher sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    plan_date: dt.date
    service_area: str
    status: str
    kind: str
    params: dict[str, Any]
    routes: list[dict[str, Any]]
    unassigned: list[dict[str, Any]]
    # What heads the unassigned list: bottlenecks (skills short, hours short), idle CSFRs, and lines of text.
    summary: dict[str, Any] = Field(default_factory=dict)
    carried_over: int  # orders due on an earlier day; each visit and unassigned entry says so
    objective: int
    travel_s: int
    solver_status: str
    created_by: str
    created_at: dt.datetime
    published_at: dt.datetime | None
    version: int


class JobAccepted(BaseModel):
    """A job was queued; poll /api/jobs/{job_id}."""

    job_id: int
    status_url: str
