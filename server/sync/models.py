"""What the server keeps about sync: who was provisioned, what was published, how far it has followed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, JSONType, UTCDateTime, utcnow


class SyncCheckpoint(Base):
    """How far the follower has read one CSFR database's `_changes` (the sequence is opaque)."""

    __tablename__ = "sync_checkpoints"

    database: Mapped[str] = mapped_column(String(80), primary_key=True)
    last_seq: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderPublication(Base):
    """The order document last written to a CSFR database: which version, which revision."""

    __tablename__ = "order_publications"

    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), primary_key=True)
    database: Mapped[str] = mapped_column(String(80), primary_key=True)
    order_version: Mapped[int] = mapped_column(default=0)
    doc_rev: Mapped[str] = mapped_column(String(80), default="")
    withdrawn: Mapped[bool] = mapped_column(default=False)  # reassigned away: the tablet saw it cancelled
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FieldResult(Base):
    """A result or event document ingested from a tablet (its document id makes ingestion idempotent)."""

    __tablename__ = "field_results"

    doc_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # result | event
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    database: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    outcome: Mapped[str] = mapped_column(String(200), default="")  # what the server did with it
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
