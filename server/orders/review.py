"""What people do around generation: run it as a job, review the day's shut-off batch, mark
no-shut-off days, take meter-test requests, and ask why an account did or did not get an order."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.codes import OrderStatus
from server.accounts.models import Account
from server.audit.service import record
from server.config import get_settings
from server.db import utcnow
from server.errors import ApiError, conflict, not_found
from server.jobs.models import Job
from server.jobs.service import Report, handler
from server.meters.models import Meter
from server.orders import generation
from server.orders.models import GenerationDecision, GenerationRun, MeterTestRequest, ShutoffBatch, WorkOrder
from server.orders.policy import Policy, current_policy
from server.orders.rules import reads
from server.orders.rules.base import Outcome, Rule


def local_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def local_today() -> dt.date:
    """Today in the utility's time zone (a run is for a local day)."""
    return dt.datetime.now(local_zone()).date()


@handler("orders.generate")
def generate_job(*, db_session: Session, job: Job, report: Report) -> dict[str, Any]:
    """Job handler: run the rules (params: date, rules, dry_run)."""
    result = generation.run(
        db_session,
        policy=current_policy(),
        run_date=dt.date.fromisoformat(job.params["date"]),
        zone=local_zone(),
        rules=generation.parse_rules(job.params.get("rules")),
        dry_run=bool(job.params.get("dry_run", False)),
        actor=job.created_by,
        job_id=job.id,
        progress=report,
    )
    return {"run_id": result.run_id, "counts": result.counts, "batch_id": result.batch_id}


def batch_orders(db_session: Session, batch_id: int) -> list[WorkOrder]:
    return list(
        db_session.scalars(select(WorkOrder).where(WorkOrder.batch_id == batch_id).order_by(WorkOrder.id))
    )


def get_batch(db_session: Session, batch_id: int) -> ShutoffBatch:
    batch = db_session.get(ShutoffBatch, batch_id)
    if batch is None:
        raise not_found("shut-off batch", batch_id)
    return batch


def approve_batch(
    db_session: Session,
    batch: ShutoffBatch,
    *,
    exclude: list[int],
    note: str,
    actor: str,
    policy: Policy,
    today: dt.date | None = None,
) -> dict[str, list[int]]:
    """Release the batch's shut-offs for dispatch, except those excluded (cancelled, with the note) and
    those whose account paid, made an arrangement or got a hold since the run (pulled again now)."""
    if batch.status != "proposed":
        raise conflict(f"shut-off batch {batch.id} is already {batch.status}", code="batch_reviewed")
    orders = batch_orders(db_session, batch.id)
    ids = {o.id for o in orders}
    unknown = sorted(set(exclude) - ids)
    if unknown:
        raise ApiError(
            422,
            "invalid_request",
            f"orders {', '.join(map(str, unknown))} are not in shut-off batch {batch.id}",
            fields=[{"field": "exclude", "message": "not in this batch"}],
        )
    open_orders = [
        o for o in orders if o.status in {s.value for s in (OrderStatus.NEW, OrderStatus.SCHEDULED)}
    ]
    # Re-check: the world may have changed between the run and the review.
    decisions = generation.evaluate(
        db_session,
        policy=policy,
        run_date=today or batch.service_date,
        rules=[Rule.PULL],
        zone=local_zone(),
        account_ids={o.account_id for o in open_orders if o.account_id is not None},
    )
    pulled: dict[int, str] = {
        d.cancel_order_id: d.reason
        for d in decisions
        if d.outcome is Outcome.CANCEL and d.cancel_order_id in ids
    }
    out: dict[str, list[int]] = {"released": [], "excluded": [], "pulled": []}
    for order in open_orders:
        if order.id in pulled:
            generation.cancel(db_session, order.id, reason=pulled[order.id], actor=actor)
            out["pulled"].append(order.id)
        elif order.id in exclude:
            why = f"removed from shut-off batch {batch.id} by {actor}" + (f": {note}" if note else "")
            generation.cancel(db_session, order.id, reason=why, actor=actor)
            out["excluded"].append(order.id)
        else:
            order.review_hold = ""
            out["released"].append(order.id)
    batch.status = "approved"
    batch.reviewed_by = actor
    batch.reviewed_at = utcnow()
    batch.note = note
    record(
        db_session=db_session,
        actor=actor,
        action="approved",
        entity_type="shutoff_batch",
        entity_id=batch.id,
        detail=out | {"note": note},
    )
    db_session.flush()
    return out


def reject_batch(db_session: Session, batch: ShutoffBatch, *, note: str, actor: str) -> list[int]:
    """Cancel every shut-off of the batch."""
    if batch.status != "proposed":
        raise conflict(f"shut-off batch {batch.id} is already {batch.status}", code="batch_reviewed")
    if not note.strip():
        raise ApiError(
            422,
            "invalid_request",
            "say why the batch is rejected",
            fields=[{"field": "note", "message": "required when rejecting"}],
        )
    cancelled = []
    for order in batch_orders(db_session, batch.id):
        if generation.cancel(
            db_session, order.id, reason=f"shut-off batch {batch.id} rejected by {actor}: {note}", actor=actor
        ):
            cancelled.append(order.id)
    batch.status = "rejected"
    batch.reviewed_by = actor
    batch.reviewed_at = utcnow()
    batch.note = note
    record(
        db_session=db_session,
        actor=actor,
        action="rejected",
        entity_type="shutoff_batch",
        entity_id=batch.id,
        detail={"cancelled": cancelled, "note": note},
    )
    db_session.flush()
    return cancelled


