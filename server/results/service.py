"""Field outcomes into typed results, each with a review item and its recommendation; decisions on them.

Two ways in, both idempotent by their source: the sync follower calls `record_from_tablet` for every
result document it applied (`tablet:<document id>`), the hand-held upload calls `record_from_handheld`
for every read and skip it stored (`handheld:<read key>`). A result is recorded once; recording it again
returns the first. Each result gets one review item (`recommend`); an advisor or supervisor decides it
(`decide`), and every decision is one audit event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts.codes import OrderStatus, OrderType, Role, UnableCode
from contracts.couch import ResultDoc
from contracts.forms import (
    EXPECTED_POSITION,
    FormFields,
    InvestigationFields,
    MeterTestFields,
    PaymentArrangementFields,
    RereadFields,
    ServiceFields,
)
from contracts.handheld import ReadRecord
from server.accounts.models import Account, Payment, PaymentArrangement, ServicePoint
from server.audit.service import record
from server.auth.service import Principal
from server.config import get_settings
from server.db import utcnow
from server.errors import ApiError, conflict, forbidden, not_found
from server.meters.intake import IntakeResult, current_accounts
from server.meters.models import Meter, MeterRead
from server.orders import lifecycle
from server.orders import service as orders
from server.orders.lifecycle import LifecycleError, Via
from server.orders.models import WorkOrder
from server.orders.schemas import OrderCreate
from server.results import billing
from server.results.billing import AdjustmentKind, Calculation
from server.results.kinds import NEXT_STEP, Action, NextStep, ResultKind, ReviewStatus
from server.results.models import FieldOutcome, ResultPhoto, ReviewItem
from server.results.schemas import (
    AccountHistory,
    Decision,
    DecisionKind,
    HistoryRead,
    PaymentRead,
    PhotoRead,
    ResultRead,
    ReviewItemDetail,
    ReviewItemRead,
)
from server.sync.couch import CouchAdmin, CouchError

OFFICE_ROLES = frozenset({Role.DISPATCHER, Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN})
TABLET = "tablet"
HANDHELD = "handheld"
ARRANGEMENT_OPEN_TYPES = frozenset({OrderType.SHUT_OFF_NONPAY.value, OrderType.NOTICE_DELIVERY.value})
PENDING_SHUTOFF = (OrderType.SHUT_OFF_NONPAY.value, OrderType.NOTICE_DELIVERY.value)


# ---------------------------------------------------------------- recording


def _existing(db_session: Session, key: str) -> FieldOutcome | None:
    return db_session.scalar(select(FieldOutcome).where(FieldOutcome.source_key == key))


def tablet_kind(order_type: OrderType, result: ResultDoc, fields: FormFields) -> ResultKind:
    """The kind of result a tablet completion is."""
    if isinstance(fields, PaymentArrangementFields):
        return ResultKind.PAYMENT_ARRANGEMENT
    if result.outcome == "unable_to_complete":
        return (
            ResultKind.THEFT_TAMPER if result.unable_code is UnableCode.TAMPER_CUT_LOCK else ResultKind.UNABLE
        )
    if order_type is OrderType.THEFT_INVESTIGATION:
        return ResultKind.THEFT_TAMPER
    by_form: dict[type[FormFields], ResultKind] = {
        RereadFields: ResultKind.REREAD,
        ServiceFields: ResultKind.SERVICE_CHANGE,
        MeterTestFields: ResultKind.METER_TEST,
        InvestigationFields: ResultKind.INVESTIGATION,
    }
    return by_form.get(type(fields), ResultKind.UNABLE)


def record_from_tablet(
    *,
    db_session: Session,
    doc_id: str,
    doc: dict[str, Any],
    result: ResultDoc,
    order: WorkOrder,
    fields: FormFields,
    intake: IntakeResult,
    database: str,
    technician_id: int | None,
) -> FieldOutcome:
    """The typed result of an applied tablet result document (once per document id), its photos to fetch,
    and its review item."""
    key = f"{TABLET}:{doc_id}"
    existing = _existing(db_session, key)
    if existing is not None:
        return existing
    order_type = OrderType(order.order_type)
    kind = tablet_kind(order_type, result, fields)
    outcome = FieldOutcome(
        source_key=key,
        source=TABLET,
        kind=kind.value,
        order_id=order.id,
        account_id=order.account_id,
        service_point_id=order.service_point_id,
        meter_id=order.meter_id,
        technician_id=technician_id,
        device_id=result.device_id,
        outcome=result.outcome,
        unable_code=str(result.unable_code or ""),
        occurred_at=result.completed_at,
        data={
            "order_type": order_type.value,
            "form": fields.model_dump(mode="json"),
            "readings": [r.model_dump(mode="json") for r in result.readings],
            "reads": _intake_facts(intake),
        },
        read_ids=intake.read_ids,
        notes=result.notes or "",
    )
    db_session.add(outcome)
    db_session.flush()
    stubs = doc.get("_attachments") or {}
    for photo in result.photos:
        stub = stubs.get(photo.attachment) or {}
        db_session.add(
            ResultPhoto(
                result_id=outcome.id,
                database=database,
                doc_id=doc_id,
                attachment=photo.attachment,
                caption=photo.caption or "",
                taken_at=photo.taken_at,
                content_type=str(stub.get("content_type", "")),
                length=stub.get("length"),
                digest=str(stub.get("digest", "")),
                fetch_error="" if stub else "no such attachment on the document",
            )
        )
    _review(db_session, outcome, fields=fields, intake=intake, order_type=order_type)
    return outcome


def _intake_facts(intake: IntakeResult) -> dict[str, Any]:
    return {
        "outcomes": [
            {
                "ref": o.ref,
                "status": o.status,
                "read_id": o.read_id,
                "validation": o.validation,
                "reason": o.reason,
            }
            for o in intake.outcomes
        ],
        "confirmed_read_ids": intake.confirmed_read_ids,
        "corrected_read_ids": intake.corrected_read_ids,
        "rereads_raised": intake.rereads_raised,
    }


def record_from_handheld(
    *,
    db_session: Session,
    reads: Sequence[ReadRecord],
    intake: IntakeResult,
    station: str,
) -> list[FieldOutcome]:
    """One typed result per hand-held read or skip of an upload (once per read key), each with its review
    item. `intake` is what `intake_reads` made of the reads with a reading, in the same order."""
    with_reading = [r for r in reads if r.reading is not None]
    by_read = dict(zip((r.idempotency_key for r in with_reading), intake.outcomes, strict=False))
    serials = {r.meter_serial for r in reads}
    meters = {m.serial: m for m in db_session.scalars(select(Meter).where(Meter.serial.in_(serials)))}
    accounts = current_accounts(
        db_session, {m.service_point_id for m in meters.values() if m.service_point_id is not None}
    )
    made: list[FieldOutcome] = []
    keys = [f"{HANDHELD}:{r.idempotency_key}" for r in reads]
    held = set(db_session.scalars(select(FieldOutcome.source_key).where(FieldOutcome.source_key.in_(keys))))
    for read in reads:
        key = f"{HANDHELD}:{read.idempotency_key}"
        if key in held:
            continue
        held.add(key)
        meter = meters.get(read.meter_serial)
        account = accounts.get(meter.service_point_id) if meter and meter.service_point_id else None
        taken = by_read.get(read.idempotency_key)
        if read.reading is not None and (taken is None or taken.status == "duplicate"):
            continue  # already held from another source: its result was recorded there
        tamper = (
            read.tamper or str(read.trouble_code) == "tamper" or read.skip_code is UnableCode.TAMPER_CUT_LOCK
        )
        kind = (
            ResultKind.THEFT_TAMPER
            if tamper
            else ResultKind.SKIP
            if read.reading is None
            else ResultKind.READ
        )
        outcome = FieldOutcome(
            source_key=key,
            source=HANDHELD,
            kind=kind.value,
            account_id=account.id if account else None,
            service_point_id=meter.service_point_id if meter else None,
            meter_id=meter.id if meter else None,
            device_id=read.device_id,
            outcome="skip" if read.reading is None else "read",
            unable_code=str(read.skip_code or ""),
            occurred_at=read.read_at,
            data={
                "record": read.model_dump(mode="json", exclude={"idempotency_key"}),
                "read": None
                if taken is None
                else {
                    "status": taken.status,
                    "read_id": taken.read_id,
                    "validation": taken.validation,
                    "reason": taken.reason,
                },
                "confirms": taken is not None
                and taken.read_id in _answer_ids(db_session, intake, "confirms"),
                "corrects": taken is not None
                and taken.read_id in _answer_ids(db_session, intake, "corrects"),
                "station": station,
            },
            read_ids=[taken.read_id] if taken is not None else [],
            notes=read.note,
        )
        db_session.add(outcome)
        db_session.flush()
        _review(db_session, outcome, fields=None, intake=intake, order_type=None)
        made.append(outcome)
    return made


def _answer_ids(db_session: Session, intake: IntakeResult, which: str) -> set[int]:
    """Read ids of this intake that confirm (or correct) a read in question."""
    questioned = intake.confirmed_read_ids if which == "confirms" else intake.corrected_read_ids
    if not questioned or not intake.read_ids:
        return set()
    column = MeterRead.confirms_read_id if which == "confirms" else MeterRead.corrects_read_id
    return set(
        db_session.scalars(
            select(MeterRead.id).where(MeterRead.id.in_(intake.read_ids), column.in_(questioned))
        )
    )


# ---------------------------------------------------------------- recommending


def _follows_estimate(db_session: Session, read_ids: Sequence[int]) -> bool:
    """Whether an actual read of these follows an estimated read on its register (a true-up is due)."""
    for read in db_session.scalars(select(MeterRead).where(MeterRead.id.in_(list(read_ids)))):
        if read.estimated or read.prev_read_id is None:
            continue
        prev = db_session.get(MeterRead, read.prev_read_id)
        if prev is not None and prev.estimated:
            return True
    return False


def _adjust(db_session: Session, outcome: FieldOutcome, kind: AdjustmentKind, why: str) -> dict[str, Any]:
    calc: Calculation = billing.calculate(db_session=db_session, kind=kind, result=outcome)
    if calc.refused:
        return {
            "action": Action.NONE,
            "adjustment_kind": kind.value,
            "working": calc.working,
            "summary": f"{why}; no adjustment: {calc.refused}",
        }
    amount = "" if calc.amount_cents is None else f" ({_money(calc.amount_cents)})"
    return {
        "action": Action.ADJUST,
        "adjustment_kind": kind.value,
        "amount_cents": calc.amount_cents,
        "working": calc.working,
        "summary": f"{why}: {kind.value.replace('_', ' ')}{amount}",
    }


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


def _dispatch(code: str, why: str) -> dict[str, Any]:
    known = {c.value: c for c in UnableCode}
    step, sentence = (
        NEXT_STEP.get(known[code], (NextStep.ESCALATE, why)) if code in known else (NextStep.ESCALATE, why)
    )
    if step is NextStep.NONE:
        return {"action": Action.NONE, "code": code, "next_step": step.value, "summary": sentence}
    return {
        "action": Action.DISPATCH,
        "code": code,
        "next_step": step.value,
        "summary": f"{code.replace('_', ' ')}: {sentence}",
    }


def recommendation(
    db_session: Session,
    outcome: FieldOutcome,
    *,
    fields: FormFields | None,
    intake: IntakeResult | None,
    order_type: OrderType | None,
) -> dict[str, Any]:
    """What the review item should recommend for this result (action, kind, amount, working, code, step)."""
    kind = ResultKind(outcome.kind)
    corrected = (
        bool(intake and intake.corrected_read_ids)
        if outcome.source == TABLET
        else bool(outcome.data.get("corrects"))
    )
    confirmed = (
        bool(intake and intake.confirmed_read_ids)
        if outcome.source == TABLET
        else bool(outcome.data.get("confirms"))
    )
    if kind is ResultKind.PAYMENT_ARRANGEMENT:
        assert isinstance(fields, PaymentArrangementFields)
        return {
            "action": Action.ARRANGEMENT,
            "code": outcome.unable_code,
            "working": {
                "down_payment_cents": fields.down_payment_cents,
                "instalment_cents": fields.instalment_cents,
                "instalments": fields.instalments,
                "total_cents": fields.total_cents,
                "first_due_date": fields.first_due_date.isoformat(),
                "last_due_date": fields.last_due_date.isoformat(),
            },
            "summary": (
                f"payment plan offered at the door: {_money(fields.down_payment_cents)} down and "
                f"{fields.instalments} x {_money(fields.instalment_cents)}; approving it pulls the pending shut-off"
            ),
        }
    if kind is ResultKind.THEFT_TAMPER:
        code = outcome.unable_code or "tamper"
        return {
            "action": Action.DISPATCH,
            "code": code,
            "next_step": NextStep.ESCALATE.value,
            "summary": f"{'theft investigation' if order_type is OrderType.THEFT_INVESTIGATION else 'tamper'} "
            "found: revenue protection decides the back-bill and the repair",
        }
    if kind in (ResultKind.UNABLE, ResultKind.SKIP):
        return _dispatch(outcome.unable_code, "could not complete")
    if corrected:
        return _adjust(
            db_session, outcome, AdjustmentKind.REREAD_CORRECTION, "the reread corrects the read in question"
        )
    if confirmed:
        return {"action": Action.NONE, "summary": "the reread confirms the read in question: the bill stands"}
    if kind is ResultKind.METER_TEST:
        assert isinstance(fields, MeterTestFields)
        if fields.passed:
            return {
                "action": Action.NONE,
                "working": {"billing_accuracy_pct": fields.billing_accuracy_pct},
                "summary": f"meter inside its limits (billing accuracy {fields.billing_accuracy_pct:g}%)",
            }
        side = "fast: refund" if fields.billing_accuracy_pct > 100 else "slow: back-bill"
        return _adjust(
            db_session,
            outcome,
            AdjustmentKind.METER_TEST,
            f"meter failed its test at {fields.billing_accuracy_pct:g}% ({side})",
        )
    if kind is ResultKind.INVESTIGATION:
        assert isinstance(fields, InvestigationFields)
        if order_type is OrderType.LEAK_INVESTIGATION and fields.leak_found:
            return _adjust(
                db_session, outcome, AdjustmentKind.LEAK_CREDIT, f"leak found ({fields.leak_location})"
            )
        if order_type is OrderType.LEAK_INVESTIGATION:
            return {"action": Action.NONE, "summary": "no leak found: the consumption stands"}
    if kind is ResultKind.SERVICE_CHANGE and isinstance(fields, ServiceFields) and order_type is not None:
        expected = EXPECTED_POSITION.get(order_type)
        if expected is not None and fields.curb_stop_position != expected:
            return {
                "action": Action.DISPATCH,
                "code": "curb_stop_position",
                "next_step": NextStep.ESCALATE.value,
                "summary": f"curb stop left {fields.curb_stop_position} (should be {expected}): {outcome.notes}",
            }
    if outcome.read_ids and _follows_estimate(db_session, outcome.read_ids):
        return _adjust(
            db_session, outcome, AdjustmentKind.ESTIMATE_TRUE_UP, "an actual read follows estimates"
        )
    if kind is ResultKind.READ:
        read = outcome.data.get("read") or {}
        if read.get("status") == "flagged" or read.get("validation") not in ("ok", "", None):
            return {
                "action": Action.NONE,
                "summary": f"read {read.get('validation')}: {read.get('reason', '')}"[:400],
            }
        return {"action": Action.NONE, "summary": "read inside its limits", "auto_close": True}
    what = {
        ResultKind.SERVICE_CHANGE: "service change recorded",
        ResultKind.REREAD: "reading recorded",
        ResultKind.INVESTIGATION: "investigation recorded",
    }.get(kind, "recorded")
    return {"action": Action.NONE, "summary": f"{what}: nothing to adjust"}


def _review(
    db_session: Session,
    outcome: FieldOutcome,
    *,
    fields: FormFields | None,
    intake: IntakeResult | None,
    order_type: OrderType | None,
) -> ReviewItem:
    rec = recommendation(db_session, outcome, fields=fields, intake=intake, order_type=order_type)
    item = ReviewItem(
        result_id=outcome.id,
        kind=outcome.kind,
        action=Action(rec["action"]).value,
        adjustment_kind=rec.get("adjustment_kind", ""),
        amount_cents=rec.get("amount_cents"),
        working=rec.get("working", {}),
        code=rec.get("code", ""),
        next_step=rec.get("next_step", ""),
        summary=rec["summary"],
        status=(ReviewStatus.AUTO_CLOSED if rec.get("auto_close") else ReviewStatus.OPEN).value,
    )
    db_session.add(item)
    db_session.flush()
    return item


# ---------------------------------------------------------------- deciding


def _audit(
    db_session: Session, item: ReviewItem, actor: str, before: dict[str, Any], detail: dict[str, Any]
) -> None:
    record(
        db_session=db_session,
        actor=actor,
        action="review_decision",
        entity_type="review_item",
        entity_id=item.id,
        detail={"before": before, "after": {"status": item.status}, **detail},
    )


def decide(*, db_session: Session, item: ReviewItem, body: Decision, actor: str) -> ReviewItem:
    """Carry out an advisor's decision on an open review item (audited); 409 when it is not open."""
    if item.status != ReviewStatus.OPEN.value:
        raise conflict(
            f"review item {item.id} is {item.status}; only an open item can be decided", code="review_closed"
        )
    result = db_session.get(FieldOutcome, item.result_id)
    assert result is not None
    before = {
        "status": item.status,
        "action": item.action,
        "amount_cents": item.amount_cents,
        "adjustment_kind": item.adjustment_kind,
    }
    decision = body.decision
    detail: dict[str, Any] = {"decision": decision.value, "reason": body.reason}
    if decision is DecisionKind.ACCEPT:
        action = Action(item.action)
        if action is Action.ADJUST:
            if item.amount_cents is None:
                raise conflict(
                    "the recommended amount was not computed; change it with an amount and a reason",
                    code="amount_unknown",
                )
            item.adjustment_id = billing.propose(
                db_session=db_session,
                result=result,
                kind=item.adjustment_kind,
                actor=actor,
                reason=body.reason or item.summary,
            )
            detail["adjustment_id"] = item.adjustment_id
            item.status = ReviewStatus.ACCEPTED.value
        elif action is Action.DISPATCH:
            _send_to_dispatch(db_session, item, result, body, actor)
            detail["order_id"] = item.new_order_id
        elif action is Action.ARRANGEMENT:
            detail.update(_approve_arrangement(db_session, item, result, actor))
            item.status = ReviewStatus.ACCEPTED.value
        else:
            item.status = ReviewStatus.ACCEPTED.value
    elif decision is DecisionKind.CHANGE:
        assert body.amount_cents is not None
        kind = body.adjustment_kind or item.adjustment_kind
        if not kind:
            raise ApiError(
                422,
                "invalid_request",
                "adjustment_kind: needed to change an item that recommends no adjustment",
                fields=[{"field": "adjustment_kind", "message": "required for this item"}],
            )
        item.adjustment_id = billing.propose(
            db_session=db_session,
            result=result,
            kind=kind,
            amount_cents=body.amount_cents,
            actor=actor,
            reason=body.reason,
        )
        item.adjustment_kind, item.amount_cents = kind, body.amount_cents
        item.status = ReviewStatus.CHANGED.value
        detail.update(
            {"adjustment_id": item.adjustment_id, "amount_cents": body.amount_cents, "adjustment_kind": kind}
        )
    elif decision is DecisionKind.DISMISS:
        item.status = ReviewStatus.DISMISSED.value
    else:
        _send_to_dispatch(db_session, item, result, body, actor)
        detail["order_id"] = item.new_order_id
    item.decided_by, item.decided_at, item.decision_reason = actor, utcnow(), body.reason
    _audit(db_session, item, actor, before, detail)
    db_session.flush()
    return item


