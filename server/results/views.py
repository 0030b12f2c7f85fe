"""Review queue, decisions, photos, account history, and the CIS feed.

Who may call what: the queue, an item, photos and account history: advisor, supervisor, admin, and a
dispatcher (read-only); decisions: advisor, supervisor, admin; a photo also to the CSFR who took it; the
CIS feed: admin (the CIS polls with an admin API token). A CSFR or station is refused everything else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from contracts.codes import Role
from server.auth.service import Principal
from server.cis import export
from server.deps import Admin, CurrentPrincipal, DbSession, require
from server.orders.schemas import Page
from server.results import service
from server.results.kinds import Action, ResultKind, ReviewStatus
from server.results.schemas import AccountHistory, Decision, ExportPage, ReviewItemDetail, ReviewItemRead

router = APIRouter(tags=["review"])

Reviewers = Annotated[Principal, Depends(require(Role.DISPATCHER, Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN))]
Deciders = Annotated[Principal, Depends(require(Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN))]


@router.get(
    "/api/review/items",
    response_model=Page[ReviewItemRead],
    summary="The review queue, oldest first. Advisor, supervisor, admin; dispatcher read-only.",
)
def list_items(
    _principal: Reviewers,
    db_session: DbSession,
    status: ReviewStatus | None = ReviewStatus.OPEN,
    kind: ResultKind | None = None,
    action: Action | None = None,
    route: Annotated[str | None, Query(max_length=32)] = None,
    min_age_days: Annotated[float | None, Query(ge=0)] = None,
    max_age_days: Annotated[float | None, Query(ge=0)] = None,
    min_amount_cents: Annotated[int | None, Query(ge=0)] = None,
    max_amount_cents: Annotated[int | None, Query(ge=0)] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[ReviewItemRead]:
    items, total = service.queue(
        db_session=db_session,
        status=status.value if status else None,
        kind=kind.value if kind else None,
        action=action.value if action else None,
        route=route,
        min_age_days=min_age_days,
        max_age_days=max_age_days,
        min_amount_cents=min_amount_cents,
        max_amount_cents=max_amount_cents,
        page=page,
        page_size=page_size,
    )
    return Page[ReviewItemRead](items=items, total=total, page=page, page_size=page_size)


@router.get(
    "/api/review/items/{item_id}",
    response_model=ReviewItemDetail,
    summary="One review item: result, photos, working, consumption, bills. Advisor, supervisor, admin, dispatcher.",
)
def read_item(item_id: int, _principal: Reviewers, db_session: DbSession) -> ReviewItemDetail:
    item = service.get_item(db_session=db_session, item_id=item_id)
    return service.item_detail(db_session=db_session, item=item)


@router.post(
    "/api/review/items/{item_id}/decisions",
    response_model=ReviewItemRead,
    summary="Decide an open item: accept, change (amount + reason), dismiss (reason), dispatch. "
    "Advisor, supervisor, admin.",
)
def decide(item_id: int, body: Decision, principal: Deciders, db_session: DbSession) -> ReviewItemRead:
    item = service.get_item(db_session=db_session, item_id=item_id)
    service.decide(db_session=db_session, item=item, body=body, actor=principal.name)
    db_session.commit()
    return service.queue_row(db_session=db_session, item=item)


@router.get(
    "/api/results/photos/{photo_id}",
    summary="A result's photo. Office roles; a CSFR only the photos they took.",
    response_class=Response,
)
def photo(photo_id: int, principal: CurrentPrincipal, db_session: DbSession) -> Response:
    found = service.photo_for(db_session=db_session, photo_id=photo_id, principal=principal)
    return Response(
        content=found.content,
        media_type=found.content_type or "application/octet-stream",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get(
    "/api/accounts/{account_id}/history",
    response_model=AccountHistory,
    summary="Reads with validation, bills and payments, as series for graphs. Advisor, supervisor, admin, dispatcher.",
)
def account_history(account_id: int, _principal: Reviewers, db_session: DbSession) -> AccountHistory:
    return service.account_history(db_session=db_session, account_id=account_id)


@router.get(
    "/api/cis/export",
    response_model=ExportPage,
    summary="The CIS feed: records after `cursor`, each once with a stable record_id. Admin (API token).",
)
def cis_export(
    _principal: Admin,
    db_session: DbSession,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=export.MAX_LIMIT)] = 500,
) -> ExportPage:
    return export.feed(db_session=db_session, cursor=cursor, limit=limit)