def request_meter_test(
    db_session: Session, *, account_id: int | None, meter_id: int | None, note: str, actor: str
) -> MeterTestRequest:
    """Record a customer's request for a meter test (the meter-test rule orders it)."""
    if meter_id is None:
        if account_id is None:
            raise ApiError(
                422,
                "invalid_request",
                "name the account or the meter to test",
                fields=[{"field": "meter_id", "message": "required when account_id is absent"}],
            )
        account = db_session.get(Account, account_id)
        if account is None:
            raise ApiError(
                422,
                "invalid_request",
                f"account_id {account_id} does not exist",
                fields=[{"field": "account_id", "message": "no such account"}],
            )
        meter_id = db_session.scalar(
            select(Meter.id).where(
                Meter.service_point_id == account.service_point_id, Meter.status == "in_service"
            )
        )
        if meter_id is None:
            raise conflict(f"account {account_id} has no meter in service to test")
    elif db_session.get(Meter, meter_id) is None:
        raise ApiError(
            422,
            "invalid_request",
            f"meter_id {meter_id} does not exist",
            fields=[{"field": "meter_id", "message": "no such meter"}],
        )
    req = MeterTestRequest(account_id=account_id, meter_id=meter_id, note=note, requested_by=actor)
    db_session.add(req)
    db_session.flush()
    record(
        db_session=db_session,
        actor=actor,
        action="created",
        entity_type="meter_test_request",
        entity_id=req.id,
        detail={"meter_id": meter_id, "account_id": account_id},
    )
    return req


def explain_account(
    db_session: Session, account_id: int, *, run_date: dt.date, policy: Policy
) -> dict[str, Any]:
    """Every rule's verdict on one account today, its meters' read validation, and past runs' decisions."""
    account = db_session.get(Account, account_id)
    if account is None:
        raise not_found("account", account_id)
    zone = local_zone()
    decisions = generation.evaluate(
        db_session,
        policy=policy,
        run_date=run_date,
        rules=list(generation.RULE_ORDER),
        zone=zone,
        account_ids={account_id},
    )
    from server.orders import facts as F

    meters = F.meter_facts(
        db_session,
        policy,
        run_date,
        meter_ids=set(
            db_session.scalars(select(Meter.id).where(Meter.service_point_id == account.service_point_id))
        ),
        recent_days=3660,
    )
    validations = []
    for m in meters:
        v = reads.verdict_for(m, policy)
        latest = m.intervals[0] if m.intervals else None
        validations.append(
            {
                "meter_id": m.meter_id,
                "register": m.register,
                "latest_read_id": latest.read_id if latest else None,
                "latest_read_at": latest.read_at.isoformat() if latest else None,
                "use": latest.use if latest else None,
                "seasonal_norm": latest.norm if latest else None,
                "validation": v.validation if v else None,
                "reason": v.reason if v else "no reads",
            }
        )
    by_rule = {r.value: [] for r in generation.RULE_ORDER}
    for d in decisions:
        by_rule[d.rule.value].append(
            {
                "outcome": d.outcome.value,
                "reason": d.reason,
                "order_type": d.order.order_type.value if d.order else None,
                "order_key": d.order.key if d.order else None,
                "cancel_order_id": d.cancel_order_id,
            }
        )
    history = [
        {
            "run_id": run.id,
            "run_date": run.run_date.isoformat(),
            "dry_run": run.dry_run,
            "rule": dec.rule,
            "outcome": dec.outcome,
            "order_id": dec.order_id,
            "reason": dec.reason,
        }
        for dec, run in db_session.execute(
            select(GenerationDecision, GenerationRun)
            .join(GenerationRun, GenerationRun.id == GenerationDecision.run_id)
            .where(GenerationDecision.account_id == account_id)
            .order_by(GenerationDecision.id.desc())
            .limit(50)
        )
    ]
    return {
        "account_id": account_id,
        "account_number": account.account_number,
        "date": run_date.isoformat(),
        "policy": policy.source,
        "rules": {
            rule: (items or [{"outcome": "none", "reason": _nothing_reason(rule)}])
            for rule, items in by_rule.items()
        },
        "read_validation": validations,
        "history": history,
    }


def _nothing_reason(rule: str) -> str:
    return {
        "pull": "no pending shut-off to pull, or the account still qualifies for it",
        "restore": "the account is not shut off, or it is not paid up and has no arrangement",
        "shutoff": "not active or not past due over the threshold, or already on a shut-off list",
        "moves": "no move request due",
        "reread": "the latest read needs no reread (see read_validation), or it is older than the look-back",
        "leak": "no sustained high use and no leak flag",
        "theft": "the account is not shut off or locked, or shows no use",
        "meter_test": "no test due, requested, or called for by zero use",
        "change_out": "no failed meter test",
    }[rule]
