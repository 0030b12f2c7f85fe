"""Work-order routes: list, create, read, edit, lifecycle transitions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from contracts.codes import OrderStatus, OrderType, Role
from server.auth.service import Principal
from server.deps import ANYONE_SIGNED_IN, CurrentPrincipal, DbSession, OfficeOrCsfr, Staff, require
from server.errors import forbidden
from server.orders import service
from server.orders.models import WorkOrder
from server.orders.schemas import OrderCreate, OrderRead, OrderTransition, OrderUpdate, Page

router = APIRouter(prefix="/api/orders", tags=["orders"])

# Who may raise an order by hand: dispatchers, advisors (e.g. a customer's meter-test request), supervisors.
CreateRoles = Annotated[
    Principal, Depends(require(Role.DISPATCHER, Role.ADVISOR, Role.SUPERVISOR, Role.ADMIN))
]
TransitionRoles = Annotated[Principal, Depends(require(*ANYONE_SIGNED_IN))]


def valid_order(order_id: int, db_session: DbSession, principal: CurrentPrincipal) -> WorkOrder:
    """Path dependency: the order if it exists and the caller may see it, else 404."""
    return service.get_visible(db_session=db_session, order_id=order_id, principal=principal)


VisibleOrder = Annotated[WorkOrder, Depends(valid_order)]


@router.get(
    "", response_model=Page[OrderRead], summary="List orders. Office roles; a CSFR gets only their own."
)
def list_orders(
    principal: OfficeOrCsfr,
    db_session: DbSession,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
    order_type: Annotated[list[OrderType] | None, Query()] = None,
    technician_id: int | None = None,
    account_id: int | None = None,
    service_point_id: int | None = None,
    scheduled_date: dt.date | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    rule: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[OrderRead]:
    query = service.list_query(
        principal=principal,
        statuses=status or (),
        order_types=order_type or (),
        technician_id=technician_id,
        account_id=account_id,
        service_point_id=service_point_id,
        scheduled_date=scheduled_date,
        date_from=date_from,
        date_to=date_to,
        rule=rule,
    )
    rows, total = service.page(db_session=db_session, query=query, page_no=page, page_size=page_size)
    return Page[OrderRead](
        items=[OrderRead.model_validate(r) for r in rows], total=total, page=page, page_size=page_size
    )


@router.post(
    "",
    response_model=OrderRead,
    status_code=201,
    summary="Create an order (Idempotency-Key header or body field). Dispatcher, advisor, supervisor, admin.",
)
def create_order(
    body: OrderCreate,
    principal: CreateRoles,
    db_session: DbSession,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=160)] = None,
) -> WorkOrder:
    order, created = service.create(
        db_session=db_session, body=body, actor=principal.name, idempotency_key=idempotency_key
    )
    db_session.commit()
    if not created:
        response.status_code = 200  # the same request again: the order it made the first time
    response.headers["ETag"] = service.etag(order)
    response.headers["Location"] = f"/api/orders/{order.id}"
    return order


@router.get(
    "/{order_id}", response_model=OrderRead, summary="Read an order. Office roles; a CSFR only their own."
)
def read_order(order: VisibleOrder, _: OfficeOrCsfr, response: Response) -> WorkOrder:
    response.headers["ETag"] = service.etag(order)
    return order


@router.patch(
    "/{order_id}",
    response_model=OrderRead,
    summary="Edit an order; requires If-Match with its ETag. Dispatcher, supervisor, admin.",
)
def update_order(
    order: VisibleOrder,
    body: OrderUpdate,
    principal: Staff,
    db_session: DbSession,
    response: Response,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> WorkOrder:
    service.check_version(order, if_match, required=True)
    service.update(db_session=db_session, order=order, body=body, actor=principal.name)
    db_session.commit()
    response.headers["ETag"] = service.etag(order)
    return order


@router.post(
    "/{order_id}/transitions",
    response_model=OrderRead,
    summary="Move an order along its lifecycle (illegal -> 409 with the reason; If-Match optional). "
    "Staff any move; a CSFR en_route/on_site/completed/unable_to_complete on their own.",
)
def transition_order(
    order: VisibleOrder,
    body: OrderTransition,
    principal: TransitionRoles,
    db_session: DbSession,
    response: Response,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> WorkOrder:
    if principal.role is Role.ADVISOR:
        raise forbidden("an advisor may read orders but not move them; ask a dispatcher")
    service.check_version(order, if_match, required=False)
    service.transition(db_session=db_session, order=order, body=body, principal=principal)
    db_session.commit()
    response.headers["ETag"] = service.etag(order)
    return order
