"""Customers, accounts, premises and the money side: balances, payments, arrangements, holds, notices, moves."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, JSONType, UTCDateTime, utcnow


class Customer(Base):
    """A person or business the utility bills."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    cis_customer_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(120), default="")
    mailing_address: Mapped[str] = mapped_column(String(200), default="")
    # Under 200% of the federal poverty line (SB 998 reconnection-fee caps).
    low_income: Mapped[bool] = mapped_column(default=False)


class ServicePoint(Base):
    """A premise where water is delivered: the place a CSFR drives to."""

    __tablename__ = "service_points"

    id: Mapped[int] = mapped_column(primary_key=True)
    cis_service_point_id: Mapped[str] = mapped_column(String(32), unique=True)
    address: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(80), default="")
    postal_code: Mapped[str] = mapped_column(String(16), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    access_notes: Mapped[str] = mapped_column(Text, default="")  # gate code, meter location
    hazards: Mapped[list[str]] = mapped_column(JSONType, default=list)  # e.g. ["dog", "locked_gate"]
    service_area: Mapped[str] = mapped_column(String(32), default="")
    route: Mapped[str] = mapped_column(String(32), default="")  # meter-reading book/route


class Account(Base):
    """A customer's billing account at a service point."""

    __tablename__ = "accounts"
    __table_args__ = (Index("ix_accounts_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_number: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    service_point_id: Mapped[int] = mapped_column(ForeignKey("service_points.id"), index=True)
    # active | inactive | shut_off | locked | closed
    status: Mapped[str] = mapped_column(String(16), default="active")
    occupied: Mapped[bool] = mapped_column(default=True)
    service_class: Mapped[str] = mapped_column(String(16), default="residential")
    billing_cycle: Mapped[str] = mapped_column(String(8), default="")
    opened_date: Mapped[dt.date | None] = mapped_column(Date)
    closed_date: Mapped[dt.date | None] = mapped_column(Date)


class Balance(Base):
    """The account's receivable as last reported by the CIS (one row per account)."""

    __tablename__ = "balances"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # everything owed
    past_due_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # owed past its due date
    oldest_past_due_date: Mapped[dt.date | None] = mapped_column(Date)  # due date of the oldest unpaid bill
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Payment(Base):
    """A payment posted to an account."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    cis_payment_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    paid_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    method: Mapped[str] = mapped_column(String(16), default="")


class PaymentArrangement(Base):
    """A payment plan; an active one holds back a shut-off."""

    __tablename__ = "payment_arrangements"

    id: Mapped[int] = mapped_column(primary_key=True)
    cis_arrangement_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | defaulted | completed
    made_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    down_payment_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class ShutoffHold(Base):
    """Something that forbids a shut-off for a while: a medical certificate, a pending dispute."""

    __tablename__ = "shutoff_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    cis_hold_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # medical_certificate | dispute | other
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")


class ShutoffNotice(Base):
    """A shut-off notice served to an account (the written notice or the final door hanger)."""

    __tablename__ = "shutoff_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    cis_notice_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # written | final
    served_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MoveRequest(Base):
    """A move-in (turn-on) or move-out (turn-off) request for a date."""

    __tablename__ = "move_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    cis_request_id: Mapped[str] = mapped_column(String(40), unique=True)
    service_point_id: Mapped[int] = mapped_column(ForeignKey("service_points.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(10))  # move_in | move_out
    requested_date: Mapped[dt.date] = mapped_column(Date, index=True)
    customer_name: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | ordered | cancelled
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
