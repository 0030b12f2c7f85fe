"""Customer Service Field Representatives (CSFRs) and their working day."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Float, ForeignKey, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, JSONType


class Technician(Base):
    """A CSFR: skills, depot, shift, lunch break and overtime terms."""

    __tablename__ = "technicians"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # e.g. "T07"; CouchDB db is csfr-<code>
    name: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), unique=True)
    skills: Mapped[list[str]] = mapped_column(JSONType, default=list)  # contracts.codes.Skill values
    depot_lat: Mapped[float] = mapped_column(Float)
    depot_lon: Mapped[float] = mapped_column(Float)
    start_at_home: Mapped[bool] = mapped_column(default=False)
    home_lat: Mapped[float | None] = mapped_column(Float)
    home_lon: Mapped[float | None] = mapped_column(Float)
    shift_start: Mapped[dt.time] = mapped_column(Time, default=dt.time(7, 30))
    shift_end: Mapped[dt.time] = mapped_column(Time, default=dt.time(16, 0))
    break_earliest: Mapped[dt.time] = mapped_column(Time, default=dt.time(11, 0))
    break_latest: Mapped[dt.time] = mapped_column(Time, default=dt.time(13, 30))
    break_minutes: Mapped[int] = mapped_column(default=30)
    max_hours: Mapped[float] = mapped_column(Float, default=10.0)
    overtime_cost_cents_per_hour: Mapped[int] = mapped_column(BigInteger, default=6000)
    service_area: Mapped[str] = mapped_column(String(32), default="")
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
