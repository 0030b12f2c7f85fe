"""Field results as typed records, the review item each one yields, their photos, and the CIS export log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, JSONType, UTCDateTime, utcnow


class FieldOutcome(Base):
    """One field outcome (a tablet completion, a hand-held read or skip), typed, linked to what it is about.

    `source_key` makes recording idempotent: ``tablet:<result document id>`` or ``handheld:<read key>``.
    `data` is the typed form (contracts.forms) dumped as JSON, plus the readings and what intake made of them.
    """

    __tablename__ = "field_outcomes"
    __table_args__ = (Index("ix_field_outcomes_kind_at", "kind", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(12))  # tablet | handheld
    kind: Mapped[str] = mapped_column(String(24))  # server.results.kinds.ResultKind
    order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    service_point_id: Mapped[int | None] = mapped_column(ForeignKey("service_points.id"))
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), index=True)
    technician_id: Mapped[int | None] = mapped_column(ForeignKey("technicians.id"))
    device_id: Mapped[str] = mapped_column(String(64), default="")  # tablet or hand-held
    outcome: Mapped[str] = mapped_column(String(24))  # completed | unable_to_complete | read | skip
    unable_code: Mapped[str] = mapped_column(String(32), default="")  # contracts.codes.UnableCode
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # when the CSFR or reader finished
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    read_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)  # meter_reads it brought in
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewItem(Base):
    """What an advisor decides about one result: the recommended action, its working, and the decision."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("field_outcomes.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(24))  # the result's kind, copied for filtering
    action: Mapped[str] = mapped_column(String(16))  # adjust | none | dispatch | arrangement
    adjustment_kind: Mapped[str] = mapped_column(String(32), default="")  # for action=adjust
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)  # + charge the customer, - credit
    working: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # how the amount was reached
    code: Mapped[str] = mapped_column(String(32), default="")  # unable / trouble code behind the action
    next_step: Mapped[str] = mapped_column(String(32), default="")  # revisit_with_appointment | ...
    summary: Mapped[str] = mapped_column(Text, default="")  # one sentence for the queue
    status: Mapped[str] = mapped_column(String(16), default="open")  # server.results.kinds.ReviewStatus
    decided_by: Mapped[str] = mapped_column(String(64), default="")
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    adjustment_id: Mapped[int | None] = mapped_column()  # the Adjustment the decision proposed
    new_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    arrangement_id: Mapped[int | None] = mapped_column(ForeignKey("payment_arrangements.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    # Two advisors deciding the same item at once: the second flush finds the version moved (409).
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class ResultPhoto(Base):
    """A photo a tablet attached to a result document, kept in the database (every API process sees it)."""

    __tablename__ = "result_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("field_outcomes.id"), index=True)
    database: Mapped[str] = mapped_column(String(80))  # the CSFR database it came from
    doc_id: Mapped[str] = mapped_column(String(120))
    attachment: Mapped[str] = mapped_column(String(200))  # the attachment's name on the document
    caption: Mapped[str] = mapped_column(String(400), default="")
    taken_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    content_type: Mapped[str] = mapped_column(String(80), default="")
    length: Mapped[int | None] = mapped_column(BigInteger)  # bytes
    digest: Mapped[str] = mapped_column(String(120), default="")  # CouchDB's md5-... digest
    content: Mapped[bytes | None] = mapped_column(LargeBinary)  # None until fetched from CouchDB
    fetched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    fetch_error: Mapped[str] = mapped_column(String(200), default="")


class CisExportRecord(Base):
    """One record for the CIS, staged once with a stable id; `seq` is the feed's cursor."""

    __tablename__ = "cis_export_records"
    __table_args__ = (Index("ix_cis_export_records_staged_at", "staged_at"),)

    seq: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[str] = mapped_column(String(80), unique=True)  # e.g. read-123, order-77-completed
    message: Mapped[str] = mapped_column(String(40))  # the standard message it maps to
    source_type: Mapped[str] = mapped_column(
        String(24)
    )  # meter_read | work_order | field_outcome | adjustment
    source_id: Mapped[int] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    staged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
