"""Work-order queries, creation, and the API's edits and moves (both through orders.lifecycle)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from contracts.codes import (
    DEFAULT_PRIORITY,
    DEFAULT_SERVICE_MIN,
    DEFAULT_SKILLS,
    OrderStatus,
    OrderType,
    Role,
)
from server.accounts.models import Account, ServicePoint
from server.audit.service import record
from server.auth.service import Principal
from server.db import utcnow
from server.errors import ApiError, conflict, forbidden, not_found
from server.meters.models import Meter
from server.orders import lifecycle
from server.orders.models import WorkOrder
from server.orders.schemas import OrderCreate, OrderTransition, OrderUpdate
from server.technicians.models import Technician

# What a CSFR may do to their own order; the rest is the office's.
CSFR_TARGETS = frozenset(
    {OrderStatus.EN_ROUTE, OrderStatus.ON_SITE, OrderStatus.COMPLETED, OrderStatus.UNABLE_TO_COMPLETE}
)


def get(*, db_session: Session, order_id: int) -> WorkOrder | None:
    """The order with that id, or None."""
    return db_session.get(WorkOrder, order_id)


def get_visible(*, db_session: Session, order_id: int, principal: Principal) -> WorkOrder:
    """The order if the caller may see it; a CSFR sees only their own (others are 404, not 403)."""
    order = get(db_session=db_session, order_id=order_id)
    if order is None or (principal.role is Role.CSFR and order.technician_id != principal.technician_id):
        raise not_found("order", order_id)
    return order


def list_query(
    *,
    principal: Principal,
    statuses: Sequence[OrderStatus] = (),
    order_types: Sequence[OrderType] = (),
    technician_id: int | None = None,
    account_id: int | None = None,
    service_point_id: int | None = None,
    scheduled_date: dt.date | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    rule: str | None = None,
) -> Select[tuple[WorkOrder]]:
    """A filtered SELECT over orders, narrowed to the caller's own work for a CSFR."""
    query = select(WorkOrder)
    if principal.role is Role.CSFR:
        # None matches nothing: a CSFR user with no technician record sees no orders.
        query = query.where(WorkOrder.technician_id == principal.technician_id)
    if statuses:
        query = query.where(WorkOrder.status.in_([s.value for s in statuses]))
    if order_types:
        query = query.where(WorkOrder.order_type.in_([t.value for t in order_types]))
    if technician_id is not None:
        query = query.where(WorkOrder.technician_id == technician_id)
    if account_id is not None:
        query = query.where(WorkOrder.account_id == account_id)
    if service_point_id is not None:
        query = query.where(WorkOrder.service_point_id == service_point_id)
    if scheduled_date is not None:
        query = query.where(WorkOrder.scheduled_date == scheduled_date)
    if date_from is not None:
        query = query.where(WorkOrder.scheduled_date >= date_from)
    if date_to is not None:
        query = query.where(WorkOrder.scheduled_date <= date_to)
    if rule is not None:
        query = query.where(WorkOrder.rule == rule)
    return query


def page(
    *, db_session: Session, query: Select[tuple[WorkOrder]], page_no: int, page_size: int
) -> tuple[list[WorkOrder], int]:
    """One page of `query` (newest first) and the total count."""
    total = db_session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = db_session.scalars(
        query.order_by(WorkOrder.id.desc()).offset((page_no - 1) * page_size).limit(page_size)
    ).all()
    return list(rows), total


def _same_request(order: WorkOrder, body: OrderCreate, service_point_id: int) -> bool:
    return (
        order.order_type == body.order_type.value
        and order.service_point_id == service_point_id
        and order.account_id == body.account_id
        and order.meter_id == body.meter_id
    )


