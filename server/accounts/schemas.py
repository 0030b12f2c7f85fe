"""Account, premise and money shapes (read-only in the API: the CIS owns them)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict


class ServicePointRead(BaseModel):
    """A premise."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    cis_service_point_id: str
    address: str
    city: str
    postal_code: str
    lat: float
    lon: float
    access_notes: str
    hazards: list[str]
    service_area: str
    route: str


class BalanceRead(BaseModel):
    """What the account owes, in cents."""

    model_config = ConfigDict(from_attributes=True)

    balance_cents: int
    past_due_cents: int
    oldest_past_due_date: dt.date | None
    as_of: dt.datetime


class AccountRead(BaseModel):
    """An account with its customer's name, premise and balance."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    account_number: str
    customer_name: str
    status: str
    occupied: bool
    service_class: str
    billing_cycle: str
    opened_date: dt.date | None
    closed_date: dt.date | None
    service_point: ServicePointRead
    balance: BalanceRead | None
    holds: list[str]
    active_arrangement: bool


class PaymentRead(BaseModel):
    """A posted payment."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    cis_payment_id: str
    amount_cents: int
    paid_at: dt.datetime
    method: str
