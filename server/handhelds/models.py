"""Hand-held devices, meter-reading routes and what the devices upload."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, JSONType, UTCDateTime, utcnow


class HandheldDevice(Base):
    """A registered hand-held meter reader."""

    __tablename__ = "handheld_devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(40), unique=True)  # what the device reports when it docks
    name: Mapped[str] = mapped_column(String(120), default="")
    active: Mapped[bool] = mapped_column(default=True)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ReadingRoute(Base):
    """A meter-reading route: one book of one billing cycle, in walk order."""

    __tablename__ = "reading_routes"
    __table_args__ = (UniqueConstraint("route_code", "cycle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route_code: Mapped[str] = mapped_column(String(32))  # the book (service_points.route)
    cycle: Mapped[str] = mapped_column(String(10))  # accounts.billing_cycle
    built_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReadingRouteStop(Base):
    """One meter of a route at its walk sequence."""

    __tablename__ = "reading_route_stops"
    __table_args__ = (UniqueConstraint("route_id", "sequence"), UniqueConstraint("route_id", "meter_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("reading_routes.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column()
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    service_point_id: Mapped[int] = mapped_column(ForeignKey("service_points.id"))


class RouteAssignment(Base):
    """A route given to a device to read; its status follows the download."""

    __tablename__ = "route_assignments"
    __table_args__ = (UniqueConstraint("route_id"),)  # a route is in one device at a time

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("reading_routes.id", ondelete="CASCADE"))
    device_pk: Mapped[int] = mapped_column(ForeignKey("handheld_devices.id"))
    status: Mapped[str] = mapped_column(String(12), default="assigned")  # assigned | downloaded
    assigned_by: Mapped[str] = mapped_column(String(64), default="")
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    downloaded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class HandheldUploadBatch(Base):
    """One upload a station posted; its key makes a re-post a no-op."""

    __tablename__ = "handheld_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("handheld_devices.id"))
    station: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)


class HandheldSkip(Base):
    """A register the reader could not read, with the reason: kept so nothing uploaded is dropped."""

    __tablename__ = "handheld_skips"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(40), unique=True)
    device_pk: Mapped[int] = mapped_column(ForeignKey("handheld_devices.id"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    read_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    skip_code: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
