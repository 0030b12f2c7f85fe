"""Hand-held shapes (route and read records themselves live in contracts.handheld)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class DeviceCreate(BaseModel):
    """Register a hand-held."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = Field(default="", max_length=120)


class DeviceRead(BaseModel):
    """A registered hand-held."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str
    name: str
    active: bool
    registered_at: dt.datetime
    last_seen_at: dt.datetime | None


class RouteSummary(BaseModel):
    """A reading route with its size and where it is."""

    id: int
    route_code: str
    cycle: str
    meters: int
    device_id: str | None
    status: str | None


class AssignBody(BaseModel):
    """Which device gets the route."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(min_length=1, max_length=40)


class BuildResultRead(BaseModel):
    """What a build made."""

    routes: int
    meters: int
