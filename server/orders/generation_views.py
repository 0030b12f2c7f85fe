"""HTTP API of order generation: runs (as jobs), their decisions, an account's "why", the shut-off
batch review, no-shut-off days and meter-test requests."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select

from contracts.codes import Role
from server.auth.service import Principal
from server.deps import DbSession, Office, Staff, require
from server.dispatch.schemas import JobAccepted
from server.errors import not_found
from server.jobs.service import submit
from server.orders import review
from server.orders.models import GenerationDecision, GenerationRun, NoShutoffDay, ShutoffBatch
from server.orders.policy import current_policy
from server.orders.rules.base import Outcome, Rule
from server.orders.schemas import ExclusionLift, ExclusionRead, ExclusionRequest

router = APIRouter(prefix="/api", tags=["order generation"])
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.ADMIN))]


class RunRequest(BaseModel):
    date: dt.date | None = Field(default=None, description="the local day to generate for; default today")
    rules: list[Rule] = Field(default_factory=list, description="rules to run; empty means all")
    dry_run: bool = Field(default=False, description="decide and record, but create and cancel nothing")


class RunRead(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    run_date: dt.date
    rules: list[str]
    dry_run: bool
    status: str
    counts: dict[str, dict[str, int]]
    policy_source: str
    actor: str
    job_id: int | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


class DecisionRead(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    rule: str
    outcome: str
    account_id: int | None
    meter_id: int | None
    order_id: int | None
    order_type: str
    reason: str


class DecisionPage(BaseModel):
    items: list[DecisionRead]
    total: int
    page: int
    page_size: int


class BatchRead(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    service_date: dt.date
    run_id: int | None
    status: str
    reviewed_by: str
    reviewed_at: dt.datetime | None
    note: str


class BatchOrder(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    account_id: int | None
    service_point_id: int
    status: str
    reason: str
    review_hold: str
    status_reason: str


class BatchDetail(BatchRead):
    orders: list[BatchOrder]
    excluded: list[ExclusionRead] = Field(
        default_factory=list, description="accounts an earlier exclusion keeps off this list (not new)"
    )


class ApproveRequest(BaseModel):
    model_config = {"extra": "forbid"}

    exclude: list[ExclusionRequest] = Field(
        default_factory=list, description="accounts to take off the list, each with its own note and end"
    )
    note: str = Field(default="", description="a note on the review of the whole list")


class RejectRequest(BaseModel):
    note: str = Field(description="why the whole list is rejected")


class NoShutoffDayBody(BaseModel):
    reason: str = Field(min_length=3, max_length=200, description="e.g. 'heat advisory: 104 F forecast'")


class NoShutoffDayRead(BaseModel):
    model_config = {"from_attributes": True}

    day: dt.date
    reason: str
    marked_by: str
    marked_at: dt.datetime


class TestRequestBody(BaseModel):
    account_id: int | None = None
    meter_id: int | None = None
    note: str = ""

    @field_validator("note")
    @classmethod
    def _short(cls, v: str) -> str:
        if len(v) > 2000:
            raise ValueError("at most 2,000 characters")
        return v


class TestRequestRead(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    account_id: int | None
    meter_id: int
    requested_at: dt.datetime
    requested_by: str
    note: str
    status: str
    order_id: int | None


@router.post(
    "/order-generation/runs",
    response_model=JobAccepted,
    status_code=202,
    summary="Run the rules (all or some) for a day as a background job. Dispatcher, supervisor, admin.",
)
def start_run(body: RunRequest, principal: Staff, db_session: DbSession) -> JobAccepted:
    day = body.date or review.local_today()
    job = submit(
        db_session=db_session,
        kind="orders.generate",
        actor=principal.name,
        params={"date": day.isoformat(), "rules": [r.value for r in body.rules], "dry_run": body.dry_run},
    )
    db_session.commit()
    return JobAccepted(job_id=job.id, status_url=f"/api/jobs/{job.id}")


@router.get(
    "/order-generation/runs", response_model=list[RunRead], summary="Runs, newest first. Office roles."
)
def list_runs(
    _: Office,
    db_session: DbSession,
    date: dt.date | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[GenerationRun]:
    query = select(GenerationRun).order_by(GenerationRun.id.desc()).limit(limit)
    if date is not None:
        query = query.where(GenerationRun.run_date == date)
    return list(db_session.scalars(query))


@router.get(
    "/order-generation/runs/{run_id}", response_model=RunRead, summary="One run and its counts. Office."
)
def get_run(run_id: int, _: Office, db_session: DbSession) -> GenerationRun:
    run = db_session.get(GenerationRun, run_id)
    if run is None:
        raise not_found("run", run_id)
    return run


@router.get(
    "/order-generation/runs/{run_id}/decisions",
    response_model=DecisionPage,
    summary="What a run decided per account or meter, with reasons (held-back shut-offs included). Office.",
)
def run_decisions(
    run_id: int,
    _: Office,
    db_session: DbSession,
    rule: Rule | None = None,
    outcome: Outcome | None = None,
    account_id: int | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DecisionPage:
    if db_session.get(GenerationRun, run_id) is None:
        raise not_found("run", run_id)
    query = select(GenerationDecision).where(GenerationDecision.run_id == run_id)
    if rule is not None:
        query = query.where(GenerationDecision.rule == rule.value)
    if outcome is not None:
        query = query.where(GenerationDecision.outcome == outcome.value)
    if account_id is not None:
        query = query.where(GenerationDecision.account_id == account_id)
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db_session.scalars(
        query.order_by(GenerationDecision.id).offset((page - 1) * page_size).limit(page_size)
    )
    return DecisionPage(
        items=[DecisionRead.model_validate(r) for r in rows], total=total, page=page, page_size=page_size
    )


@router.get(
    "/accounts/{account_id}/why",
    summary="Why this account does or does not get each kind of order today (or on `date`). Office.",
)
def why(account_id: int, _: Office, db_session: DbSession, date: dt.date | None = None) -> dict[str, Any]:
    return review.explain_account(
        db_session, account_id, run_date=date or review.local_today(), policy=current_policy()
    )


@router.get(
    "/shutoff-batches", response_model=list[BatchRead], summary="Shut-off lists, newest first. Office."
)
def list_batches(
    _: Office, db_session: DbSession, status: str | None = None, date: dt.date | None = None
) -> list[ShutoffBatch]:
    query = select(ShutoffBatch).order_by(ShutoffBatch.id.desc()).limit(100)
    if status:
        query = query.where(ShutoffBatch.status == status)
    if date:
        query = query.where(ShutoffBatch.service_date == date)
    return list(db_session.scalars(query))


def _detail(db_session: DbSession, batch: ShutoffBatch) -> BatchDetail:
    return BatchDetail(
        **BatchRead.model_validate(batch).model_dump(),
        orders=[BatchOrder.model_validate(o) for o in review.batch_orders(db_session, batch.id)],
        excluded=review.kept_off(db_session, batch, policy=current_policy()),
    )


@router.get(
    "/shutoff-batches/{batch_id}",
    response_model=BatchDetail,
    summary="A shut-off list and its orders. Office.",
)
def get_batch(batch_id: int, _: Office, db_session: DbSession) -> BatchDetail:
    return _detail(db_session, review.get_batch(db_session, batch_id))


@router.post(
    "/shutoff-batches/{batch_id}/approve",
    response_model=BatchDetail,
    summary="Release a shut-off list for dispatch (minus exclusions; paid accounts are pulled). Supervisor, admin.",
)
def approve(batch_id: int, body: ApproveRequest, principal: Supervisor, db_session: DbSession) -> BatchDetail:
    batch = review.get_batch(db_session, batch_id)
    review.approve_batch(
        db_session,
        batch,
        exclude=body.exclude,
        note=body.note,
        actor=principal.name,
        policy=current_policy(),
        today=max(batch.service_date, review.local_today()),
    )
    db_session.commit()
    return _detail(db_session, batch)


@router.post(
    "/shutoff-batches/{batch_id}/reject",
    response_model=BatchDetail,
    summary="Cancel a whole shut-off list, with the reason. Supervisor, admin.",
)
def reject(batch_id: int, body: RejectRequest, principal: Supervisor, db_session: DbSession) -> BatchDetail:
    batch = review.get_batch(db_session, batch_id)
    review.reject_batch(db_session, batch, note=body.note, actor=principal.name)
    db_session.commit()
    return _detail(db_session, batch)


@router.get(
    "/shutoff-exclusions",
    response_model=list[ExclusionRead],
    summary="Accounts excluded from the shut-off lists: those holding today (all with include_ended). Office.",
)
def list_exclusions(
    _: Office,
    db_session: DbSession,
    account_id: int | None = None,
    date: Annotated[dt.date | None, Query(description="the local day they hold on; default today")] = None,
    include_ended: Annotated[bool, Query(description="also those lifted or ended")] = False,
) -> list[ExclusionRead]:
    return review.list_exclusions(
        db_session,
        day=date or review.local_today(),
        policy=current_policy(),
        account_id=account_id,
        holding_only=not include_ended,
    )


@router.post(
    "/shutoff-exclusions/{exclusion_id}/lift",
    response_model=ExclusionRead,
    summary="Lift an exclusion: the account may be raised on the next shut-off list. Supervisor, admin.",
)
def lift_exclusion(
    exclusion_id: int, body: ExclusionLift, principal: Supervisor, db_session: DbSession
) -> ExclusionRead:
    ex = review.get_exclusion(db_session, exclusion_id)
    review.lift_exclusion(db_session, ex, note=body.note, actor=principal.name)
    db_session.commit()
    (shown,) = review.show_exclusions(db_session, [ex], day=review.local_today(), policy=current_policy())
    return shown


@router.get(
    "/no-shutoff-days", response_model=list[NoShutoffDayRead], summary="Marked no-shut-off days. Office."
)
def list_no_shutoff_days(
    _: Office, db_session: DbSession, since: dt.date | None = None
) -> list[NoShutoffDay]:
    query = select(NoShutoffDay).order_by(NoShutoffDay.day)
    if since:
        query = query.where(NoShutoffDay.day >= since)
    return list(db_session.scalars(query))


@router.put(
    "/no-shutoff-days/{day}",
    response_model=NoShutoffDayRead,
    summary="Mark a day closed to shut-offs (extreme heat, storms). Supervisor, admin.",
)
def mark_no_shutoff_day(
    day: dt.date, body: NoShutoffDayBody, principal: Supervisor, db_session: DbSession
) -> NoShutoffDay:
    row = db_session.get(NoShutoffDay, day) or NoShutoffDay(day=day)
    row.reason = body.reason
    row.marked_by = principal.name
    db_session.add(row)
    review.record(
        db_session=db_session,
        actor=principal.name,
        action="marked",
        entity_type="no_shutoff_day",
        entity_id=day.isoformat(),
        detail={"reason": body.reason},
    )
    db_session.commit()
    return row


@router.delete(
    "/no-shutoff-days/{day}", status_code=204, summary="Unmark a no-shut-off day. Supervisor, admin."
)
def unmark_no_shutoff_day(day: dt.date, principal: Supervisor, db_session: DbSession) -> None:
    row = db_session.get(NoShutoffDay, day)
    if row is None:
        raise not_found("no-shut-off day", day.isoformat())
    db_session.delete(row)
    review.record(
        db_session=db_session,
        actor=principal.name,
        action="unmarked",
        entity_type="no_shutoff_day",
        entity_id=day.isoformat(),
        detail={},
    )
    db_session.commit()


@router.post(
    "/meter-test-requests",
    response_model=TestRequestRead,
    status_code=201,
    summary="Record a customer's request for a meter test (the meter_test rule orders it). Office.",
)
def create_test_request(body: TestRequestBody, principal: Office, db_session: DbSession) -> Any:
    req = review.request_meter_test(
        db_session, account_id=body.account_id, meter_id=body.meter_id, note=body.note, actor=principal.name
    )
    db_session.commit()
    return req
