"""The work-order lifecycle: the one place an order's status changes, and the edits only some states allow.

Every feature calls these functions for every status change of an order (the API, dispatch, sync,
generation, the shut-off review); none sets `status` itself. Each change is checked against the one
transition table (`contracts.codes.ORDER_TRANSITIONS`) and the order's holds, writes an audit event
in the caller's transaction (actor, from, to, reason, via), and changes at least one column, so the
order's version, the optimistic-concurrency and publication key, moves on the next flush. An illegal
move or edit raises `LifecycleError`: the API answers it with 409 and the reason; sync and generation,
which cannot refuse a document or a run, record the reason instead.

    new -> scheduled -> assigned -> dispatched -> en_route -> on_site -> completed | unable_to_complete
    cancelled from any open state; back to new for re-planning; unable_to_complete -> new (back to dispatch)

A held order (a shut-off awaiting its batch's review, or a shut-off or notice delivery whose account has
a medical-certificate or dispute hold) may not be scheduled, assigned, dispatched or worked, and may not
be given a technician, locked or rescheduled; it may still be cancelled or taken back to dispatch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from contracts.codes import CLOSED_STATUSES, OrderStatus, OrderType, UnableCode, transition_error
from server.accounts.models import Account, ShutoffHold
from server.audit.service import record
from server.config import get_settings
from server.db import utcnow
from server.errors import ApiError
from server.orders.models import WorkOrder
from server.orders.policy import current_policy


class Via(StrEnum):
    """Which feature made a change (the audit event's `via`)."""

    API = "api"
    DISPATCH = "dispatch"
    SYNC = "sync"
    GENERATION = "generation"
    REVIEW = "review"


# States a plan may (re)arrange: not yet in the field.
PLANNABLE: tuple[OrderStatus, ...] = (
    OrderStatus.NEW,
    OrderStatus.SCHEDULED,
    OrderStatus.ASSIGNED,
    OrderStatus.DISPATCHED,
)
# States in which the order is with a technician in the field.
IN_THE_FIELD = frozenset({OrderStatus.EN_ROUTE, OrderStatus.ON_SITE})
# What a tablet holds a document for (the rest were never dispatched).
ON_TABLET = frozenset(
    {
        OrderStatus.DISPATCHED,
        OrderStatus.EN_ROUTE,
        OrderStatus.ON_SITE,
        OrderStatus.COMPLETED,
        OrderStatus.UNABLE_TO_COMPLETE,
        OrderStatus.CANCELLED,
    }
)
# The status the tablet an order was taken from sees: for it the order is gone. The order itself keeps
# its own status (it was reassigned or went back to dispatch), and no audit event is written for this.
WITHDRAWN_ON_TABLET = OrderStatus.CANCELLED
# Moves a held order may not make: everything that would put it on a route or in the field.
HELD_FORBIDS = frozenset(
    {
        OrderStatus.SCHEDULED,
        OrderStatus.ASSIGNED,
        OrderStatus.DISPATCHED,
        OrderStatus.EN_ROUTE,
        OrderStatus.ON_SITE,
    }
)
# Order types an account's shut-off hold (medical certificate, dispute) stops; the pull rule cancels the same.
HOLDABLE_TYPES = frozenset({OrderType.SHUT_OFF_NONPAY.value, OrderType.NOTICE_DELIVERY.value})
# What an edit may change; the lifecycle owns status, route and completion fields.
EDITABLE = frozenset(
    {
        "priority",
        "scheduled_date",
        "required_skills",
        "estimated_minutes",
        "technician_id",
        "locked",
        "notes",
        "window_start",
        "window_end",
    }
)


class LifecycleError(ApiError):
    """An illegal move or edit of an order: a 409 whose message says why (and where the order may go)."""

    def __init__(self, order_id: int, reason: str, *, code: str = "illegal_transition") -> None:
        super().__init__(409, code, f"order {order_id}: {reason}")
        self.order_id = order_id
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Hold:
    """Why an order may not be put on a route: `code` is the 409's code, `reason` the sentence."""

    code: str  # awaiting_review | on_hold
    reason: str


def local_today() -> dt.date:
    """Today in the utility's time zone."""
    return dt.datetime.now(ZoneInfo(get_settings().timezone)).date()


def _work_day(scheduled: dt.date | None, today: dt.date) -> dt.date:
    # An overdue or unscheduled order is worked today at the earliest.
    return max(scheduled, today) if scheduled is not None else today


def hold_of(*, db_session: Session, order: WorkOrder, on: dt.date | None = None) -> Hold | None:
    """What holds the order back on `on` (default: the day it would be worked), or None."""
    if order.review_hold:
        return Hold(
            "awaiting_review", f"it is held: {order.review_hold}; a supervisor must approve the list first"
        )
    if order.order_type not in HOLDABLE_TYPES or order.account_id is None:
        return None
    day = on or _work_day(order.scheduled_date, local_today())
    kinds = current_policy().shutoff.hold_kinds
    hold = db_session.scalar(
        select(ShutoffHold)
        .where(
            ShutoffHold.account_id == order.account_id,
            ShutoffHold.kind.in_(sorted(kinds)),
            ShutoffHold.start_date <= day,
            or_(ShutoffHold.end_date.is_(None), ShutoffHold.end_date >= day),
        )
        .order_by(ShutoffHold.start_date)
        .limit(1)
    )
    if hold is None:
        return None
    account = db_session.get(Account, order.account_id)
    number = account.account_number if account else str(order.account_id)
    until = f" until {hold.end_date}" if hold.end_date else ""
    return Hold(
        "on_hold",
        f"it is held: account {number} has a {hold.kind.replace('_', ' ')} hold from {hold.start_date}{until}, "
        f"so no {order.order_type.replace('_', ' ')} on {day}; cancel it or wait for the hold to end",
    )


def _audit(
    db_session: Session, order: WorkOrder, *, action: str, actor: str, via: Via, detail: dict[str, Any]
) -> None:
    record(
        db_session=db_session,
        actor=actor,
        action=action,
        entity_type="work_order",
        entity_id=order.id,
        detail={**detail, "via": via.value},
    )


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def check_move(*, db_session: Session, order: WorkOrder, to: OrderStatus, on: dt.date | None = None) -> None:
    """Raise LifecycleError when the order may not move to `to` now (table, holds, technician)."""
    current = OrderStatus(order.status)
    if current is to:
        raise LifecycleError(order.id, f"it is already {to.value}")
    why = transition_error(current, to)
    if why is not None:
        raise LifecycleError(order.id, why)
    if to in HELD_FORBIDS:
        hold = hold_of(db_session=db_session, order=order, on=on)
        if hold is not None:
            raise LifecycleError(order.id, f"cannot be {to.value}: {hold.reason}", code=hold.code)
    if to in (OrderStatus.ASSIGNED, OrderStatus.DISPATCHED) and order.technician_id is None:
        raise LifecycleError(order.id, f"it has no technician; assign one before marking it {to.value}")


def move(
    *,
    db_session: Session,
    order: WorkOrder,
    to: OrderStatus,
    actor: str,
    via: Via,
    reason: str = "",
    unable_code: UnableCode | str | None = None,
    at: dt.datetime | None = None,
    on: dt.date | None = None,
) -> None:
    """Move an order one step along the lifecycle and audit it, or raise LifecycleError saying why not.

    `reason` becomes the order's `status_reason` and the audit event's reason; `at` is when it happened
    (completion time from the field; default now); `on` is the day it is planned for (holds are checked
    on that day; default the day it would be worked).
    """
    check_move(db_session=db_session, order=order, to=to, on=on)
    current = OrderStatus(order.status)
    detail: dict[str, Any] = {"from": current.value, "to": to.value, "reason": reason}
    if to is OrderStatus.NEW:
        _clear_route(order, after_unable=current is OrderStatus.UNABLE_TO_COMPLETE, detail=detail)
    if to is OrderStatus.UNABLE_TO_COMPLETE and unable_code is not None:
        order.outcome = {**order.outcome, "unable_code": str(unable_code)}
        detail["unable_code"] = str(unable_code)
    if to in (OrderStatus.COMPLETED, OrderStatus.UNABLE_TO_COMPLETE):
        order.completed_at = at or utcnow()
    if to is OrderStatus.CANCELLED:
        order.review_hold = ""  # a cancelled order holds nothing back
    if to in (OrderStatus.ASSIGNED, OrderStatus.DISPATCHED):
        detail["technician_id"] = order.technician_id
    order.status = to.value
    order.status_reason = reason
    _audit(db_session, order, action="transition", actor=actor, via=via, detail=detail)


def _clear_route(order: WorkOrder, *, after_unable: bool, detail: dict[str, Any]) -> None:
    # Back to dispatch: it needs planning again. A locked order keeps its technician when pulled back
    # for re-planning, but not after that technician could not complete it.
    if after_unable or not order.locked:
        if order.technician_id is not None:
            detail["technician_id"] = {"from": order.technician_id, "to": None}
        order.technician_id = None
        order.locked = False
    order.route_sequence = None
    order.planned_arrival_at = None
    order.completed_at = None


def cancel(*, db_session: Session, order: WorkOrder, actor: str, via: Via, reason: str) -> None:
    """Cancel an open order (a dispatched one too: the publisher tells the tablet), or raise why not."""
    move(db_session=db_session, order=order, to=OrderStatus.CANCELLED, actor=actor, via=via, reason=reason)


def return_to_dispatch(*, db_session: Session, order: WorkOrder, actor: str, via: Via, reason: str) -> None:
    """Re-open an order its technician could not complete as new: unassigned, unlocked, off every route."""
    if order.status != OrderStatus.UNABLE_TO_COMPLETE.value:
        raise LifecycleError(
            order.id, f"it is {order.status}; only an order that could not be completed goes back to dispatch"
        )
    move(db_session=db_session, order=order, to=OrderStatus.NEW, actor=actor, via=via, reason=reason)


def check_edit(
    *, db_session: Session, order: WorkOrder, changes: Mapping[str, Any], today: dt.date | None = None
) -> None:
    """Raise LifecycleError when `changes` may not be made to the order in its state or while it is held."""
    unknown = sorted(set(changes) - EDITABLE)
    if unknown:
        raise ValueError(f"the lifecycle does not edit {', '.join(unknown)}")
    status = OrderStatus(order.status)
    if status in CLOSED_STATUSES and status is not OrderStatus.UNABLE_TO_COMPLETE:
        raise LifecycleError(
            order.id, f"it is {status.value}; a closed order cannot be edited", code="order_closed"
        )
    tech = changes.get("technician_id", order.technician_id)
    assigns = "technician_id" in changes and tech is not None and tech != order.technician_id
    unassigns = "technician_id" in changes and tech is None and order.technician_id is not None
    locks = changes.get("locked") is True and not order.locked
    new_date = changes.get("scheduled_date", order.scheduled_date)
    reschedules = "scheduled_date" in changes and new_date != order.scheduled_date
    route_edit = [
        name
        for name, hit in (
            ("give it a technician", assigns),
            ("lock it", locks),
            ("reschedule it", reschedules),
        )
        if hit
    ]
    if (route_edit or unassigns) and status not in PLANNABLE:
        what = route_edit[0] if route_edit else "take its technician away"
        hint = (
            "its technician is on the way or there"
            if status in IN_THE_FIELD
            else f"move it back to new first (POST /api/orders/{order.id}/transitions)"
        )
        raise LifecycleError(order.id, f"it is {status.value}; cannot {what}: {hint}", code="illegal_edit")
    if unassigns and status in (OrderStatus.ASSIGNED, OrderStatus.DISPATCHED):
        raise LifecycleError(
            order.id,
            f"it is {status.value}; move it back to new to take it off its technician",
            code="illegal_edit",
        )
    if route_edit:
        day = today or local_today()
        for on in {_work_day(order.scheduled_date, day), _work_day(new_date, day)}:
            hold = hold_of(db_session=db_session, order=order, on=on)
            if hold is not None:
                raise LifecycleError(
                    order.id, f"cannot {' or '.join(route_edit)}: {hold.reason}", code=hold.code
                )


def edit(
    *,
    db_session: Session,
    order: WorkOrder,
    changes: Mapping[str, Any],
    actor: str,
    via: Via,
    reason: str = "",
) -> None:
    """Apply an edit (technician, lock, date, window, priority, notes...) and audit it, or raise why not."""
    check_edit(db_session=db_session, order=order, changes=changes)
    for name, value in changes.items():
        setattr(order, name, value)
    detail: dict[str, Any] = {k: _plain(v) for k, v in changes.items()}
    if reason:
        detail["reason"] = reason
    _audit(db_session, order, action="updated", actor=actor, via=via, detail=detail)


def dispatch(
    *,
    db_session: Session,
    order: WorkOrder,
    technician_id: int,
    route_sequence: int,
    planned_arrival_at: dt.datetime,
    plan_date: dt.date,
    actor: str,
    via: Via,
    reason: str,
) -> bool:
    """Put an order on a technician's route for `plan_date` and move it to dispatched (through assigned).

    Returns whether it was taken from another technician. Raises LifecycleError when the order is not
    plannable or is held on that day.
    """
    status = OrderStatus(order.status)
    if status not in PLANNABLE:
        raise LifecycleError(
            order.id, f"it is {status.value}; only work not yet in the field can be dispatched"
        )
    hold = hold_of(db_session=db_session, order=order, on=plan_date)
    if hold is not None:
        raise LifecycleError(order.id, f"cannot be dispatched for {plan_date}: {hold.reason}", code=hold.code)
    previous = order.technician_id
    reassigned = previous is not None and previous != technician_id
    order.technician_id = technician_id
    order.route_sequence = route_sequence
    order.planned_arrival_at = planned_arrival_at
    order.scheduled_date = plan_date
    if status is OrderStatus.DISPATCHED:
        if reassigned:
            _audit(
                db_session,
                order,
                action="updated",
                actor=actor,
                via=via,
                detail={"technician_id": {"from": previous, "to": technician_id}, "reason": reason},
            )
        return reassigned
    if status in (OrderStatus.NEW, OrderStatus.SCHEDULED):
        move(
            db_session=db_session,
            order=order,
            to=OrderStatus.ASSIGNED,
            actor=actor,
            via=via,
            reason=reason,
            on=plan_date,
        )
    move(
        db_session=db_session,
        order=order,
        to=OrderStatus.DISPATCHED,
        actor=actor,
        via=via,
        reason=reason,
        on=plan_date,
    )
    return reassigned


def take_back(*, db_session: Session, order: WorkOrder, actor: str, via: Via, reason: str) -> bool:
    """A plan left the order out: back to new off its technician (unless locked to them), else just say why.

    Returns whether the order moved.
    """
    status = OrderStatus(order.status)
    if not order.locked and status in (OrderStatus.ASSIGNED, OrderStatus.DISPATCHED):
        move(db_session=db_session, order=order, to=OrderStatus.NEW, actor=actor, via=via, reason=reason)
        return True
    order.status_reason = reason
    return False


def release_hold(*, db_session: Session, order: WorkOrder, actor: str, via: Via, reason: str) -> None:
    """Lift a shut-off's review hold (its batch was approved): it may now be planned and dispatched."""
    status = OrderStatus(order.status)
    if status in CLOSED_STATUSES:
        raise LifecycleError(
            order.id, f"it is {status.value}; there is no hold to release", code="order_closed"
        )
    if not order.review_hold:
        return
    _audit(
        db_session,
        order,
        action="released",
        actor=actor,
        via=via,
        detail={"review_hold": {"from": order.review_hold, "to": ""}, "reason": reason},
    )
    order.review_hold = ""
