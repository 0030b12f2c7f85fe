"""What people do around generation: run it as a job, review the day's shut-off batch, mark
no-shut-off days, take meter-test requests, and ask why an account did or did not get an order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts.codes import OrderStatus
from server.accounts.models import Account, Balance, Payment
from server.audit.service import record
from server.config import get_settings
from server.db import utcnow
from server.errors import ApiError, conflict, not_found
from server.jobs.models import Job
from server.jobs.service import Report, handler
from server.meters.models import Meter
from server.orders import facts as F
from server.orders import generation, lifecycle
from server.orders.lifecycle import Via
from server.orders.models import (
    GenerationDecision,
    GenerationRun,
    MeterTestRequest,
    ShutoffBatch,
    ShutoffExclusion,
    WorkOrder,
)
from server.orders.policy import Policy, current_policy
from server.orders.rules import reads
from server.orders.rules.base import Outcome, Rule
from server.orders.rules.exclusion import ended_because
from server.orders.schemas import ExclusionRead, ExclusionRequest


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
    exclude: Sequence[ExclusionRequest],
    note: str,
    actor: str,
    policy: Policy,
    today: dt.date | None = None,
) -> dict[str, list[int]]:
    """Release the batch's shut-offs for dispatch, except the accounts excluded (their cut cancelled; each
    exclusion kept with its own note and end, so later lists show the account as excluded) and those
    whose account paid, made an arrangement or got a hold since the run (pulled again now)."""
    if batch.status != "proposed":
        raise conflict(f"shut-off batch {batch.id} is already {batch.status}", code="batch_reviewed")
    orders = batch_orders(db_session, batch.id)
    ids = {o.id for o in orders}
    day = today or batch.service_date
    ends = _check_exclusions(batch, orders, exclude, policy=policy, day=day)
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
            generation.cancel(db_session, order.id, reason=pulled[order.id], actor=actor, via=Via.REVIEW)
            out["pulled"].append(order.id)
        elif order.account_id in ends:
            request, until = ends[order.account_id]
            why = f"removed from shut-off batch {batch.id} by {actor} until {until}: {request.note}"
            generation.cancel(db_session, order.id, reason=why, actor=actor, via=Via.REVIEW)
            _exclude(db_session, batch=batch, order=order, request=request, until=until, actor=actor)
            out["excluded"].append(order.id)
        else:
            lifecycle.release_hold(
                db_session=db_session,
                order=order,
                actor=actor,
                via=Via.REVIEW,
                reason=f"shut-off batch {batch.id} approved by {actor}" + (f": {note}" if note else ""),
            )
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


def _check_exclusions(
    batch: ShutoffBatch,
    orders: Sequence[WorkOrder],
    exclude: Sequence[ExclusionRequest],
    *,
    policy: Policy,
    day: dt.date,
) -> dict[int, tuple[ExclusionRequest, dt.date]]:
    """account id -> (the request, the last day it holds); 422 naming each account or field that is wrong."""
    on_list = {o.account_id for o in orders if o.account_id is not None}
    problems: list[dict[str, str]] = []
    ends: dict[int, tuple[ExclusionRequest, dt.date]] = {}
    longest = policy.shutoff.exclusion_max_days
    for i, request in enumerate(exclude):
        where = f"exclude[{i}]"
        if request.account_id not in on_list:
            problems.append(
                {
                    "field": f"{where}.account_id",
                    "message": f"account {request.account_id} is not in shut-off batch {batch.id}",
                }
            )
            continue
        if request.account_id in ends:
            problems.append(
                {"field": f"{where}.account_id", "message": f"account {request.account_id} is excluded twice"}
            )
            continue
        if request.until is not None:
            until = request.until
            if until <= day:
                problems.append(
                    {"field": f"{where}.until", "message": f"{until} is not after the list's day {day}"}
                )
                continue
        else:
            until = day + dt.timedelta(days=request.days or policy.shutoff.exclusion_default_days)
        if (until - day).days > longest:
            problems.append(
                {
                    "field": f"{where}.{'until' if request.until else 'days'}",
                    "message": f"at most {longest} days (shutoff.exclusion_max_days)",
                }
            )
            continue
        ends[request.account_id] = (request, until)
    if problems:
        raise ApiError(
            422,
            "invalid_request",
            "; ".join(p["message"] for p in problems),
            fields=problems,
        )
    return ends


def _exclude(
    db_session: Session,
    *,
    batch: ShutoffBatch,
    order: WorkOrder,
    request: ExclusionRequest,
    until: dt.date,
    actor: str,
) -> ShutoffExclusion:
    """Keep the account off the shut-off lists through `until`, remembering the balance it was made against."""
    assert order.account_id is not None
    balance = db_session.get(Balance, order.account_id)
    last_payment = db_session.scalar(
        select(Payment.id)
        .where(Payment.account_id == order.account_id)
        .order_by(Payment.paid_at.desc(), Payment.id.desc())
        .limit(1)
    )
    ex = ShutoffExclusion(
        account_id=order.account_id,
        batch_id=batch.id,
        order_id=order.id,
        note=request.note.strip(),
        excluded_by=actor,
        until_date=until,
        balance_cents=balance.balance_cents if balance else 0,
        past_due_cents=balance.past_due_cents if balance else 0,
        last_payment_id=last_payment,
        lifted_by="",
        lift_note="",
    )
    db_session.add(ex)
    db_session.flush()
    record(
        db_session=db_session,
        actor=actor,
        action="excluded",
        entity_type="shutoff_exclusion",
        entity_id=ex.id,
        detail={
            "account_id": ex.account_id,
            "batch_id": batch.id,
            "order_id": order.id,
            "until": until.isoformat(),
            "note": ex.note,
        },
    )
    return ex


def get_exclusion(db_session: Session, exclusion_id: int) -> ShutoffExclusion:
    """The exclusion, or 404."""
    ex = db_session.get(ShutoffExclusion, exclusion_id)
    if ex is None:
        raise not_found("shut-off exclusion", exclusion_id)
    return ex


def lift_exclusion(db_session: Session, ex: ShutoffExclusion, *, note: str, actor: str) -> ShutoffExclusion:
    """End an exclusion now: the account may be raised on the next shut-off list."""
    if ex.lifted_at is not None:
        raise conflict(
            f"shut-off exclusion {ex.id} was lifted by {ex.lifted_by} on {ex.lifted_at:%Y-%m-%d}",
            code="exclusion_lifted",
        )
    ex.lifted_at = utcnow()
    ex.lifted_by = actor
    ex.lift_note = note.strip()
    record(
        db_session=db_session,
        actor=actor,
        action="lifted",
        entity_type="shutoff_exclusion",
        entity_id=ex.id,
        detail={"account_id": ex.account_id, "note": ex.lift_note},
    )
    db_session.flush()
    return ex


def show_exclusions(
    db_session: Session, rows: Sequence[ShutoffExclusion], *, day: dt.date, policy: Policy
) -> list[ExclusionRead]:
    """Exclusions as a supervisor reads them: whether each holds on `day`, and if not, why."""
    if not rows:
        return []
    facts = {
        a.account_id: a
        for a in F.account_facts(db_session, policy, day, account_ids={r.account_id for r in rows})
    }
    out = []
    for ex in rows:
        acct = facts.get(ex.account_id)
        ended = (
            ended_because(F.exclusion_facts(ex), acct.receivable, day)
            if acct is not None
            else "the account is gone"
        )
        out.append(
            ExclusionRead(
                id=ex.id,
                account_id=ex.account_id,
                account_number=acct.account_number if acct else "",
                batch_id=ex.batch_id,
                order_id=ex.order_id,
                note=ex.note,
                excluded_by=ex.excluded_by,
                excluded_at=ex.excluded_at,
                until_date=ex.until_date,
                lifted_at=ex.lifted_at,
                lifted_by=ex.lifted_by,
                lift_note=ex.lift_note,
                holds=ended is None,
                ended=ended,
            )
        )
    return out


def list_exclusions(
    db_session: Session,
    *,
    day: dt.date,
    policy: Policy,
    account_id: int | None = None,
    holding_only: bool = True,
) -> list[ExclusionRead]:
    """Exclusions (newest first): those holding on `day`, or all of them, optionally for one account."""
    query = select(ShutoffExclusion).order_by(ShutoffExclusion.id.desc()).limit(500)
    if account_id is not None:
        query = query.where(ShutoffExclusion.account_id == account_id)
    if holding_only:
        query = query.where(ShutoffExclusion.lifted_at.is_(None), ShutoffExclusion.until_date >= day)
    shown = show_exclusions(db_session, list(db_session.scalars(query)), day=day, policy=policy)
    return [e for e in shown if e.holds or not holding_only]


def kept_off(db_session: Session, batch: ShutoffBatch, *, policy: Policy) -> list[ExclusionRead]:
    """The accounts an earlier exclusion kept off this list (the run's `excluded` decisions)."""
    if batch.run_id is None:
        return []
    accounts = set(
        db_session.scalars(
            select(GenerationDecision.account_id).where(
                GenerationDecision.run_id == batch.run_id,
                GenerationDecision.outcome == Outcome.EXCLUDED.value,
            )
        )
    )
    if not accounts:
        return []
    latest = (
        select(func.max(ShutoffExclusion.id))
        .where(ShutoffExclusion.account_id.in_(accounts), ShutoffExclusion.excluded_at <= batch.created_at)
        .group_by(ShutoffExclusion.account_id)
    )
    rows = list(
        db_session.scalars(
            select(ShutoffExclusion)
            .where(ShutoffExclusion.id.in_(latest))
            .order_by(ShutoffExclusion.account_id)
        )
    )
    return show_exclusions(db_session, rows, day=batch.service_date, policy=policy)


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
            db_session,
            order.id,
            reason=f"shut-off batch {batch.id} rejected by {actor}: {note}",
            actor=actor,
            via=Via.REVIEW,
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
