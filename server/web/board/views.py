"""The dispatcher's board: the day on a timeline and a map, what needs attention, the work list, an order's file.

Every change goes through the features' own service functions (the same ones the API calls): orders'
`update` (technician, pin/lock; checks skills and the order's state), the lifecycle (`dispatch`,
`move`), dispatch's `publish`, jobs' `submit`. A refused change comes back as the feature's message,
in the page; a stale edit (the order changed since the board was drawn) names who changed it and when.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from contracts.codes import OrderStatus, OrderType
from server.auth.service import Principal
from server.config import get_settings
from server.deps import OFFICE, STAFF, DbSession
from server.dispatch import service as dispatch_service
from server.errors import ApiError
from server.jobs.models import Job
from server.jobs.service import submit
from server.orders import lifecycle
from server.orders import service as orders_service
from server.orders.models import WorkOrder
from server.orders.schemas import OrderTransition, OrderUpdate
from server.technicians.models import Technician
from server.timezone import local_today, utc_now, utility_zone
from server.web.board import service
from server.web.deps import page_roles
from server.web.templates import local_datetime, register, render

router = APIRouter(prefix="/board", include_in_schema=False)
BOARD = register("Dispatch board", "/board", OFFICE)
Viewer = Annotated[Principal, Depends(page_roles(*OFFICE))]
Editor = Annotated[Principal, Depends(page_roles(*STAFF))]
PLAN_TIME_LIMIT_S = 10.0


def _day(value: str | None) -> dt.date:
    if not value:
        return local_today(zone=utility_zone())
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError(
            422,
            "invalid_request",
            f"day {value!r} is not a date (YYYY-MM-DD)",
            fields=[{"field": "day", "message": "not a date"}],
        ) from None


def _board(db_session: Session, day: dt.date) -> service.Board:
    return service.build_board(db_session=db_session, day=day, now=utc_now(), zone=utility_zone())


def _filters(text: str, order_type: str, area: str) -> dict[str, str]:
    return {"q": text, "type": order_type, "area": area}


def _context(
    db_session: Session,
    principal: Principal,
    day: dt.date,
    text: str = "",
    order_type: str = "",
    area: str = "",
    part: str = "page",
) -> dict[str, Any]:
    """What the page (or one part of it, re-fetched on a change) shows; a part computes only its own."""
    context: dict[str, Any] = {
        "can_edit": principal.role.value in {r.value for r in STAFF},
        "filters": _filters(text, order_type, area),
        "tile_url": get_settings().tile_url,
        "tile_attribution": get_settings().tile_attribution,
    }
    if part == "work":
        plan, _draft = service.plans_of_day(db_session=db_session, day=day)
        context["board"] = service.DayRef(day=day, plan=plan)
        context["technicians"] = _active_techs(db_session)
    else:
        board = _board(db_session, day)
        context["board"] = board
        context["technicians"] = [r.technician for r in board.rows]
        if part in ("page", "glance"):
            context["glance"] = service.glance(db_session=db_session, board=board)
    if part in ("page", "work"):
        work, total = service.work_list(
            db_session=db_session,
            day=day,
            plan=context["board"].plan,
            text=text,
            order_type=order_type,
            area=area,
        )
        context.update(
            work=work,
            work_total=total,
            order_types=[t.value for t in OrderType],
            areas=service.areas(db_session=db_session),
        )
    return context


@router.get("", response_class=HTMLResponse)
def board_page(
    request: Request,
    principal: Viewer,
    db_session: DbSession,
    day: str | None = None,
    q: Annotated[str, Query(max_length=100)] = "",
    type: Annotated[str, Query(max_length=40)] = "",
    area: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """The board for a day (default: today, or the next day with work when today has none). Office roles;
    editing for dispatchers and up."""
    today = local_today(zone=utility_zone())
    the_day = _day(day) if day else service.default_day(db_session=db_session, today=today)
    context = _context(db_session, principal, the_day, q, type, area)
    context["today"] = today
    return render(request, "board/page.html", context)


@router.get("/parts/{part}", response_class=HTMLResponse)
def board_part(
    request: Request,
    part: str,
    principal: Viewer,
    db_session: DbSession,
    day: str | None = None,
    q: Annotated[str, Query(max_length=100)] = "",
    type: Annotated[str, Query(max_length=40)] = "",
    area: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """One part of the board (glance, timeline, work), re-fetched when something changes."""
    if part not in {"glance", "timeline", "work", "plan"}:
        return render(
            request, "error.html", {"title": "Not found", "message": f"no part {part}"}, status_code=404
        )
    context = _context(db_session, principal, _day(day), q, type, area, part=part)
    return render(request, f"board/_{part}.html", context)


@router.get("/map.json")
def board_map(_: Viewer, db_session: DbSession, day: str | None = None) -> JSONResponse:
    """Routes, stops by status, unassigned work and crew positions for the map."""
    the_day = _day(day)
    board = _board(db_session, the_day)
    work, _total = service.work_list(db_session=db_session, day=the_day, plan=board.plan)
    data = service.map_data(db_session=db_session, board=board, work=work)
    return JSONResponse(data.__dict__)


@router.get("/streets.json")
def board_streets(_: Viewer, db_session: DbSession) -> JSONResponse:
    """The district's streets from its own geometry (drawn when no tile server is configured)."""
    return JSONResponse({"streets": service.streets(db_session=db_session)})


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_drawer(request: Request, order_id: int, principal: Viewer, db_session: DbSession) -> Response:
    """The order drawer: account facts, hazards, history, field documents, the audit trail, actions."""
    order = orders_service.get_visible(db_session=db_session, order_id=order_id, principal=principal)
    board_day = order.scheduled_date or local_today(zone=utility_zone())
    techs = [t for t in _active_techs(db_session)]
    return render(
        request,
        "board/_drawer.html",
        {
            "file": service.order_file(db_session=db_session, order=order),
            "can_edit": principal.role.value in {r.value for r in STAFF},
            "technicians": techs,
            "day": board_day,
        },
    )


