"""Work orders: what a CSFR is sent to do, where, when and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, Text
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
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
