"""Technician request and response shapes."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.codes import Skill


class _Shift(BaseModel):
    shift_start: dt.time | None = None
    shift_end: dt.time | None = None
    break_earliest: dt.time | None = None
    break_latest: dt.time | None = None

    @model_validator(mode="after")
    def _order(self) -> _Shift:
        if self.shift_start and self.shift_end and self.shift_end <= self.shift_start:
            raise ValueError("shift_end must be after shift_start")
        if self.break_earliest and self.break_latest and self.break_latest < self.break_earliest:
            raise ValueError("break_latest must not be before break_earliest")
        return self


class TechnicianCreate(_Shift):
    """A new CSFR."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=120)
    user_id: int | None = None
    skills: list[Skill] = Field(default_factory=list)
    depot_lat: float = Field(ge=-90, le=90)
    depot_lon: float = Field(ge=-180, le=180)
    start_at_home: bool = False
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    break_minutes: int = Field(default=30, ge=0, le=120)
    max_hours: float = Field(default=10.0, gt=0, le=16)
    overtime_cost_cents_per_hour: int = Field(default=6000, ge=0)
    service_area: str = ""


class TechnicianUpdate(_Shift):
    """Changes to a CSFR; send If-Match with the version you read."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    user_id: int | None = None
    skills: list[Skill] | None = None
    depot_lat: float | None = Field(default=None, ge=-90, le=90)
    depot_lon: float | None = Field(default=None, ge=-180, le=180)
    start_at_home: bool | None = None
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    break_minutes: int | None = Field(default=None, ge=0, le=120)
    max_hours: float | None = Field(default=None, gt=0, le=16)
    overtime_cost_cents_per_hour: int | None = Field(default=None, ge=0)
    service_area: str | None = None
    active: bool | None = None


class TechnicianRead(BaseModel):
    """A CSFR as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    user_id: int | None
    skills: list[str]
    depot_lat: float
    depot_lon: float
    start_at_home: bool
    home_lat: float | None
    home_lon: float | None
    shift_start: dt.time
    shift_end: dt.time
    break_earliest: dt.time
    break_latest: dt.time
    break_minutes: int
    max_hours: float
    overtime_cost_cents_per_hour: int
    service_area: str
    active: bool
    version: int
