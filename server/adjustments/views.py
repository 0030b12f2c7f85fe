"""Adjustment and bill routes for advisors and supervisors (a thin layer over service.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.adjustments import service
from server.adjustments.schemas import (
    AdjustmentChange,
    AdjustmentDecision,
    AdjustmentPreview,
    AdjustmentPropose,
    AdjustmentRead,
    BillLineRead,
    BillRead,
    Kind,
    Status,
    WorkingRead,
)
from server.deps import CurrentPrincipal, DbSession, Office
from server.orders.schemas import Page

router = APIRouter(prefix="/api", tags=["adjustments"])


@router.get(
    "/adjustments",
    response_model=Page[AdjustmentRead],
    summary="List adjustments, oldest first. Office roles.",
)
def list_adjustments(
    principal: Office,
    db_session: DbSession,
    kind: Kind | None = None,
    status: Status | None = None,
    account_id: int | None = None,
    source_result_id: int | None = None,
    min_amount_cents: Annotated[int | None, Query(ge=0, description="absolute amount at least")] = None,
    max_amount_cents: Annotated[int | None, Query(ge=0, description="absolute amount at most")] = None,
    older_than_days: Annotated[int | None, Query(ge=0)] = None,
    newer_than_days: Annotated[int | None, Query(ge=0)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[AdjustmentRead]:
    found = service.list_adjustments(
        db_session=db_session,
        kind=kind,
        status=status,
        account_id=account_id,
        source_result_id=source_result_id,
        min_amount_cents=min_amount_cents,
        max_amount_cents=max_amount_cents,
        older_than_days=older_than_days,
        newer_than_days=newer_than_days,
        page=page,
        page_size=page_size,
    )
    items = [AdjustmentRead.model_validate(a) for a in found.items]
    return Page[AdjustmentRead](items=items, total=found.total, page=page, page_size=page_size)


@router.post(
    "/adjustments/preview",
    response_model=WorkingRead,
    summary="Compute an adjustment without storing it. Office roles.",
)
def preview(body: AdjustmentPreview, principal: Office, db_session: DbSession) -> WorkingRead:
    working = service.preview(
        db_session=db_session, kind=body.kind, account_id=body.account_id, inputs=body.inputs
    )
    return WorkingRead.model_validate(working.as_dict())


@router.post(
    "/adjustments",
    response_model=AdjustmentRead,
    status_code=201,
    summary="Propose an adjustment. Office roles.",
)
def propose(body: AdjustmentPropose, principal: Office, db_session: DbSession) -> AdjustmentRead:
    adj = service.propose(
        db_session=db_session,
        kind=body.kind,
        account_id=body.account_id,
        inputs=body.inputs,
        proposed_by=principal.name,
        source_result_id=body.source_result_id,
        note=body.note,
    )
    db_session.commit()
    return AdjustmentRead.model_validate(adj)


@router.get(
    "/adjustments/{adjustment_id}",
    response_model=AdjustmentRead,
    summary="One adjustment with its working. Office roles.",
)
def read(adjustment_id: int, principal: Office, db_session: DbSession) -> AdjustmentRead:
    return AdjustmentRead.model_validate(service.get(db_session=db_session, adjustment_id=adjustment_id))


@router.post(
    "/adjustments/{adjustment_id}/change",
    response_model=AdjustmentRead,
    summary="Change an open adjustment, with a reason. Advisor, supervisor, admin.",
)
def change(
    adjustment_id: int, body: AdjustmentChange, principal: Office, db_session: DbSession
) -> AdjustmentRead:
    adj = service.change(
        db_session=db_session,
        adjustment_id=adjustment_id,
        changed_by=principal.name,
        reason=body.reason,
        inputs=body.inputs,
        amount_cents=body.amount_cents,
        version=body.version,
    )
    db_session.commit()
    return AdjustmentRead.model_validate(adj)


@router.post(
    "/adjustments/{adjustment_id}/approve",
    response_model=AdjustmentRead,
    summary="Approve within your authority (not your own). Advisor, supervisor, admin.",
)
def approve(
    adjustment_id: int, body: AdjustmentDecision, principal: CurrentPrincipal, db_session: DbSession
) -> AdjustmentRead:
    adj = service.approve(
        db_session=db_session,
        adjustment_id=adjustment_id,
        principal=principal,
        reason=body.reason,
        version=body.version,
    )
    db_session.commit()
    return AdjustmentRead.model_validate(adj)


@router.post(
    "/adjustments/{adjustment_id}/reject",
    response_model=AdjustmentRead,
    summary="Reject with a reason. Advisor, supervisor, admin.",
)
def reject(
    adjustment_id: int, body: AdjustmentDecision, principal: CurrentPrincipal, db_session: DbSession
) -> AdjustmentRead:
    adj = service.reject(
        db_session=db_session,
        adjustment_id=adjustment_id,
        principal=principal,
        reason=body.reason,
        version=body.version,
    )
    db_session.commit()
    return AdjustmentRead.model_validate(adj)


@router.get(
    "/accounts/{account_id}/bills",
    response_model=list[BillRead],
    summary="An account's bills with their lines, oldest first. Office roles.",
)
def account_bills(account_id: int, principal: Office, db_session: DbSession) -> list[BillRead]:
    bills = service.account_bills(db_session=db_session, account_id=account_id)
    lines = service.bill_lines(db_session=db_session, bill_ids=[b.id for b in bills])
    return [
        BillRead.model_validate(b).model_copy(
            update={"lines": [BillLineRead.model_validate(line) for line in lines.get(b.id, [])]}
        )
        for b in bills
    ]