def _active_techs(db_session: Session) -> list[Technician]:
    return list(
        db_session.scalars(select(Technician).where(Technician.active.is_(True)).order_by(Technician.code))
    )


# --- changes -------------------------------------------------------------------------------------------


def _toast(request: Request, message: str, *, ok: bool, status: int = 200, changed: bool = False) -> Response:
    response = render(request, "board/_toast.html", {"message": message, "ok": ok}, status_code=status)
    if changed:
        response.headers["HX-Trigger"] = "board-changed"
    return response


def _stale_message(db_session: Session, order_id: int) -> str:
    last = service.last_change(db_session=db_session, order_id=order_id)
    if last is None:
        return f"order {order_id} changed since the board was drawn; it now shows the current state"
    what = ", ".join(k for k in last.detail if k not in {"reason", "via"}) or last.action
    return (
        f"order {order_id} was changed by {last.actor} at {local_datetime(last.at)} ({last.action}: {what}) "
        "since the board was drawn; the board now shows the current state: check it and apply your change again"
    )


def _order_at(db_session: Session, order_id: int, version: int, principal: Principal) -> WorkOrder:
    order = orders_service.get_visible(db_session=db_session, order_id=order_id, principal=principal)
    orders_service.check_version(order, f'"{version}"', required=True)
    return order


def _apply(request: Request, db_session: Session, order_id: int, change: Any) -> Response:
    """Run a change, commit, and answer with a toast; refusals and stale edits come back as their message."""
    try:
        message = change()
        db_session.commit()
    except ApiError as exc:
        db_session.rollback()
        if exc.code == "stale_version":
            return _toast(request, _stale_message(db_session, order_id), ok=False, status=409, changed=True)
        return _toast(request, exc.message, ok=False, status=exc.status)
    except StaleDataError:
        db_session.rollback()
        return _toast(request, _stale_message(db_session, order_id), ok=False, status=409, changed=True)
    return _toast(request, message, ok=True, changed=True)


