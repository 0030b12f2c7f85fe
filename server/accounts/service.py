"""Account queries."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from contracts.codes import OPEN_STATUSES, Role
from server.accounts.models import (
    Account,
    Balance,
    Customer,
    PaymentArrangement,
    ServicePoint,
    ShutoffHold,
)
from server.accounts.schemas import AccountRead, BalanceRead, ServicePointRead
from server.auth.service import Principal
from server.errors import not_found
from server.orders.models import WorkOrder


def may_see_account(*, db_session: Session, account_id: int, principal: Principal) -> bool:
    """Office roles see every account; a CSFR only accounts with an open order assigned to them."""
    if principal.role is not Role.CSFR:
        return True
    hit = db_session.scalar(
        select(WorkOrder.id).where(
            WorkOrder.account_id == account_id,
            WorkOrder.technician_id == principal.technician_id,
            WorkOrder.status.in_([s.value for s in OPEN_STATUSES]),
        )
    )
    return hit is not None


def read(*, db_session: Session, account_id: int, principal: Principal, today: dt.date) -> AccountRead:
    """An account with premise, balance, holds and arrangement, or 404."""
    account = db_session.get(Account, account_id)
    if account is None or not may_see_account(
        db_session=db_session, account_id=account_id, principal=principal
    ):
        raise not_found("account", account_id)
    customer = db_session.get(Customer, account.customer_id)
    sp = db_session.get(ServicePoint, account.service_point_id)
    balance = db_session.get(Balance, account.id)
    holds = db_session.scalars(
        select(ShutoffHold.kind).where(
            ShutoffHold.account_id == account.id,
            ShutoffHold.start_date <= today,
            or_(ShutoffHold.end_date.is_(None), ShutoffHold.end_date >= today),
        )
    ).all()
    arrangement = db_session.scalar(
        select(PaymentArrangement.id).where(
            PaymentArrangement.account_id == account.id, PaymentArrangement.status == "active"
        )
    )
    return AccountRead(
        id=account.id,
        account_number=account.account_number,
        customer_name=customer.name if customer else "",
        status=account.status,
        occupied=account.occupied,
        service_class=account.service_class,
        billing_cycle=account.billing_cycle,
        opened_date=account.opened_date,
        closed_date=account.closed_date,
        service_point=ServicePointRead.model_validate(sp),
        balance=BalanceRead.model_validate(balance) if balance else None,
        holds=sorted(set(holds)),
        active_arrangement=arrangement is not None,
    )
