"""What happens to every read that arrives (CIS import, hand-held upload, field result).

The read is classified against its meter's own history by the reread rule's classifier
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
from server.meters.models import Meter, MeterRead
from server.orders import service as orders
from server.orders.policy import Policy, current_policy
from server.orders.rules.reads import Verdict, classify, interval_use, seasonal_norm
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
    for read_id in read_ids:
        read = db_session.get(MeterRead, read_id)
        if read is None or read.duplicate_of_id is not None:
            continue
        meter = db_session.get(Meter, read.meter_id)
        assert meter is not None
        earlier = db_session.execute(
            select(MeterRead.read_at, MeterRead.reading, MeterRead.estimated)
            .where(
                MeterRead.meter_id == meter.id,
                MeterRead.register == read.register,
                MeterRead.id != read.id,
                MeterRead.read_at < read.read_at,
                MeterRead.duplicate_of_id.is_(None),
                MeterRead.read_at >= read.read_at - dt.timedelta(days=366 * p.history_years + 31),
            )
            .order_by(MeterRead.read_at)
        ).all()
        history = [(t, float(r)) for t, r, _e in earlier]
        use, rolled = (None, False)
        if history:
            use, rolled = interval_use(
                history[-1][1],
                float(read.reading),
                dials=meter.dials,
                decimals=meter.decimals,
                max_fraction=p.rollover_max_fraction,
            )
        norm, norm_n = seasonal_norm(
            [*history, (read.read_at, float(read.reading))],
            read.read_at,
            dials=meter.dials,
            decimals=meter.decimals,
            max_fraction=p.rollover_max_fraction,
        )
        uses = []
        for (_t0, r0), (_t1, r1) in itertools.pairwise(history):
            u, _ = interval_use(
                r0, r1, dials=meter.dials, decimals=meter.decimals, max_fraction=p.rollover_max_fraction
            )
            if u >= 0:
                uses.append(u)
        recent = uses[-12:]
        estimates = 1 if read.estimated else 0
        if read.estimated:
            for _t, _r, est in reversed(earlier):
                if not est:
                    break
                estimates += 1
        account = None
        if meter.service_point_id is not None:
            account = db_session.scalar(
                select(Account)
                .where(Account.service_point_id == meter.service_point_id, Account.status != "closed")
                .order_by(Account.id.desc())
                .limit(1)
            )
        verdict = classify(
            use=use,
            rolled=rolled,
            read_code=read.read_code,
            norm=norm if norm_n else (sum(recent) / len(recent) if recent else None),
            history_count=len(uses),
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