def _send_to_dispatch(
    db_session: Session, item: ReviewItem, result: FieldOutcome, body: Decision, actor: str
) -> None:
    """Back to dispatch: the original order when it is open again (edited), else a new order (created)."""
    why = f"review {item.id}: {item.summary}" + (f" - {body.reason}" if body.reason else "")
    order = db_session.get(WorkOrder, result.order_id) if result.order_id else None
    window = {"window_start": body.window_start, "window_end": body.window_end} if body.window_start else {}
    if order is not None and order.status == OrderStatus.NEW.value:
        changes: dict[str, Any] = {
            **window,
            "notes": (f"{order.notes}\n{why}" if order.notes else why)[:4000],
        }
        if body.scheduled_date is not None:
            changes["scheduled_date"] = body.scheduled_date
        try:
            lifecycle.edit(
                db_session=db_session,
                order=order,
                changes=changes,
                actor=actor,
                via=Via.REVIEW,
                reason=why[:500],
            )
        except LifecycleError as exc:
            raise conflict(exc.reason) from None
        item.new_order_id = order.id
    else:
        if result.service_point_id is None:
            raise conflict("the result names no premise to send a visit to")
        if result.kind == ResultKind.THEFT_TAMPER.value:
            order_type = OrderType.THEFT_INVESTIGATION
        elif order is not None:
            order_type = OrderType(order.order_type)
        else:
            order_type = OrderType.REREAD  # a hand-held skip: read it on a visit of its own
        new, _ = orders.create(
            db_session=db_session,
            body=OrderCreate(
                order_type=body.order_type or order_type,
                service_point_id=result.service_point_id,
                account_id=result.account_id,
                meter_id=result.meter_id,
                scheduled_date=body.scheduled_date,
                window_start=body.window_start,
                window_end=body.window_end,
                reason=why[:2000],
            ),
            actor=actor,
            idempotency_key=f"review:{item.id}",
            rule="review",
        )
        item.new_order_id = new.id
    item.status = ReviewStatus.DISPATCHED.value


