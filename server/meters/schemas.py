"""Meter and read shapes."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class MeterOut(BaseModel):
    """A meter."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    serial: str
    service_point_id: int | None
    size: str
    make: str
    model: str
    dials: int
    decimals: int
    multiplier: int
    unit: str
    radio_id: str
    install_date: dt.date | None
    last_test_date: dt.date | None
    status: str


class MeterReadOut(BaseModel):
    """One register reading with its validation outcome."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    register_number: int = Field(validation_alias="register")  # `register` would shadow BaseModel
    read_at: dt.datetime
    reading: float
    source: str
    read_code: str
    estimated: bool
    validation: str
    validation_reason: str
    # Kept on record but off the register's chain (server/meters/intake.py): the read it duplicates, the
    # read in question a reread confirmed or corrected, the reread that replaced this one for billing.
    duplicate_of_id: int | None = None
    confirms_read_id: int | None = None
    corrects_read_id: int | None = None
    superseded_by_id: int | None = None