@router.post("/orders/{order_id}/move", response_class=HTMLResponse)
def move_stop(
    request: Request,
    order_id: int,
    principal: Editor,
    db_session: DbSession,
    technician_id: Annotated[int, Form()],
    version: Annotated[int, Form()],
    day: Annotated[str, Form(max_length=10)],
    arrive: Annotated[str, Form(max_length=20)],
) -> Response:
    """Put a stop on a CSFR's route at a time (drag on the timeline, or the drawer's form) and pin it there."""
    the_day = _day(day)
    clock = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", arrive.strip())
    if clock is None:
        return _toast(
            request, f"arrival {arrive!r} is not a time of day (HH:MM, 24-hour)", ok=False, status=422
        )
    hours, minutes = int(clock.group(1)), int(clock.group(2))
    zone = utility_zone()
    arrival = dt.datetime.combine(the_day, dt.time(hours, minutes), tzinfo=zone).astimezone(dt.UTC)

    def change() -> str:
        order = _order_at(db_session, order_id, version, principal)
        tech = db_session.get(Technician, technician_id)
        if tech is None or not tech.active:
            raise ApiError(422, "invalid_request", f"technician {technician_id} is not an active CSFR")
        missed = service.window_problem(order, arrival)
        if missed is not None:
            raise ApiError(
                409,
                "outside_window",
                f"order {order.id} cannot be at {arrive}: {missed} "
                f"({local_datetime(order.window_start)}–{local_datetime(order.window_end)})",
            )
        changes: dict[str, Any] = {"locked": True}
        if order.technician_id != tech.id:
            changes["technician_id"] = tech.id
        orders_service.update(
            db_session=db_session, order=order, body=OrderUpdate(**changes), actor=principal.name
        )
        sequence = 1 + sum(
            1
            for other in db_session.scalars(_same_day(tech.id, the_day).where(WorkOrder.id != order.id))
            if other.planned_arrival_at is not None and other.planned_arrival_at <= arrival
        )
        lifecycle.dispatch(
            db_session=db_session,
            order=order,
            technician_id=tech.id,
            route_sequence=sequence,
            planned_arrival_at=arrival,
            plan_date=the_day,
            actor=principal.name,
            via=lifecycle.Via.API,
            reason=f"placed on {tech.code}'s route at {arrive} on the board",
        )
        return f"order {order.id} is on {tech.code}'s route at {arrive}, pinned to {tech.code}"

    return _apply(request, db_session, order_id, change)


def _same_day(technician_id: int, day: dt.date) -> Select[WorkOrder]:
    return select(WorkOrder).where(
        WorkOrder.technician_id == technician_id,
        WorkOrder.scheduled_date == day,
        WorkOrder.status.in_([s.value for s in service.ON_ROUTE]),
    )


@router.post("/orders/{order_id}/pin", response_class=HTMLResponse)
def pin_stop(
    request: Request,
    order_id: int,
    principal: Editor,
    db_session: DbSession,
    version: Annotated[int, Form()],
    locked: Annotated[bool, Form()],
) -> Response:
    """Pin (lock) a stop to its CSFR and place, or release it for the planner."""

    def change() -> str:
        order = _order_at(db_session, order_id, version, principal)
        orders_service.update(
            db_session=db_session, order=order, body=OrderUpdate(locked=locked), actor=principal.name
        )
        return f"order {order.id} is {'pinned to its CSFR' if locked else 'free for the planner again'}"

    return _apply(request, db_session, order_id, change)


