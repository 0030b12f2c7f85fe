"""Bills (imported from the CIS), their charge lines, and billing adjustments with their approvals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, JSONType, UTCDateTime, utcnow


class Bill(Base):
    """A bill the CIS issued: the period between two reads, the consumption billed and how it was read."""

    __tablename__ = "bills"
    __table_args__ = (Index("ix_bills_account_period", "account_id", "period_start_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cis_bill_id: Mapped[str] = mapped_column(String(40), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), index=True)
    # Opening and closing read dates (local); the period's days are their difference.
    period_start_date: Mapped[dt.date] = mapped_column(Date)
    period_end_date: Mapped[dt.date] = mapped_column(Date)
    # The reads the bill used: register values as displayed, and when they were read (matched to
    # meter_reads by meter and read time: a corrected read finds every bill that used it).
    start_read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    start_reading: Mapped[float | None] = mapped_column(Numeric(16, 4, asdecimal=False))
    end_read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    end_reading: Mapped[float | None] = mapped_column(Numeric(16, 4, asdecimal=False))
    consumption: Mapped[float] = mapped_column(Numeric(16, 4, asdecimal=False))  # in `unit`
    unit: Mapped[str] = mapped_column(String(4), default="gal")  # contracts.codes.VolumeUnit
    estimated: Mapped[bool] = mapped_column(default=False)
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # the sum of its lines
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BillLine(Base):
    """One charge of a bill by component: fixed, tier_1..tier_9, late_fee, delinquency, reconnection, other."""

    __tablename__ = "bill_lines"
    __table_args__ = (UniqueConstraint("bill_id", "component"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bill_id: Mapped[int] = mapped_column(ForeignKey("bills.id"))
    component: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[float | None] = mapped_column(Numeric(16, 4, asdecimal=False))  # units, tiers only
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(120), default="")


class Adjustment(Base):
    """A billing adjustment: proposed -> (changed) -> approved | rejected; its working shown.

    `amount_cents` > 0 is charged to the customer (a back-bill), < 0 credited. The working is the
    calculator's `Working.as_dict()`; `approvals` lists who approved ({by, role, at}), two for the
    kinds the policy says need two. Every decision is also an audit event (entity "adjustment").
    """

    __tablename__ = "adjustments"
    __table_args__ = (Index("ix_adjustments_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), index=True)  # server.adjustments.policy.KINDS
    status: Mapped[str] = mapped_column(String(12), default="proposed")  # proposed|changed|approved|rejected
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The field result it came from (server/results), when it came from one.
    source_result_id: Mapped[int | None] = mapped_column(index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # what propose/change was given
    working: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    proposed_by: Mapped[str] = mapped_column(String(64))
    changed_by: Mapped[str | None] = mapped_column(String(64))
    change_reason: Mapped[str] = mapped_column(Text, default="")
    approvals: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    decided_by: Mapped[str | None] = mapped_column(String(64))  # who approved last or rejected
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