def _approve_arrangement(
    db_session: Session, item: ReviewItem, result: FieldOutcome, actor: str
) -> dict[str, Any]:
    """Make the payment arrangement the customer offered and pull the account's pending shut-off orders."""
    if result.account_id is None:
        raise conflict("the result names no account to make the arrangement on")
    form = PaymentArrangementFields.model_validate(result.data["form"])
    arrangement = PaymentArrangement(
        cis_arrangement_id=f"field-{result.id}",
        account_id=result.account_id,
        status="active",
        made_date=result.occurred_at.date(),
        end_date=form.last_due_date,
        total_cents=form.total_cents,
        down_payment_cents=form.down_payment_cents,
    )
    db_session.add(arrangement)
    db_session.flush()
    item.arrangement_id = arrangement.id
    pulled: list[int] = []
    pending = db_session.scalars(
        select(WorkOrder).where(
            WorkOrder.account_id == result.account_id,
            WorkOrder.order_type.in_(PENDING_SHUTOFF),
            WorkOrder.status.not_in([s.value for s in (OrderStatus.COMPLETED, OrderStatus.CANCELLED)]),
        )
    )
    for order in pending:
        if order.status == OrderStatus.UNABLE_TO_COMPLETE.value:
            continue  # waits for the follower to send it back; the next generation run sees the arrangement
        lifecycle.cancel(
            db_session=db_session,
            order=order,
            actor=actor,
            via=Via.REVIEW,
            reason=f"payment arrangement {arrangement.cis_arrangement_id} approved (review {item.id})",
        )
        pulled.append(order.id)
    return {"arrangement_id": arrangement.id, "pulled_order_ids": pulled}


