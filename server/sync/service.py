"""Provisioning, publishing orders to the CSFR databases, and following their results back.

One CouchDB database per CSFR (`csfr-<code>`), readable only by that CSFR's CouchDB user and the
server. The server writes `order:<id>` documents; the tablet writes `result:` and `event:` documents
once (a validate_doc_update design document enforces this). The publisher is driven by the order's
version column: whatever changed since the last published version is written again. The follower
reads each database's `_changes` from a checkpoint kept in SQL, in the same transaction as what it
ingests, and ingests each document id at most once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.codes import OrderStatus, OrderType, ReadSource, UnableCode
from contracts.couch import (
    EVENT_PREFIX,
    ORDER_PREFIX,
    RESULT_PREFIX,
    EventDoc,
    GeoPoint,
    LastRead,
    MeterFacts,
    OrderDoc,
    ResultDoc,
    ServicePointFacts,
    TimeWindow,
)
from contracts.forms import FormMismatch, check_result
from server.accounts.models import Account, Customer, ServicePoint
from server.db import utcnow
from server.meters.intake import ReadIn, ReadIntakeError, expected_reads, intake_reads
from server.meters.models import Meter
from server.orders import lifecycle
from server.orders.lifecycle import LifecycleError, Via
from server.orders.models import WorkOrder
from server.results import service as results
from server.sync.couch import CouchAdmin, CouchError
from server.sync.models import FieldResult, OrderPublication, SyncCheckpoint
from server.technicians.models import Technician

log = logging.getLogger("curbstop.sync")

# Order statuses a tablet should hold a document for (the rest were never dispatched).
PUBLISHABLE = {s.value for s in lifecycle.ON_TABLET}


def database_for(tech: Technician) -> str:
    """The CouchDB database (and user) of a CSFR: `csfr-<code>` in CouchDB's allowed characters."""
    return "csfr-" + re.sub(r"[^a-z0-9_-]", "-", tech.code.lower())


def couch_password(username: str, secret: str) -> str:
    """The CSFR's CouchDB password, derived from the server secret (nothing to store; rotates with it)."""
    return hmac.new(secret.encode(), f"couchdb:{username}".encode(), hashlib.sha256).hexdigest()[:32]


def provision(*, admin: CouchAdmin, tech: Technician, secret: str) -> str:
    """Create the CSFR's database, user, `_security` and validation; safe to repeat. Returns the database."""
    db = database_for(tech)
    admin.ensure_db(db)
    admin.put_user(db, couch_password(db, secret))
    admin.set_security(db, members=[db])
    admin.ensure_design(db)
    return db


def provision_all(*, db_session: Session, admin: CouchAdmin, secret: str) -> list[str]:
    """Provision every active technician."""
    techs = db_session.scalars(
        select(Technician).where(Technician.active.is_(True)).order_by(Technician.code)
    )
    return [provision(admin=admin, tech=t, secret=secret) for t in techs]


def deprovision(*, admin: CouchAdmin, tech: Technician) -> bool:
    """Remove the CSFR's CouchDB user so their tablet can no longer read or write (the database stays).

    Returns False when there was no user. `provision` (the next sync session once enabled) recreates it.
    """
    doc_id = f"org.couchdb.user:{database_for(tech)}"
    current = admin.get_doc("_users", doc_id)
    if current is None:
        return False
    admin.put_doc("_users", {"_id": doc_id, "_rev": current["_rev"], "_deleted": True})
    return True


def deprovision_user(*, db_session: Session, admin: CouchAdmin | None, user_id: int) -> str:
    """Remove the CouchDB user of the technician linked to a (disabled) user; says what happened.

    One of "removed", "none" (no CouchDB user), "no technician", "sync off" (no COUCHDB_URL) or
    "failed: <reason>" (CouchDB unreachable: disabling again retries).
    """
    tech = db_session.scalar(select(Technician).where(Technician.user_id == user_id))
    if tech is None:
        return "no technician"
    if admin is None:
        return "sync off"
    try:
        return "removed" if deprovision(admin=admin, tech=tech) else "none"
    except (CouchError, httpx.HTTPError) as exc:
        log.warning("could not remove the CouchDB user of %s: %s", tech.code, exc)
        return f"failed: {exc}"


