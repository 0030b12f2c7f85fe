"""The advisor's review queue and review item pages.

A page holds no rule: the queue is `results.service.queue`, the item is `results.service.item_detail`,
a decision is `results.service.decide` (which proposes adjustments through the adjustments workflow and
its authority limits). A refused decision comes back as that service's message, in the page.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.auth.service import Principal
from server.deps import DbSession
from server.errors import ApiError
from server.results import service as results
from server.results.kinds import Action, ResultKind, ReviewStatus
from server.results.schemas import Decision, DecisionKind
from server.web.deps import page_roles
from server.web.review import service
from server.web.templates import register, render

REVIEWERS = (Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN)
router = APIRouter(prefix="/review", include_in_schema=False)
REVIEW = register("Review queue", "/review", REVIEWERS, home=(Role.ADVISOR,))
Reviewer = Annotated[Principal, Depends(page_roles(*REVIEWERS))]
PAGE_SIZE = 25


class PageInputError(ValueError):
    """A form or filter value the page cannot use; the message names the field."""


def _cents(value: str, name: str) -> int | None:
    """'12.34', '-$1,234.50' -> cents; '' -> None."""
    text = value.strip().replace("$", "").replace(",", "").replace("\u2212", "-")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise PageInputError(f"{name}: {value!r} is not an amount in dollars (e.g. 12.50)") from None
    if amount != amount.quantize(Decimal("0.01")):
        raise PageInputError(f"{name}: {value!r} has more than two decimals")
    return int(amount * 100)


def _float(value: str, name: str) -> float | None:
    if not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise PageInputError(f"{name}: {value!r} is not a number") from None
    if number < 0:
        raise PageInputError(f"{name}: must not be negative")
    return number


def _queue_context(db_session: Session, params: dict[str, str], page: int) -> dict[str, Any]:
    error = ""
    filters: dict[str, Any] = {}
    try:
        status = params.get("status", ReviewStatus.OPEN.value)
        if status and status not in {s.value for s in ReviewStatus}:
            raise PageInputError(f"status: {status!r} is not a review status")
        kind = params.get("kind", "")
        if kind and kind not in {k.value for k in ResultKind}:
            raise PageInputError(f"kind: {kind!r} is not a result kind")
        min_amount = _cents(params.get("min_amount", ""), "min amount")
        max_amount = _cents(params.get("max_amount", ""), "max amount")
        filters = {
            "status": status or None,
            "kind": kind or None,
            "route": params.get("route", "").strip()[:32] or None,
            "min_age_days": _float(params.get("min_age_days", ""), "older than (days)"),
            "max_age_days": _float(params.get("max_age_days", ""), "newer than (days)"),
            "min_amount_cents": abs(min_amount) if min_amount is not None else None,
            "max_amount_cents": abs(max_amount) if max_amount is not None else None,
        }
    except PageInputError as exc:
        error = str(exc)
    items, total = (
        results.queue(db_session=db_session, page=page, page_size=PAGE_SIZE, **filters)
        if not error
        else ([], 0)
    )
    query = {k: v for k, v in params.items() if k != "page" and v}
    return {
        "items": items,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "params": params,
        "query": query,
        "error": error,
        "kinds": [k.value for k in ResultKind],
        "statuses": [s.value for s in ReviewStatus],
    }


@router.get("")
def queue_page(
    request: Request,
    _principal: Reviewer,
    db_session: DbSession,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    """Field results waiting for a decision, filtered and paged; `HX-Request` gets just the table."""
    params = {k: v for k, v in request.query_params.items() if k != "page"}
    context = _queue_context(db_session, params, page)
    name = "review/_queue.html" if request.headers.get("HX-Request") else "review/queue.html"
    return render(request, name, context, status_code=422 if context["error"] else 200)


def _item_context(
    db_session: Session,
    principal: Principal,
    item_id: int,
    *,
    error: str = "",
    form: dict[str, str] | None = None,
) -> dict[str, Any]:
    item = results.get_item(db_session=db_session, item_id=item_id)
    detail = results.item_detail(db_session=db_session, item=item)
    working = detail.working or {}
    return {
        "item": detail,
        "graph": service.consumption_graph(db_session=db_session, detail=detail).as_dict(),
        "working": working,
        "steps": working.get("steps") or [],
        "bills": working.get("bills") or [],
        "fields": (detail.result.data or {}).get("fields") or {},
        "need": service.approval_need(
            db_session=db_session, adjustment_id=detail.adjustment_id, proposer=detail.decided_by
        ),
        "advisor_approvers": service.approvers_for(
            kind=detail.adjustment_kind, amount_cents=detail.amount_cents or 0
        )
        if detail.action == Action.ADJUST.value and detail.amount_cents is not None
        else [],
        "error": error,
        "form": form or {},
        "decisions": [d.value for d in DecisionKind],
        "can_decide": principal.role in REVIEWERS,
    }


@router.get("/{item_id}")
def item_page(request: Request, item_id: int, principal: Reviewer, db_session: DbSession) -> HTMLResponse:
    """One review item: what the field found, the consumption graph, the working, and the decision form."""
    return render(request, "review/item.html", _item_context(db_session, principal, item_id))


@router.post("/{item_id}/decide")
def decide(
    request: Request,
    item_id: int,
    principal: Reviewer,
    db_session: DbSession,
    decision: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    amount: Annotated[str, Form(max_length=32)] = "",
    scheduled_date: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Decide through `results.service.decide`; a refusal is shown in the page with its status."""
    form = {"decision": decision, "reason": reason, "amount": amount, "scheduled_date": scheduled_date}
    try:
        body: dict[str, Any] = {"decision": decision, "reason": reason}
        cents = _cents(amount, "amount")
        if decision == DecisionKind.CHANGE.value:
            body["amount_cents"] = cents
        if scheduled_date:
            try:
                body["scheduled_date"] = dt.date.fromisoformat(scheduled_date)
            except ValueError:
                raise PageInputError(f"visit date: {scheduled_date!r} is not a date (YYYY-MM-DD)") from None
        try:
            parsed = Decision.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise PageInputError(
                f"{where + ': ' if where else ''}{first['msg'].removeprefix('Value error, ')}"
            ) from None
        item = results.get_item(db_session=db_session, item_id=item_id)
        results.decide(db_session=db_session, item=item, body=parsed, actor=principal.name)
        db_session.commit()
    except PageInputError as exc:
        db_session.rollback()
        return _refused(request, db_session, principal, item_id, str(exc), 422, form)
    except ApiError as exc:
        db_session.rollback()
        if exc.status == 404:
            raise
        return _refused(request, db_session, principal, item_id, exc.message, exc.status, form)
    return RedirectResponse(f"/review/{item_id}?decided=1", status_code=303)


def _refused(
    request: Request,
    db_session: Session,
    principal: Principal,
    item_id: int,
    message: str,
    status: int,
    form: dict[str, str],
) -> HTMLResponse:
    context = _item_context(db_session, principal, item_id, error=message, form=form)
    return render(request, "review/item.html", context, status_code=status)