@router.post("/orders/{order_id}/unassign", response_class=HTMLResponse)
def unassign_stop(
    request: Request,
    order_id: int,
    principal: Editor,
    db_session: DbSession,
    version: Annotated[int, Form()],
) -> Response:
    """Take a stop off its CSFR's route: back to the work list (new) for planning."""

    def change() -> str:
        order = _order_at(db_session, order_id, version, principal)
        if order.locked:
            orders_service.update(
                db_session=db_session, order=order, body=OrderUpdate(locked=False), actor=principal.name
            )
        orders_service.transition(
            db_session=db_session,
            order=order,
            body=OrderTransition(to=OrderStatus.NEW, reason="taken off the route on the board"),
            principal=principal,
        )
        return f"order {order.id} is back on the work list"

    return _apply(request, db_session, order_id, change)


@router.post("/assign", response_class=HTMLResponse)
def assign_orders(
    request: Request,
    principal: Editor,
    db_session: DbSession,
    technician_id: Annotated[int, Form()],
    orders: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Assign one or many orders from the work list to a CSFR (pinned; the next plan puts them on the route).

    Each `orders` value is `<order id>:<version>`; each order succeeds or fails on its own, and the answer
    lists both.
    """
    tech = db_session.get(Technician, technician_id)
    if tech is None or not tech.active:
        return _toast(request, f"technician {technician_id} is not an active CSFR", ok=False, status=422)
    if not orders:
        return _toast(request, "tick the orders to assign first", ok=False, status=422)
    done, refused = [], []
    for item in orders:
        try:
            order_id, version = (int(x) for x in item.split(":"))
        except ValueError:
            return _toast(request, f"{item!r} is not <order id>:<version>", ok=False, status=422)
        try:
            order = _order_at(db_session, order_id, version, principal)
            if order.status == OrderStatus.UNABLE_TO_COMPLETE.value:
                lifecycle.return_to_dispatch(
                    db_session=db_session,
                    order=order,
                    actor=principal.name,
                    via=lifecycle.Via.API,
                    reason=f"re-assigned to {tech.code} on the board",
                )
            orders_service.update(
                db_session=db_session,
                order=order,
                body=OrderUpdate(technician_id=tech.id, locked=True),
                actor=principal.name,
            )
            db_session.commit()
            done.append(order_id)
        except ApiError as exc:
            db_session.rollback()
            refused.append(
                _stale_message(db_session, order_id) if exc.code == "stale_version" else exc.message
            )
        except StaleDataError:
            db_session.rollback()
            refused.append(_stale_message(db_session, order_id))
    parts = []
    if done:
        ids = ", ".join(f"#{i}" for i in done)
        parts.append(f"{ids} pinned to {tech.code}; plan or re-plan to put them on the route")
    parts.extend(refused)
    return _toast(
        request,
        "; ".join(parts) or "nothing selected",
        ok=not refused,
        status=200 if done else 409,
        changed=bool(done),
    )


@router.post("/plan", response_class=HTMLResponse)
def plan_day(
    request: Request,
    principal: Editor,
    db_session: DbSession,
    day: Annotated[str, Form(max_length=10)],
) -> Response:
    """Plan the day as a background job; the page follows its progress."""
    the_day = _day(day)
    job = submit(
        db_session=db_session,
        kind="dispatch.plan",
        actor=principal.name,
        params={
            "date": the_day.isoformat(),
            "service_area": "",
            "time_limit_s": PLAN_TIME_LIMIT_S,
            "seed": 0,
        },
    )
    db_session.commit()
    return render(request, "board/_job.html", {"job": job, "day": the_day})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def plan_progress(request: Request, job_id: int, _: Viewer, db_session: DbSession) -> Response:
    """A planning job's progress bar (polled until it ends)."""
    job = db_session.get(Job, job_id)
    if job is None:
        return _toast(request, f"job {job_id} does not exist", ok=False, status=404)
    response = render(request, "board/_job.html", {"job": job, "day": job.params.get("date")})
    if job.status in {"succeeded", "failed"}:
        response.headers["HX-Trigger"] = "board-changed"
    return response


@router.post("/plans/{plan_id}/publish", response_class=HTMLResponse)
def publish_plan(
    request: Request,
    plan_id: int,
    principal: Editor,
    db_session: DbSession,
    version: Annotated[int, Form()],
) -> Response:
    """Dispatch a draft plan to its orders (refused when it or its orders changed since it was made)."""
    try:
        plan = dispatch_service.get_plan(db_session=db_session, plan_id=plan_id)
        if plan.version != version:
            raise ApiError(
                409, "stale_version", f"plan {plan.id} changed since you read it; reload the board"
            )
        result = dispatch_service.publish(db_session=db_session, plan=plan, actor=principal.name)
        db_session.commit()
    except ApiError as exc:
        db_session.rollback()
        return _toast(request, exc.message, ok=False, status=exc.status, changed=True)
    return _toast(
        request,
        f"plan {plan_id} published: {result['dispatched']} orders dispatched, {result['unassigned']} unassigned",
        ok=True,
        changed=True,
    )


@router.post("/emergency", response_class=HTMLResponse)
def emergency_preview(
    request: Request,
    principal: Editor,
    db_session: DbSession,
    day: Annotated[str, Form(max_length=10)],
    what: Annotated[str, Form(max_length=100)],
) -> Response:
    """Emergency: find the waiting order (order, account or address), insert it into the day's published plan
    without reshuffling anyone's promised work (dispatch's `replan_rest`), and show who gets it and what
    moves; nothing is dispatched until the dispatcher confirms (publishes the draft)."""
    the_day = _day(day)
    order = service.find_waiting_order(db_session=db_session, text=what, day=the_day)
    if order is None:
        return _toast(
            request,
            f"no waiting order matches {what!r} (order number, account number or address)",
            ok=False,
            status=422,
        )
    plan = dispatch_service.published_plan(db_session=db_session, plan_date=the_day)
    if plan is None:
        return _toast(
            request, f"no published plan for {the_day}; plan and publish the day first", ok=False, status=409
        )
    try:
        draft = dispatch_service.replan_rest(
            db_session=db_session,
            plan=plan,
            now=utc_now(),
            time_limit_s=dispatch_service.EMERGENCY_TIME_LIMIT_S,
            seed=0,
            actor=principal.name,
            emergency_order_id=order.id,
        )
        db_session.commit()
    except ApiError as exc:
        db_session.rollback()
        return _toast(request, exc.message, ok=False, status=exc.status)
    placed = next(((r, v) for r in draft.routes for v in r["visits"] if v["order_id"] == order.id), None)
    reason = next((u["reason"] for u in draft.unassigned if u["order_id"] == order.id), "")
    response = render(
        request,
        "board/_emergency.html",
        {
            "order": order,
            "draft": draft,
            "placed": placed,
            "reason": service.REASONS.get(reason, reason.replace("_", " ")),
            "changes": [c for c in service.plan_changes(before=plan, after=draft) if c.order_id != order.id],
        },
    )
    response.headers["HX-Trigger"] = "board-changed"
    return response


@router.post("/plans/{plan_id}/replan", response_class=HTMLResponse)
def replan_rest(
    request: Request,
    plan_id: int,
    principal: Editor,
    db_session: DbSession,
) -> Response:
    """Re-plan the rest of a published day from now (done and in-progress work stays) as a background
    job; the page follows its progress and the result is a draft to review."""
    try:
        plan = dispatch_service.published_or_409(db_session=db_session, plan_id=plan_id)
    except ApiError as exc:
        return _toast(request, exc.message, ok=False, status=exc.status)
    job = submit(
        db_session=db_session,
        kind="dispatch.replan",
        actor=principal.name,
        params={"plan_id": plan.id, "now": utc_now().isoformat(), "time_limit_s": 5.0, "seed": 0},
    )
    db_session.commit()
    return render(request, "board/_job.html", {"job": job, "day": plan.plan_date.isoformat()})