def order_document(
    *,
    db_session: Session,
    order: WorkOrder,
    tech: Technician,
    status: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The `order:<id>` document for a CSFR: what they need in the field, nothing about money."""
    sp = db_session.get(ServicePoint, order.service_point_id)
    assert sp is not None
    account = db_session.get(Account, order.account_id) if order.account_id else None
    customer = db_session.get(Customer, account.customer_id) if account else None
    meters = []
    meter_rows = (
        [db_session.get(Meter, order.meter_id)]
        if order.meter_id
        else list(
            db_session.scalars(
                select(Meter).where(Meter.service_point_id == sp.id, Meter.status == "in_service")
            )
        )
    )
    # Limits from the same derivation and classifier that validate the reading when it comes back
    # (server.meters.intake.expected_reads), for a read taken when the CSFR is due there.
    due_at = order.planned_arrival_at or order.window_start or utcnow()
    expected = expected_reads(
        db_session=db_session, meter_ids=[m.id for m in meter_rows if m is not None], at=due_at
    )
    for meter in meter_rows:
        if meter is None:
            continue
        facts = expected[meter.id]
        meters.append(
            MeterFacts(
                meter_id=str(meter.id),
                serial_number=meter.serial,
                size_in=meter.size,
                dials=meter.dials,
                decimals=meter.decimals,
                multiplier=meter.multiplier,
                unit=meter.unit,
                location=sp.access_notes or None,
                last_read=facts.previous,
                last_read_at=facts.previous_at,
                last_reads=[LastRead(value=value, read_at=at) for at, value in facts.last_reads],
                expected_low=facts.low,
                expected_high=facts.high,
            )
        )
    window = (
        TimeWindow(start_at=order.window_start, end_at=order.window_end)
        if order.window_start and order.window_end
        else None
    )
    doc = OrderDoc(
        order_id=str(order.id),
        order_type=order.order_type,
        status=status or order.status,
        priority=order.priority,
        csfr_id=tech.code,
        window=window,
        planned_arrival_at=order.planned_arrival_at,
        sequence=order.route_sequence,
        account_id=account.account_number if account else None,
        customer_name=customer.name if customer else None,
        service_point=ServicePointFacts(
            service_point_id=sp.cis_service_point_id,
            address=sp.address,
            position=GeoPoint(lat=sp.lat, lon=sp.lon),
        ),
        meters=meters,
        access_notes=sp.access_notes or None,
        hazards=list(sp.hazards),
        reason=reason if reason is not None else (order.reason or None),
        version=order.version,
        published_at=utcnow(),
    )
    return doc.to_couch()


def _write(admin: CouchAdmin, db: str, body: dict[str, Any], rev: str) -> str:
    """Write a server-owned document, adopting CouchDB's current revision if ours is stale."""
    if rev:
        body["_rev"] = rev
    try:
        return admin.put_doc(db, body)
    except CouchError as exc:
        if exc.status != 409:
            raise
        current = admin.get_doc(db, body["_id"])
        body["_rev"] = current["_rev"] if current else None
        if body["_rev"] is None:
            del body["_rev"]
        return admin.put_doc(db, body)


@dataclass
class PublishResult:
    """What a publisher pass wrote."""

    published: int = 0
    withdrawn: int = 0
    errors: list[str] = field(default_factory=list)


def publish_pending(*, db_session: Session, admin: CouchAdmin, limit: int = 1000) -> PublishResult:
    """Write every order whose published document is missing or older than the order, and withdraw
    orders from CSFRs they were taken from. Commits as it goes; a CouchDB error leaves the rest pending."""
    result = PublishResult()
    pubs: dict[tuple[int, str], OrderPublication] = {
        (p.order_id, p.database): p
        for p in db_session.scalars(
            select(OrderPublication)
            .join(WorkOrder, WorkOrder.id == OrderPublication.order_id)
            .where(OrderPublication.order_version != WorkOrder.version)
        )
    }
    rows = db_session.execute(
        select(WorkOrder, Technician)
        .join(Technician, Technician.id == WorkOrder.technician_id)
        .where(WorkOrder.status.in_(PUBLISHABLE))
        .outerjoin(OrderPublication, OrderPublication.order_id == WorkOrder.id)
        .where((OrderPublication.order_id.is_(None)) | (OrderPublication.order_version != WorkOrder.version))
        .order_by(WorkOrder.id)
        .limit(limit)
    ).all()
    seen: set[int] = set()
    for order, tech in rows:
        if order.id in seen:
            continue
        seen.add(order.id)
        db = database_for(tech)
        pub = pubs.get((order.id, db)) or db_session.get(OrderPublication, (order.id, db))
        try:
            rev = _write(
                admin,
                db,
                order_document(db_session=db_session, order=order, tech=tech),
                pub.doc_rev if pub else "",
            )
        except (CouchError, OSError) as exc:
            result.errors.append(f"order {order.id} -> {db}: {exc}")
            continue
        if pub is None:
            pub = OrderPublication(order_id=order.id, database=db)
            db_session.add(pub)
        pub.order_version, pub.doc_rev, pub.withdrawn, pub.published_at = order.version, rev, False, utcnow()
        result.published += 1
        db_session.commit()
    # Withdraw from every other database the order was published to (reassigned, or back to dispatch).
    stale = db_session.execute(
        select(OrderPublication, WorkOrder)
        .join(WorkOrder, WorkOrder.id == OrderPublication.order_id)
        .where(OrderPublication.withdrawn.is_(False), OrderPublication.order_version != WorkOrder.version)
    ).all()
    techs = {t.id: t for t in db_session.scalars(select(Technician))}
    for pub, order in stale:
        owner = techs.get(order.technician_id) if order.technician_id else None
        if owner is not None and database_for(owner) == pub.database and order.status in PUBLISHABLE:
            continue
        previous = next((t for t in techs.values() if database_for(t) == pub.database), None)
        if previous is None:
            continue
        why = "reassigned to another CSFR" if owner is not None else "taken back by dispatch"
        try:
            body = order_document(
                db_session=db_session,
                order=order,
                tech=previous,
                status=lifecycle.WITHDRAWN_ON_TABLET.value,
                reason=why,
            )
            rev = _write(admin, pub.database, body, pub.doc_rev)
        except (CouchError, OSError) as exc:
            result.errors.append(f"withdraw order {order.id} from {pub.database}: {exc}")
            continue
        pub.doc_rev, pub.order_version, pub.withdrawn, pub.published_at = rev, order.version, True, utcnow()
        result.withdrawn += 1
        db_session.commit()
    return result


@dataclass
class FollowResult:
    """What a follower pass ingested."""

    results: int = 0
    events: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def _move(
    db_session: Session,
    order: WorkOrder,
    target: OrderStatus,
    actor: str,
    reason: str,
    *,
    at: dt.datetime | None = None,
    unable_code: UnableCode | None = None,
) -> str | None:
    """Move the order through the lifecycle; None when it moved (or was already there), else why not."""
    if order.status == target.value:
        return None
    try:
        lifecycle.move(
            db_session=db_session,
            order=order,
            to=target,
            actor=actor,
            via=Via.SYNC,
            reason=reason,
            at=at,
            unable_code=unable_code,
        )
    except LifecycleError as exc:
        return exc.reason
    return None


def _ingest_result(
    db_session: Session, doc_id: str, doc: dict[str, Any], tech: Technician, actor: str
) -> str:
    result = ResultDoc.from_couch(doc)
    order = db_session.get(WorkOrder, int(result.order_id))
    if order is None:
        return "rejected: no such order"
    if order.technician_id != tech.id:
        return f"rejected: order {order.id} is not assigned to {tech.code}"
    if order.status == OrderStatus.CANCELLED.value:
        return "kept for review: the order was cancelled before the result arrived"
    # A result the lifecycle cannot take (the order went back to dispatch, or was already closed) is
    # kept with the reason and applies nothing: not its readings, not its outcome.
    target = OrderStatus.COMPLETED if result.outcome == "completed" else OrderStatus.UNABLE_TO_COMPLETE
    if order.status != target.value:
        try:
            lifecycle.check_move(db_session=db_session, order=order, to=target)
        except LifecycleError as exc:
            return f"kept: {exc.reason}"
    # The fields must be the completion form of the order's type (contracts.forms): nothing is applied else.
    try:
        fields = check_result(order_type=OrderType(order.order_type), result=result)
    except FormMismatch as exc:
        return f"kept for review: {exc}"
    # Every reading through the one intake (duplicates, the reread it answers, the one classifier).
    # A reading it cannot take (an unknown meter, a value the register cannot show) keeps the whole
    # result for review: nothing of it is applied, and the outcome says why.
    try:
        intake = intake_reads(
            db_session=db_session,
            reads=[
                ReadIn(
                    meter_id=int(reading.meter_id) if reading.meter_id.isdigit() else None,
                    meter_serial=None if reading.meter_id.isdigit() else reading.meter_id,
                    read_at=reading.read_at,
                    reading=reading.value,
                    unit=reading.unit.value,
                    read_code=str(reading.code),
                    idempotency_key=f"field:{doc_id}:{i}",
                    order_id=order.id,
                    ref=f"readings[{i}]",
                )
                for i, reading in enumerate(result.readings)
            ],
            source=ReadSource.FIELD,
            actor=actor,
        )
    except ReadIntakeError as exc:
        return f"kept for review: {exc}"
    order.outcome = {
        **order.outcome,
        "result_doc": doc_id,
        "outcome": result.outcome,
        "fields": result.fields,
        "notes": result.notes,
        "readings": len(result.readings),
        "photos": len(result.photos),
        "unable_code": str(result.unable_code) if result.unable_code else None,
        "completed_at": result.completed_at.isoformat(),
    }
    why_not = _move(
        db_session,
        order,
        target,
        actor,
        f"field result {doc_id}",
        at=result.completed_at,
        unable_code=result.unable_code,
    )
    if why_not is not None:
        return f"kept: {why_not}"
    if target is OrderStatus.UNABLE_TO_COMPLETE:
        # Back to dispatch: re-plannable, unassigned, with the reason on the order.
        why = f"unable to complete: {result.unable_code}" + (f" - {result.notes}" if result.notes else "")
        lifecycle.return_to_dispatch(
            db_session=db_session, order=order, actor=actor, via=Via.SYNC, reason=why
        )
    # The one typed record of this outcome, its photos to copy and its review item (server/results).
    results.record_from_tablet(
        db_session=db_session,
        doc_id=doc_id,
        doc=doc,
        result=result,
        order=order,
        fields=fields,
        intake=intake,
        database=database_for(tech),
        technician_id=tech.id,
    )
    return f"order {order.id} {target.value}"


def _ingest_event(db_session: Session, doc: dict[str, Any], tech: Technician, actor: str) -> str:
    event = EventDoc.from_couch(doc)
    order = db_session.get(WorkOrder, int(event.order_id))
    if order is None or order.technician_id != tech.id:
        return "rejected: not this CSFR's order"
    target = {"en_route": OrderStatus.EN_ROUTE, "on_site": OrderStatus.ON_SITE}.get(event.kind)
    if target is None:
        return f"noted: {event.kind}"
    why_not = _move(db_session, order, target, actor, f"tablet event at {event.at.isoformat()}")
    if why_not is None:
        if event.gps is not None:
            order.outcome = {**order.outcome, f"{event.kind}_gps": event.gps.model_dump()}
        return f"order {order.id} {target.value}"
    return f"ignored: {why_not}"


def follow(
    *, db_session: Session, admin: CouchAdmin, techs: list[Technician] | None = None, batch: int = 200
) -> FollowResult:
    """Read every CSFR database's new changes and ingest results and events exactly once."""
    out = FollowResult()
    techs = (
        techs
        if techs is not None
        else list(db_session.scalars(select(Technician).where(Technician.active.is_(True))))
    )
    for tech in techs:
        db = database_for(tech)
        actor = f"sync:{db}"
        while True:
            checkpoint = db_session.get(SyncCheckpoint, db)
            try:
                rows, last_seq = admin.changes(
                    db, since=checkpoint.last_seq if checkpoint else None, limit=batch
                )
            except (CouchError, OSError) as exc:
                out.errors.append(f"{db}: {exc}")
                break
            for row in rows:
                doc_id = row["id"]
                doc = row.get("doc") or {}
                if row.get("deleted") or not doc_id.startswith((RESULT_PREFIX, EVENT_PREFIX)):
                    continue
                if db_session.get(FieldResult, doc_id) is not None:
                    out.skipped += 1
                    continue
                kind = "result" if doc_id.startswith(RESULT_PREFIX) else "event"
                try:
                    with db_session.begin_nested():
                        outcome = (
                            _ingest_result(db_session, doc_id, doc, tech, actor)
                            if kind == "result"
                            else _ingest_event(db_session, doc, tech, actor)
                        )
                except (ValidationError, ValueError) as exc:
                    outcome = f"rejected: not a valid {kind} document: {str(exc).splitlines()[0]}"
                order_ref = str(doc.get("order_id", ""))
                order_id = (
                    int(order_ref)
                    if order_ref.isdigit() and db_session.get(WorkOrder, int(order_ref))
                    else None
                )
                db_session.add(
                    FieldResult(
                        doc_id=doc_id,
                        kind=kind,
                        order_id=order_id,
                        database=db,
                        payload={k: v for k, v in doc.items() if k != "_attachments"},
                        outcome=outcome[:200],
                    )
                )
                if kind == "result":
                    out.results += 1
                else:
                    out.events += 1
            # The checkpoint moves in the same transaction as what was ingested: a crash replays, never skips.
            if checkpoint is None:
                checkpoint = SyncCheckpoint(database=db)
                db_session.add(checkpoint)
            checkpoint.last_seq, checkpoint.updated_at = last_seq, utcnow()
            db_session.commit()
            if len(rows) < batch:
                break
    return out


def is_order_doc(doc_id: str) -> bool:
    """Whether a document id is a server-written order."""
    return doc_id.startswith(ORDER_PREFIX)


def session_for(*, tech: Technician, admin: CouchAdmin, secret: str) -> dict[str, Any]:
    """What a tablet needs to replicate: URL, database and CouchDB credentials (provisioning first)."""
    db = provision(admin=admin, tech=tech, secret=secret)
    return {
        "couchdb_url": admin.config.public_url(),
        "database": db,
        "username": db,
        "password": couch_password(db, secret),
        "technician_id": tech.id,
        "technician_code": tech.code,
    }
