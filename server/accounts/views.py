"""Accounts, premises and payments: read-only (the CIS owns them)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from server.accounts import service
from server.accounts.models import Account, Customer, Payment
from server.accounts.schemas import AccountRead, PaymentRead
from server.deps import DbSession, Office, OfficeOrCsfr
from server.errors import not_found
from server.orders.schemas import Page

router = APIRouter(prefix="/api/accounts", tags=["accounts"])


@router.get("", response_model=Page[AccountRead], summary="Search accounts. Office roles.")
def list_accounts(
    principal: Office,
    db_session: DbSession,
    q: Annotated[
        str | None, Query(max_length=80, description="account number or customer name prefix")
    ] = None,
    status: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[AccountRead]:
    query = select(Account.id).join(Customer, Customer.id == Account.customer_id)
    if q:
        like = q.replace("%", r"\%").replace("_", r"\_") + "%"
        query = query.where(
            Account.account_number.like(like, escape="\\") | Customer.name.ilike(like, escape="\\")
        )
    if status:
        query = query.where(Account.status == status)
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    ids = db_session.scalars(
        query.order_by(Account.account_number).offset((page - 1) * page_size).limit(page_size)
    )
    today = dt.date.today()
    items = [service.read(db_session=db_session, account_id=i, principal=principal, today=today) for i in ids]
    return Page[AccountRead](items=items, total=total, page=page, page_size=page_size)


@router.get(
    "/{account_id}",
    response_model=AccountRead,
    summary="Read an account. Office; a CSFR with an open order there.",
)
def read_account(account_id: int, principal: OfficeOrCsfr, db_session: DbSession) -> AccountRead:
    return service.read(
        db_session=db_session, account_id=account_id, principal=principal, today=dt.date.today()
    )


@router.get(
    "/{account_id}/payments",
    response_model=list[PaymentRead],
    summary="Payments, newest first. Office roles.",
)
def list_payments(
    account_id: int, _: Office, db_session: DbSession, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[Payment]:
    if db_session.get(Account, account_id) is None:
        raise not_found("account", account_id)
    return list(
        db_session.scalars(
            select(Payment)
            .where(Payment.account_id == account_id)
            .order_by(Payment.paid_at.desc())
            .limit(limit)
        )
    )