def create(
    *,
    db_session: Session,
    body: OrderCreate,
    actor: str,
    idempotency_key: str | None = None,
    rule: str = "manual",
) -> tuple[WorkOrder, bool]:
    """Create an order, or return the one already made with the same idempotency key (created=False)."""
    service_point_id = body.service_point_id
    if body.account_id is not None:
        account = db_session.get(Account, body.account_id)
        if account is None:
            raise ApiError(
                422,
                "invalid_request",
                f"account_id {body.account_id} does not exist",
                fields=[{"field": "account_id", "message": "no such account"}],
            )
        if service_point_id is None:
            service_point_id = account.service_point_id
    assert service_point_id is not None
    if db_session.get(ServicePoint, service_point_id) is None:
        raise ApiError(
            422,
            "invalid_request",
            f"service_point_id {service_point_id} does not exist",
            fields=[{"field": "service_point_id", "message": "no such service point"}],
        )
    if body.meter_id is not None and db_session.get(Meter, body.meter_id) is None:
        raise ApiError(
            422,
            "invalid_request",
            f"meter_id {body.meter_id} does not exist",
            fields=[{"field": "meter_id", "message": "no such meter"}],
        )

    key = idempotency_key or body.idempotency_key
    if key is None:
        key = f"manual:{actor}:{utcnow().timestamp():.6f}:{body.order_type.value}:{service_point_id}"
    existing = db_session.scalar(select(WorkOrder).where(WorkOrder.idempotency_key == key))
    if existing is not None:
        if _same_request(existing, body, service_point_id):
            return existing, False
        raise conflict(
            f"idempotency key {key!r} was already used for order {existing.id}, a different request",
            code="idempotency_key_reused",
        )

    order_type = body.order_type
    order = WorkOrder(
        order_type=order_type.value,
        status=OrderStatus.NEW.value,
        priority=(body.priority or DEFAULT_PRIORITY[order_type]).value,
        account_id=body.account_id,
        service_point_id=service_point_id,
        meter_id=body.meter_id,
        scheduled_date=body.scheduled_date,
        window_start=body.window_start,
        window_end=body.window_end,
        required_skills=sorted(s.value for s in (body.required_skills or DEFAULT_SKILLS[order_type])),
        estimated_minutes=body.estimated_minutes or DEFAULT_SERVICE_MIN[order_type],
        rule=rule,
        reason=body.reason,
        notes=body.notes,
        idempotency_key=key,
        created_by=actor,
    )
    db_session.add(order)
    db_session.flush()
    record(
        db_session=db_session,
        actor=actor,
        action="created",
        entity_type="work_order",
        entity_id=order.id,
        detail={"order_type": order.order_type, "rule": rule, "idempotency_key": key},
    )
    return order, True


def check_version(order: WorkOrder, if_match: str | None, *, required: bool) -> None:
    """Compare an If-Match header with the order's version: 428 when required and absent, 412 when stale."""
    if if_match is None:
        if required:
            raise ApiError(
                428,
                "precondition_required",
                "send If-Match with the ETag you read, so a concurrent change is not overwritten",
            )
        return
    wanted = {tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")}
    if "*" in wanted:
        return
    if str(order.version) not in wanted:
        raise ApiError(
            412,
            "stale_version",
            f"order {order.id} is at version {order.version}, not {', '.join(sorted(wanted))}: "
            "someone changed it since you read it; reload and apply your change again",
        )


def update(*, db_session: Session, order: WorkOrder, body: OrderUpdate, actor: str) -> WorkOrder:
    """Apply a dispatcher's edit through the lifecycle (409 when the order's state or a hold forbids it)."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "technician_id" in changes and changes["technician_id"] is not None:
        tech = db_session.get(Technician, changes["technician_id"])
        if tech is None:
            raise ApiError(
                422,
                "invalid_request",
                f"technician_id {changes['technician_id']} does not exist",
                fields=[{"field": "technician_id", "message": "no such technician"}],
            )
        missing = set(order.required_skills) - set(tech.skills)
        if missing:
            raise conflict(
                f"technician {tech.code} lacks the skills this order needs: {', '.join(sorted(missing))}"
            )
    if "required_skills" in changes and changes["required_skills"] is not None:
        changes["required_skills"] = sorted(str(s) for s in changes["required_skills"])
    if "priority" in changes and changes["priority"] is not None:
        changes["priority"] = str(changes["priority"])
    window_start = changes.get("window_start", order.window_start)
    window_end = changes.get("window_end", order.window_end)
    if window_start and window_end and window_end <= window_start:
        raise ApiError(
            422,
            "invalid_request",
            "window_end must be after window_start",
            fields=[{"field": "window_end", "message": "must be after window_start"}],
        )
    lifecycle.edit(db_session=db_session, order=order, changes=changes, actor=actor, via=lifecycle.Via.API)
    db_session.flush()
    return order


def transition(
    *, db_session: Session, order: WorkOrder, body: OrderTransition, principal: Principal
) -> WorkOrder:
    """Move an order to a new status through the lifecycle, or 409 naming why that move is illegal."""
    if principal.role is Role.CSFR and body.to not in CSFR_TARGETS:
        raise forbidden(f"a CSFR may only mark an order {', '.join(sorted(s.value for s in CSFR_TARGETS))}")
    lifecycle.move(
        db_session=db_session,
        order=order,
        to=body.to,
        actor=principal.name,
        via=lifecycle.Via.API,
        reason=body.reason,
        unable_code=body.unable_code,
    )
    db_session.flush()
    return order


def etag(order: WorkOrder) -> str:
    """The ETag header value for an order's current version."""
    return f'"{order.version}"'
