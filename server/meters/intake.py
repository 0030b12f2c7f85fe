"""What happens to every read that arrives (CIS import, hand-held upload, field result).

The read's use, rollover, seasonal norm and history are derived first (`server.meters.derive`), then it
is classified against them by the reread rule's classifier
(`server.orders.rules.reads.classify`, thresholds from the policy file) and, when it needs a second
look, a reread order is raised, keyed by the read (`reread:read:<id>`, the same key the daily run
uses) so that validating it again makes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.codes import OrderType
from server.accounts.models import Account
from server.meters.derive import derive_pending
from server.meters.models import Meter, MeterRead
from server.orders import service as orders
from server.orders.policy import Policy, current_policy
from server.orders.rules.reads import Verdict, classify
from server.orders.schemas import OrderCreate

__all__ = ["Verdict", "expected_next", "validate_new_reads"]


def expected_next(
    history: Sequence[tuple[dt.datetime, float]], *, dials: int, decimals: int, policy: Policy | None = None
) -> tuple[float | None, float | None]:
    """Low and high limits for the next read (displayed register values) from the meter's recent monthly use.

    The policy's read factors (reads.low_factor, reads.high_factor) applied to the mean of the last
    twelve intervals; None when there is too little history or the range would cross the register's rollover.
    """
    p = (policy or current_policy()).reads
    if len(history) < 2:
        return None, None
    ordered = sorted(history)
    top = 10**dials / 10**decimals
    uses = [(b[1] - a[1]) % top for a, b in itertools.pairwise(ordered)][-12:]
    typical = sum(uses) / len(uses)
    last = ordered[-1][1]
    low, high = last + p.low_factor * typical, last + p.high_factor * typical
    if high >= top:
        return None, None
    return round(low, decimals), round(high, decimals)


def validate_new_reads(*, db_session: Session, read_ids: Sequence[int], actor: str) -> int:
    """Classify each read against its meter's history (the order-generation reread rule's classifier)
    and raise reread orders where needed; return how many orders were raised."""
    policy = current_policy()
    p = policy.reads
    defaults = policy.order_defaults(OrderType.REREAD)
    raised = 0
    derive_pending(db_session, policy)
    for read_id in read_ids:
        read = db_session.get(MeterRead, read_id)
        if read is None or read.duplicate_of_id is not None:
            continue
        meter = db_session.get(Meter, read.meter_id)
        assert meter is not None
        # The read's use, norm and history were derived as it arrived (derive_pending above).
        estimates = 0
        walk: MeterRead | None = read
        while walk is not None and walk.estimated and estimates < p.estimates_in_a_row:
            estimates += 1
            walk = db_session.get(MeterRead, walk.prev_read_id) if walk.prev_read_id is not None else None
        account = None
        if meter.service_point_id is not None:
            account = db_session.scalar(
                select(Account)
                .where(Account.service_point_id == meter.service_point_id, Account.status != "closed")
                .order_by(Account.id.desc())
                .limit(1)
            )
        verdict = classify(
            use=read.use,
            rolled=read.rolled,
            read_code=read.read_code,
            norm=read.norm if read.norm_count else read.recent_mean,
            history_count=read.history_count,
            active_occupied=account is not None and account.status == "active" and account.occupied,
            estimates_in_a_row=estimates,
            policy=p,
        )
        read.validation = verdict.validation
        read.validation_reason = verdict.reason[:200]
        if verdict.reread and meter.service_point_id is not None:
            _, created = orders.create(
                db_session=db_session,
                body=OrderCreate(
                    order_type=OrderType.REREAD,
                    service_point_id=meter.service_point_id,
                    account_id=account.id if account is not None else None,
                    meter_id=meter.id,
                    priority=defaults.priority,
                    estimated_minutes=defaults.minutes,
                    required_skills=sorted(defaults.skills),
                    reason=f"read {read.id} of {read.read_at.date().isoformat()}: {verdict.reason}",
                ),
                actor=actor,
                idempotency_key=f"reread:read:{read.id}",
                rule="reread",
            )
            raised += created
    db_session.flush()
    return raised
