"""Work orders: what a CSFR is sent to do, where, when and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, JSONType, UTCDateTime, utcnow


class WorkOrder(Base):
    """One field order through its lifecycle (contracts.codes.ORDER_TRANSITIONS)."""

    __tablename__ = "work_orders"
    __table_args__ = (
        Index("ix_work_orders_status_date", "status", "scheduled_date"),
        Index("ix_work_orders_account_type", "account_id", "order_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_type: Mapped[str] = mapped_column(String(24))  # contracts.codes.OrderType
    status: Mapped[str] = mapped_column(String(20), default="new")  # contracts.codes.OrderStatus
    priority: Mapped[str] = mapped_column(String(16))  # contracts.codes.Priority
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    service_point_id: Mapped[int] = mapped_column(ForeignKey("service_points.id"), index=True)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    technician_id: Mapped[int | None] = mapped_column(ForeignKey("technicians.id"), index=True)
    scheduled_date: Mapped[dt.date | None] = mapped_column(Date)
    # The day the order was first due, kept when a plan carries it over to a later day (None: never carried).
    original_scheduled_date: Mapped[dt.date | None] = mapped_column(Date)
    window_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # appointment window
    window_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    required_skills: Mapped[list[str]] = mapped_column(JSONType, default=list)
    estimated_minutes: Mapped[int] = mapped_column(default=15)
    # Which rule (or person) made it, and why; the key makes generation idempotent.
    rule: Mapped[str] = mapped_column(String(40), default="manual")
    reason: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    planned_arrival_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    route_sequence: Mapped[int | None] = mapped_column()
    locked: Mapped[bool] = mapped_column(default=False)  # a dispatcher pinned it to its tech and place
    status_reason: Mapped[str] = mapped_column(Text, default="")  # why it was cancelled / unable
    outcome: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # summary of the field result
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Not dispatchable while set (a shut-off awaiting its batch's review); says why.
    review_hold: Mapped[str] = mapped_column(String(120), default="")
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("shutoff_batches.id"), index=True)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class GenerationRun(Base):
    """One run of the order-generation rules: for which day, which rules, and what came of it."""

    __tablename__ = "generation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_date: Mapped[dt.date] = mapped_column(Date, index=True)
    rules: Mapped[list[str]] = mapped_column(JSONType, default=list)
    dry_run: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | succeeded | failed
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # rule -> outcome -> n
    policy_source: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(64), default="")
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class GenerationDecision(Base):
    """What a run decided for one account or meter: created, existing, held back (and why), cancelled."""

    __tablename__ = "generation_decisions"
    __table_args__ = (Index("ix_generation_decisions_account", "account_id", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("generation_runs.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(10))  # create | existing | hold | cancel
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    order_type: Mapped[str] = mapped_column(String(24), default="")
    reason: Mapped[str] = mapped_column(Text, default="")


class ShutoffBatch(Base):
    """A day's shut-off list: reviewed (approved in whole or part) before any cut is dispatched."""

    __tablename__ = "shutoff_batches"
    __table_args__ = (UniqueConstraint("service_date", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_date: Mapped[dt.date] = mapped_column(Date, index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("generation_runs.id"))
    status: Mapped[str] = mapped_column(String(16), default="proposed")  # proposed | approved | rejected
    reviewed_by: Mapped[str] = mapped_column(String(64), default="")
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShutoffExclusion(Base):
    """A supervisor took an account off a shut-off list: it stays off later lists until `until_date`, until
    its balance changes (a payment or a new bill), or until a supervisor lifts it, whichever comes first."""

    __tablename__ = "shutoff_exclusions"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("shutoff_batches.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))  # the cut it cancelled
    note: Mapped[str] = mapped_column(Text)
    excluded_by: Mapped[str] = mapped_column(String(64))
    excluded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    until_date: Mapped[dt.date] = mapped_column(Date)  # the last local day it holds
    # The receivable when it was made: a change (a payment, a new bill) ends it.
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    past_due_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    last_payment_id: Mapped[int | None] = mapped_column()
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str] = mapped_column(String(64), default="")
    lift_note: Mapped[str] = mapped_column(Text, default="")


class NoShutoffDay(Base):
    """A day a supervisor closed to shut-offs (extreme heat, a storm, a local event)."""

    __tablename__ = "no_shutoff_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))
    marked_by: Mapped[str] = mapped_column(String(64), default="")
    marked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class MeterTestRequest(Base):
    """A customer's request to have their meter tested (the meter-test rule turns it into an order)."""

    __tablename__ = "meter_test_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | ordered | cancelled
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