# ---------------------------------------------------------------- reading


def queue(
    *,
    db_session: Session,
    status: str | None = ReviewStatus.OPEN.value,
    kind: str | None = None,
    action: str | None = None,
    route: str | None = None,
    min_age_days: float | None = None,
    max_age_days: float | None = None,
    min_amount_cents: int | None = None,
    max_amount_cents: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[ReviewItemRead], int]:
    """One page of review items, oldest first, with the filters the queue offers; and the total."""
    now = utcnow()
    query = (
        select(ReviewItem, FieldOutcome.account_id, ServicePoint.route)
        .join(FieldOutcome, FieldOutcome.id == ReviewItem.result_id)
        .outerjoin(ServicePoint, ServicePoint.id == FieldOutcome.service_point_id)
    )
    if status:
        query = query.where(ReviewItem.status == status)
    if kind:
        query = query.where(ReviewItem.kind == kind)
    if action:
        query = query.where(ReviewItem.action == action)
    if route:
        query = query.where(ServicePoint.route == route)
    if min_age_days is not None:
        query = query.where(ReviewItem.created_at <= now - dt.timedelta(days=min_age_days))
    if max_age_days is not None:
        query = query.where(ReviewItem.created_at >= now - dt.timedelta(days=max_age_days))
    # Amounts filter by size: a credit of $600 is as large as a charge of $600.
    if min_amount_cents is not None:
        query = query.where(func.abs(ReviewItem.amount_cents) >= min_amount_cents)
    if max_amount_cents is not None:
        query = query.where(func.abs(ReviewItem.amount_cents) <= max_amount_cents)
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db_session.execute(
        query.order_by(ReviewItem.created_at, ReviewItem.id).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return [_item_read(item, account_id, sp_route or "", now) for item, account_id, sp_route in rows], total


def _item_read(item: ReviewItem, account_id: int | None, route: str, now: dt.datetime) -> ReviewItemRead:
    read = ReviewItemRead.model_validate(item)
    read.account_id, read.route = account_id, route
    read.age_days = round((now - item.created_at).total_seconds() / 86400, 2)
    return read


def get_item(*, db_session: Session, item_id: int) -> ReviewItem:
    """The review item, or 404."""
    item = db_session.get(ReviewItem, item_id)
    if item is None:
        raise not_found("review item", item_id)
    return item


def photo_reads(db_session: Session, result_id: int) -> list[PhotoRead]:
    """The result's photos with the URL each is served from."""
    photos = db_session.scalars(
        select(ResultPhoto).where(ResultPhoto.result_id == result_id).order_by(ResultPhoto.id)
    )
    return [
        PhotoRead(
            id=p.id,
            caption=p.caption,
            taken_at=p.taken_at,
            content_type=p.content_type,
            length=p.length,
            available=p.content is not None,
            url=f"/api/results/photos/{p.id}",
        )
        for p in photos
    ]


def item_detail(*, db_session: Session, item: ReviewItem) -> ReviewItemDetail:
    """The item with its result, photos, working, and the account's consumption, bills and payments."""
    result = db_session.get(FieldOutcome, item.result_id)
    assert result is not None
    route = ""
    if result.service_point_id is not None:
        sp = db_session.get(ServicePoint, result.service_point_id)
        route = sp.route if sp is not None else ""
    base = _item_read(item, result.account_id, route, utcnow())
    return ReviewItemDetail(
        **base.model_dump(),
        working=item.working,
        result=ResultRead.model_validate(result),
        photos=photo_reads(db_session, result.id),
        history=account_history(db_session=db_session, account_id=result.account_id)
        if result.account_id is not None
        else None,
    )


def account_history(*, db_session: Session, account_id: int) -> AccountHistory:
    """Reads (with validation) of the account's premise meters, bills and payments, oldest first."""
    account = db_session.get(Account, account_id)
    if account is None:
        raise not_found("account", account_id)
    meters = {
        m.id: m
        for m in db_session.scalars(select(Meter).where(Meter.service_point_id == account.service_point_id))
    }
    # The premise's reads while this account held it (a previous occupant's use is not this customer's).
    query = select(MeterRead).where(MeterRead.meter_id.in_(list(meters)))
    zone = ZoneInfo(get_settings().timezone)
    if account.opened_date is not None:
        opened = dt.datetime.combine(account.opened_date, dt.time(), tzinfo=zone)
        query = query.where(MeterRead.read_at >= opened)
    if account.closed_date is not None:
        closed = dt.datetime.combine(account.closed_date + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        query = query.where(MeterRead.read_at < closed)
    reads = db_session.scalars(query.order_by(MeterRead.read_at, MeterRead.id)).all() if meters else []
    history = [
        HistoryRead(
            read_id=r.id,
            meter_id=r.meter_id,
            read_at=r.read_at,
            reading=float(r.reading),
            use=r.use,
            unit=meters[r.meter_id].unit,
            source=r.source,
            estimated=r.estimated,
            validation=r.validation,
            validation_reason=r.validation_reason,
            on_chain=r.duplicate_of_id is None and r.confirms_read_id is None and r.superseded_by_id is None,
        )
        for r in reads
    ]
    payments = [
        PaymentRead(paid_at=p.paid_at, amount_cents=p.amount_cents, method=p.method)
        for p in db_session.scalars(
            select(Payment).where(Payment.account_id == account_id).order_by(Payment.paid_at)
        )
    ]
    bills = billing.bills_for(db_session=db_session, account_id=account_id)
    series: dict[str, list[list[Any]]] = {
        "use": [[h.read_at.isoformat(), h.use] for h in history if h.on_chain and h.use is not None],
        "payments_cents": [[p.paid_at.isoformat(), p.amount_cents] for p in payments],
        "bills_cents": [[str(b.get("period_end")), b.get("total_cents")] for b in bills],
    }
    return AccountHistory(account_id=account_id, reads=history, bills=bills, payments=payments, series=series)


# ---------------------------------------------------------------- photos


def fetch_photos(*, db_session: Session, admin: CouchAdmin, limit: int = 50) -> int:
    """Copy photos not yet fetched from their CSFR database into the server (a failure is kept and retried;
    one the database no longer has is not asked for again)."""
    pending = db_session.scalars(
        select(ResultPhoto)
        .where(ResultPhoto.content.is_(None), ResultPhoto.digest != "")
        .order_by(ResultPhoto.id)
        .limit(limit)
    ).all()
    fetched = 0
    for photo in pending:
        try:
            content, content_type = admin.get_attachment(photo.database, photo.doc_id, photo.attachment)
        except (CouchError, OSError) as exc:
            photo.fetch_error = str(exc)[:200]
            if isinstance(exc, CouchError) and exc.status == 404:
                photo.digest = ""  # gone from the tablet's database: stop asking, keep the reason
            continue
        photo.content, photo.fetched_at, photo.fetch_error = content, utcnow(), ""
        photo.content_type = photo.content_type or content_type
        photo.length = len(content)
        fetched += 1
    db_session.commit()
    return fetched


def photo_for(*, db_session: Session, photo_id: int, principal: Principal) -> ResultPhoto:
    """The photo for an office role, or for the CSFR who took it; 404 / 403 otherwise."""
    photo = db_session.get(ResultPhoto, photo_id)
    if photo is None:
        raise not_found("photo", photo_id)
    if principal.role is Role.CSFR:
        result = db_session.get(FieldOutcome, photo.result_id)
        if (
            result is None
            or principal.technician_id is None
            or result.technician_id != principal.technician_id
        ):
            raise forbidden("a CSFR may see only the photos they took")
    elif principal.role not in OFFICE_ROLES:
        raise forbidden(f"a {principal.role.value} may not see photos")
    if photo.content is None:
        raise ApiError(404, "not_fetched", f"photo {photo_id} has not been copied from the tablet yet")
    return photo


def queue_row(*, db_session: Session, item: ReviewItem) -> ReviewItemRead:
    """The item as the queue lists it."""
    result = db_session.get(FieldOutcome, item.result_id)
    sp = db_session.get(ServicePoint, result.service_point_id) if result and result.service_point_id else None
    return _item_read(item, result.account_id if result else None, sp.route if sp else "", utcnow())
