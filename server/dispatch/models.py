"""Route plans for a day (or one service area of a day)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, JSONType, UTCDateTime, utcnow


class DispatchPlan(Base):
    """A solved plan: draft until a dispatcher publishes it to the orders."""

    __tablename__ = "dispatch_plans"
    __table_args__ = (Index("ix_dispatch_plans_date", "plan_date", "service_area"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_date: Mapped[dt.date] = mapped_column(Date)
    service_area: Mapped[str] = mapped_column(String(32), default="")  # "" = every area
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft | published | superseded
    kind: Mapped[str] = mapped_column(String(12), default="plan")  # plan | replan | emergency
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # time limit, seed
    # The plan as shown to people: routes with local times, travel, idle, overtime; unassigned with reasons.
    routes: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    unassigned: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # The order versions the plan was made from: publishing refuses if any changed since.
    order_versions: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    # routing.Plan in seconds-from-midnight, kept so a re-plan can start from it.
    solver_plan: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Orders due on an earlier day offered in this plan (flagged `carried_over` in routes and unassigned).
    carried_over: Mapped[int] = mapped_column(default=0)
    objective: Mapped[int] = mapped_column(default=0)
    travel_s: Mapped[int] = mapped_column(default=0)
    solver_status: Mapped[str] = mapped_column(String(40), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def summary(self) -> dict[str, Any]:
        """Bottlenecks and idle capacity heading the unassigned list (server/dispatch/reasons.py)."""
        return dict((self.solver_plan or {}).get("summary") or {})
