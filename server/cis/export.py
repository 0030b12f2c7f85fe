"""What goes back to the CIS: validated reads, order outcomes, meter tests and changes, approved adjustments.

Each fact is staged once as a `CisExportRecord` with a stable `record_id` (``read-123``,
``order-outcome-45``...) and an increasing `seq`; the HTTP feed pages by `seq` (the cursor) and the file
export selects by staging time, so a re-sent or re-read export carries the same ids and the CIS can ignore
what it already has. Field names follow the standard message each record maps to (docs/cis-export.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import String, and_, cast, exists, literal, select
from sqlalchemy.orm import Session

from contracts.codes import OPEN_STATUSES, OrderType, ReadSource
from server.accounts.models import Account, ServicePoint
from server.db import utcnow
from server.errors import ApiError
from server.meters.models import Meter, MeterRead
from server.orders.models import WorkOrder
from server.results.kinds import ResultKind
from server.results.models import CisExportRecord, FieldOutcome
from server.results.schemas import ExportPage

# The message each record maps to, and its fields in file order (one CSV per message).
READINGS = "MeterReadings"  # IEC 61968-9 MeterReadings / MultiSpeak ReadingChangedNotification
ORDER_OUTCOME = "ServiceOrderChangedNotification"  # MultiSpeak ServiceOrder...Notification
METER_TEST = "MeterTestNotification"  # MultiSpeak
METER_EXCHANGE = "MeterExchangeNotification"  # MultiSpeak
ADJUSTMENT = "AdjustmentNotification"  # no standard message: Curbstop's own
FIELDS: dict[str, tuple[str, ...]] = {
    READINGS: (
        "record_id", "mRID", "meterNo", "register", "servicePointID", "accountNumber", "readingDateTime",
        "value", "readingTypeUnit", "multiplier", "source", "estimated", "quality", "qualityReason",
        "replacesReadingID",
    ),
    ORDER_OUTCOME: (
        "record_id", "serviceOrderID", "orderType", "servicePointID", "accountNumber", "meterNo", "status",
        "completedDateTime", "unableCode", "curbStopPosition", "sealNumber", "fieldRep", "notes",
    ),
    METER_TEST: (
        "record_id", "serviceOrderID", "meterNo", "testDateTime", "passed", "billingAccuracyPct",
        "lowFlowAccuracyPct", "intermediateFlowAccuracyPct", "highFlowAccuracyPct", "recommendation",
    ),
    METER_EXCHANGE: (
        "record_id", "serviceOrderID", "servicePointID", "oldMeterNo", "exchangeDateTime", "findings", "notes",
    ),
    ADJUSTMENT: (
        "record_id", "adjustmentID", "accountNumber", "kind", "amountCents", "approvedDateTime", "approvedBy",
        "reason",
    ),
}  # fmt: skip
FIELD_SOURCES = (ReadSource.FIELD.value, ReadSource.HANDHELD.value)
MAX_LIMIT = 1000


def _staged(db_session: Session, source_type: str, source_id: Any) -> Any:
    return exists().where(CisExportRecord.source_type == source_type, CisExportRecord.source_id == source_id)


def _add(
    db_session: Session,
    record_id: str,
    message: str,
    source_type: str,
    source_id: int,
    payload: dict[str, Any],
) -> None:
    body = {k: payload.get(k) for k in FIELDS[message] if k != "record_id"}
    db_session.add(
        CisExportRecord(
            record_id=record_id, message=message, source_type=source_type, source_id=source_id, payload=body
        )
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def stage(*, db_session: Session) -> int:
    """Stage every exportable fact not staged yet; how many records were added."""
    added = _stage_reads(db_session) + _stage_results(db_session) + _stage_adjustments(db_session)
    db_session.flush()
    return added


def _stage_reads(db_session: Session) -> int:
    # A field read is validated once nothing about it is open: on the billing chain (not a duplicate,
    # confirmation or superseded read), classified, and no open reread order questions it.
    open_reread = exists().where(
        WorkOrder.idempotency_key == literal("reread:read:") + cast(MeterRead.id, String),
        WorkOrder.status.in_([s.value for s in OPEN_STATUSES]),
    )
    rows = db_session.execute(
        select(
            MeterRead,
            Meter.serial,
            Meter.unit,
            Meter.multiplier,
            ServicePoint.cis_service_point_id,
            Account.account_number,
        )
        .join(Meter, Meter.id == MeterRead.meter_id)
        .outerjoin(ServicePoint, ServicePoint.id == Meter.service_point_id)
        .outerjoin(Account, and_(Account.service_point_id == ServicePoint.id, Account.status != "closed"))
        .where(
            MeterRead.source.in_(FIELD_SOURCES),
            MeterRead.derived.is_(True),
            MeterRead.validation.not_in(["", "duplicate", "superseded", "confirms"]),
            MeterRead.duplicate_of_id.is_(None),
            MeterRead.superseded_by_id.is_(None),
            MeterRead.confirms_read_id.is_(None),
            ~open_reread,
            ~_staged(db_session, "meter_read", MeterRead.id),
        )
        .order_by(MeterRead.id)
    ).all()
    seen: set[int] = set()
    for read, serial, unit, multiplier, sp, account in rows:
        if read.id in seen:
            continue  # two open accounts on one premise: the read goes once
        seen.add(read.id)
        _add(db_session, f"read-{read.id}", READINGS, "meter_read", read.id, {
            "mRID": f"read-{read.id}", "meterNo": serial, "register": read.register, "servicePointID": sp,
            "accountNumber": account, "readingDateTime": _iso(read.read_at), "value": float(read.reading),
            "readingTypeUnit": unit, "multiplier": multiplier, "source": read.source, "estimated": read.estimated,
            "quality": read.validation, "qualityReason": read.validation_reason,
            "replacesReadingID": f"read-{read.corrects_read_id}" if read.corrects_read_id else None,
        })  # fmt: skip
    return len(seen)


def _stage_results(db_session: Session) -> int:
    rows = db_session.execute(
        select(
            FieldOutcome, WorkOrder, ServicePoint.cis_service_point_id, Account.account_number, Meter.serial
        )
        .join(WorkOrder, WorkOrder.id == FieldOutcome.order_id)
        .outerjoin(ServicePoint, ServicePoint.id == FieldOutcome.service_point_id)
        .outerjoin(Account, Account.id == FieldOutcome.account_id)
        .outerjoin(Meter, Meter.id == FieldOutcome.meter_id)
        .where(FieldOutcome.source == "tablet", ~_staged(db_session, "field_outcome", FieldOutcome.id))
        .order_by(FieldOutcome.id)
    ).all()
    added = 0
    for result, order, sp, account, serial in rows:
        form = result.data.get("form", {})
        _add(db_session, f"order-outcome-{result.id}", ORDER_OUTCOME, "field_outcome", result.id, {
            "serviceOrderID": str(order.id), "orderType": order.order_type, "servicePointID": sp,
            "accountNumber": account, "meterNo": serial, "status": result.outcome,
            "completedDateTime": _iso(result.occurred_at), "unableCode": result.unable_code or None,
            "curbStopPosition": form.get("curb_stop_position"), "sealNumber": form.get("seal_number"),
            "fieldRep": str(result.technician_id or ""), "notes": result.notes,
        })  # fmt: skip
        added += 1
        if result.kind == ResultKind.METER_TEST.value:
            points = {p["point"]: p["accuracy_pct"] for p in form.get("points", [])}
            _add(db_session, f"meter-test-{result.id}", METER_TEST, "meter_test", result.id, {
                "serviceOrderID": str(order.id), "meterNo": serial, "testDateTime": _iso(result.occurred_at),
                "passed": form.get("passed"), "billingAccuracyPct": form.get("billing_accuracy_pct"),
                "lowFlowAccuracyPct": points.get("low"), "intermediateFlowAccuracyPct": points.get("intermediate"),
                "highFlowAccuracyPct": points.get("high"), "recommendation": form.get("recommendation"),
            })  # fmt: skip
            added += 1
        if order.order_type == OrderType.METER_EXCHANGE.value and result.outcome == "completed":
            _add(db_session, f"meter-exchange-{result.id}", METER_EXCHANGE, "meter_exchange", result.id, {
                "serviceOrderID": str(order.id), "servicePointID": sp, "oldMeterNo": serial,
                "exchangeDateTime": _iso(result.occurred_at), "findings": form.get("findings"), "notes": result.notes,
            })  # fmt: skip
            added += 1
    return added


def _stage_adjustments(db_session: Session) -> int:
    # Approvals come in any order: every approved adjustment not staged yet (not "ids above the last").
    from server.adjustments.models import Adjustment

    rows = db_session.execute(
        select(Adjustment, Account.account_number)
        .join(Account, Account.id == Adjustment.account_id)
        .where(Adjustment.status == "approved", ~_staged(db_session, "adjustment", Adjustment.id))
        .order_by(Adjustment.decided_at, Adjustment.id)
    ).all()
    for adj, account in rows:
        _add(db_session, f"adjustment-{adj.id}", ADJUSTMENT, "adjustment", adj.id, {
            "adjustmentID": str(adj.id), "accountNumber": account, "kind": adj.kind,
            "amountCents": adj.amount_cents, "approvedDateTime": _iso(adj.decided_at),
            "approvedBy": adj.decided_by, "reason": adj.change_reason or adj.note,
        })  # fmt: skip
    return len(rows)


def _as_dict(row: CisExportRecord) -> dict[str, Any]:
    return {
        "record_id": row.record_id,
        "message": row.message,
        "staged_at": _iso(row.staged_at),
        **row.payload,
    }


def parse_cursor(cursor: str | None) -> int:
    """The sequence after which a page starts; 422 naming `cursor` when it is not one this feed gave."""
    if cursor in (None, ""):
        return 0
    if not cursor.isdigit():
        raise ApiError(
            422, "invalid_request", f"cursor: {cursor!r} is not a cursor this feed gave (pass next_cursor back)",
            fields=[{"field": "query.cursor", "message": "not a cursor this feed gave"}],
        )  # fmt: skip
    return int(cursor)


def feed(*, db_session: Session, cursor: str | None, limit: int) -> ExportPage:
    """The records after `cursor`, oldest first (staging whatever is new first)."""
    after = parse_cursor(cursor)
    stage(db_session=db_session)
    db_session.commit()
    rows = db_session.scalars(
        select(CisExportRecord)
        .where(CisExportRecord.seq > after)
        .order_by(CisExportRecord.seq)
        .limit(limit + 1)
    ).all()
    page = rows[:limit]
    return ExportPage(
        records=[_as_dict(r) for r in page],
        next_cursor=str(page[-1].seq if page else after),
        more=len(rows) > limit,
    )


def records_since(*, db_session: Session, since: dt.datetime) -> list[CisExportRecord]:
    """Every staged record (after staging what is new) staged at or after `since`, in sequence."""
    stage(db_session=db_session)
    db_session.commit()
    return list(
        db_session.scalars(
            select(CisExportRecord).where(CisExportRecord.staged_at >= since).order_by(CisExportRecord.seq)
        )
    )


def write_files(records: Iterable[CisExportRecord], *, fmt: str, out: Path) -> list[Path]:
    """One file per message (`<message>.csv` or `.json`) in `out`; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    by_message: dict[str, list[dict[str, Any]]] = {m: [] for m in FIELDS}
    for row in records:
        by_message[row.message].append(_as_dict(row))
    written: list[Path] = []
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    for message, rows in by_message.items():
        if not rows:
            continue
        path = out / f"{message}-{stamp}.{fmt}"
        if fmt == "json":
            path.write_text(json.dumps({"message": message, "records": rows}, indent=2, default=str) + "\n")
        else:
            with path.open("w", newline="") as fh:
                writer = csv.DictWriter(
                    fh, fieldnames=["record_id", "message", "staged_at", *FIELDS[message][1:]]
                )
                writer.writeheader()
                writer.writerows(rows)
        written.append(path)
    return written
