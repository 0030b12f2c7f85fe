"""Read models of the supervisor's desk: the shut-off lists waiting for review, and adjustments waiting
for an approval with what the signed-in supervisor may do about each (the adjustments' own authority)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.adjustments import service as adjustments
from server.adjustments.models import Adjustment
from server.auth.service import Principal
from server.orders import review
from server.orders.models import ShutoffBatch, WorkOrder
from server.orders.policy import current_policy
from server.orders.schemas import ExclusionRead

WAITING_STATUSES = ("proposed", "changed")


@dataclass
class BatchView:
    """A shut-off list waiting for review, its orders and the accounts earlier exclusions keep off it."""

    batch: ShutoffBatch
    orders: list[WorkOrder]
    kept_off: list[ExclusionRead]


def proposed_batches(*, db_session: Session, limit: int = 10) -> list[BatchView]:
    """Shut-off lists still waiting for a supervisor, earliest service day first."""
    batches = db_session.scalars(
        select(ShutoffBatch)
        .where(ShutoffBatch.status == "proposed")
        .order_by(ShutoffBatch.service_date, ShutoffBatch.id)
        .limit(limit)
    )
    policy = current_policy()
    return [
        BatchView(b, review.batch_orders(db_session, b.id), review.kept_off(db_session, b, policy=policy))
        for b in batches
    ]


@dataclass
class Waiting:
    """An adjustment waiting for approval and whether this supervisor may approve it (else why not)."""

    adjustment: Adjustment
    refusal: str | None


def waiting_adjustments(*, db_session: Session, principal: Principal, limit: int = 100) -> list[Waiting]:
    """Adjustments proposed or changed and not yet decided, oldest first, with this person's authority."""
    found: list[Adjustment] = []
    for status in WAITING_STATUSES:
        found += adjustments.list_adjustments(db_session=db_session, status=status, page_size=limit).items
    found.sort(key=lambda a: (a.created_at, a.id))
    return [
        Waiting(a, adjustments.authority(db_session=db_session, principal=principal, adjustment=a).refusal)
        for a in found[:limit]
    ]
