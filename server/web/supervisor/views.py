"""The supervisor's desk: the day's shut-off list with per-account exclusions, the exclusions in force
with lift, and adjustments waiting for a supervisor's approval.

Every change goes through the features' own service functions: `orders.review.approve_batch`,
`reject_batch`, `lift_exclusion`; `adjustments.service.approve` and `reject` (their authority rules).
A refusal is that service's message, shown in the page with its status.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from contracts.codes import Role
from server.adjustments import service as adjustments
from server.auth.service import Principal
from server.deps import DbSession
from server.errors import ApiError
from server.orders import review
from server.orders.policy import current_policy
from server.orders.schemas import ExclusionRequest
from server.web.deps import page_roles
from server.web.supervisor import service
from server.web.templates import register, render

SUPERVISORS = (Role.SUPERVISOR, Role.ADMIN)
router = APIRouter(prefix="/supervisor", include_in_schema=False)
DESK = register("Supervisor's desk", "/supervisor", SUPERVISORS, home=(Role.SUPERVISOR,))
Supervisor = Annotated[Principal, Depends(page_roles(*SUPERVISORS))]


def _context(db_session: Session, principal: Principal, **extra: Any) -> dict[str, Any]:
    today = review.local_today()
    return {
        "today": today,
        "batches": service.proposed_batches(db_session=db_session),
        "exclusions": review.list_exclusions(db_session, day=today, policy=current_policy()),
        "waiting": service.waiting_adjustments(db_session=db_session, principal=principal),
        "error": "",
        "done": "",
        **extra,
    }


@router.get("")
def desk(request: Request, principal: Supervisor, db_session: DbSession) -> HTMLResponse:
    """Shut-off lists to approve, exclusions in force, adjustments waiting for approval."""
    return render(
        request,
        "supervisor/desk.html",
        _context(db_session, principal, done=request.query_params.get("done", "")[:200]),
    )


def _do(request: Request, db_session: Session, principal: Principal, change: Any, done: str) -> Response:
    """Run a change; on success redirect to the desk with `done`, else show the service's message."""
    try:
        change()
        db_session.commit()
    except ValidationError as exc:
        db_session.rollback()
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"{where + ': ' if where else ''}{first['msg'].removeprefix('Value error, ')}"
        return render(
            request, "supervisor/desk.html", _context(db_session, principal, error=message), status_code=422
        )
    except ApiError as exc:
        db_session.rollback()
        message = exc.message
        for problem in exc.fields or []:
            message += f"; {problem.get('field', '')}: {problem.get('message', '')}"
        return render(
            request,
            "supervisor/desk.html",
            _context(db_session, principal, error=message),
            status_code=exc.status,
        )
    return RedirectResponse("/supervisor?" + urlencode({"done": done}), status_code=303)


@router.post("/batches/{batch_id}/approve")
def approve_batch(
    request: Request,
    batch_id: int,
    principal: Supervisor,
    db_session: DbSession,
    note: Annotated[str, Form(max_length=2000)] = "",
    exclude: Annotated[list[int], Form()] = [],  # noqa: B006 - FastAPI reads the default, never mutates it
    account_id: Annotated[list[int], Form()] = [],  # noqa: B006
    exclude_note: Annotated[list[str], Form()] = [],  # noqa: B006
    exclude_days: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    """Release the list for dispatch, minus the accounts ticked (each with its own note and days)."""
    rows = dict(zip(account_id, zip(exclude_note, exclude_days, strict=False), strict=False))

    def change() -> None:
        requests = []
        for acct in exclude:
            why, days = rows.get(acct, ("", ""))
            requests.append(
                ExclusionRequest.model_validate(
                    {
                        "account_id": acct,
                        "note": why.strip(),
                        "days": int(days) if days.strip().isdigit() else None,
                    }
                )
            )
        batch = review.get_batch(db_session, batch_id)
        review.approve_batch(
            db_session,
            batch,
            exclude=requests,
            note=note,
            actor=principal.name,
            policy=current_policy(),
            today=max(batch.service_date, review.local_today()),
        )

    return _do(request, db_session, principal, change, f"shut-off list {batch_id} approved")


@router.post("/batches/{batch_id}/reject")
def reject_batch(
    request: Request,
    batch_id: int,
    principal: Supervisor,
    db_session: DbSession,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Cancel the whole list, with the reason."""

    def change() -> None:
        if not note.strip():
            raise ApiError(422, "invalid_request", "note: say why the shut-off list is rejected")
        review.reject_batch(
            db_session, review.get_batch(db_session, batch_id), note=note, actor=principal.name
        )

    return _do(request, db_session, principal, change, f"shut-off list {batch_id} rejected")


@router.post("/exclusions/{exclusion_id}/lift")
def lift_exclusion(
    request: Request,
    exclusion_id: int,
    principal: Supervisor,
    db_session: DbSession,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """End an exclusion now: the account may be raised on the next list."""

    def change() -> None:
        review.lift_exclusion(
            db_session, review.get_exclusion(db_session, exclusion_id), note=note, actor=principal.name
        )

    return _do(request, db_session, principal, change, f"exclusion {exclusion_id} lifted")


@router.post("/adjustments/{adjustment_id}/approve")
def approve_adjustment(
    request: Request,
    adjustment_id: int,
    principal: Supervisor,
    db_session: DbSession,
    reason: Annotated[str, Form(max_length=2000)] = "",
    version: Annotated[int | None, Form()] = None,
) -> Response:
    """Approve within this supervisor's authority (else the workflow's refusal, in the page)."""

    def change() -> None:
        adjustments.approve(
            db_session=db_session,
            adjustment_id=adjustment_id,
            principal=principal,
            reason=reason,
            version=version,
        )

    return _do(request, db_session, principal, change, f"adjustment {adjustment_id} approved")


@router.post("/adjustments/{adjustment_id}/reject")
def reject_adjustment(
    request: Request,
    adjustment_id: int,
    principal: Supervisor,
    db_session: DbSession,
    reason: Annotated[str, Form(max_length=2000)] = "",
    version: Annotated[int | None, Form()] = None,
) -> Response:
    """Reject with a reason (the workflow requires one)."""

    def change() -> None:
        adjustments.reject(
            db_session=db_session,
            adjustment_id=adjustment_id,
            principal=principal,
            reason=reason,
            version=version,
        )

    return _do(request, db_session, principal, change, f"adjustment {adjustment_id} rejected")
