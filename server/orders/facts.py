"""Gather the facts the rules need with a few set-based queries (no query per account).

Each function runs one or two SELECTs over the whole district (or the accounts/meters asked for) and
returns the plain dataclasses of `server.orders.rules`. The read facts come from what each read stored
when it arrived (`server.meters.derive`: interval use, rollover, seasonal norm, history): the newest
read of each register and, through `prev_read_id`, the few before it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import Float, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from contracts.codes import OPEN_STATUSES, OrderStatus, OrderType
from server.accounts.models import (
    Account,
    Balance,
    Customer,
    MoveRequest,
    Payment,
    PaymentArrangement,
    ShutoffHold,
    ShutoffNotice,
)
from server.meters.derive import derive_pending, on_chain
from server.meters.models import Meter, MeterRead
from server.orders.calendar import years_after
from server.orders.models import MeterTestRequest, NoShutoffDay, ShutoffExclusion, WorkOrder
from server.orders.policy import Policy
from server.orders.rules.billing import AccountFacts, Hold, OpenOrder
from server.orders.rules.exclusion import ExclusionFacts
from server.orders.rules.field import CompletedTestFacts, MoveFacts, TestDueFacts, TestRequestFacts
from server.orders.rules.reads import Interval, MeterFacts

CHUNK = 5000  # ids per IN (...) list
OPEN = [s.value for s in OPEN_STATUSES]


def _chunks(ids: Collection[int]) -> Iterable[list[int]]:
    items = sorted(ids)
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def current_accounts() -> Any:
    """Subquery: the live (not closed) account of each service point, the newest if several."""
    return (
        select(Account.service_point_id.label("sp_id"), func.max(Account.id).label("account_id"))
        .where(Account.status != "closed")
        .group_by(Account.service_point_id)
        .subquery("cur_acct")
    )


def current_meters() -> Any:
    """Subquery: the in-service meter of each service point (the lowest id if several)."""
    return (
        select(Meter.service_point_id.label("sp_id"), func.min(Meter.id).label("meter_id"))
        .where(Meter.status == "in_service")
        .group_by(Meter.service_point_id)
        .subquery("cur_meter")
    )


def meter_facts(
    db_session: Session,
    policy: Policy,
    run_date: dt.date,
    *,
    meter_ids: Collection[int] | None = None,
    recent_days: int | None = None,
) -> list[MeterFacts]:
    """Facts for every in-service meter register with a read in the last `recent_days` (default: four
    reread look-backs), optionally only `meter_ids`.

    Each read carries its derived use, rollover, seasonal norm and history (server/meters/derive.py;
    any read not derived yet is derived first), so this reads the newest read of each register and,
    through `prev_read_id`, the few before it that the rules look at: no pass over the history.
    """
    derive_pending(db_session, policy)
    reads_p = policy.reads
    k = max(policy.leak.cycles, reads_p.zero_use_meter_test_cycles, reads_p.estimates_in_a_row, 1)
    recent_from = dt.datetime.combine(
        run_date - dt.timedelta(days=recent_days or reads_p.reread_lookback_days * 4),
        dt.time(),
        tzinfo=dt.UTC,
    )
    newest_first = (MeterRead.read_at.desc(), MeterRead.id.desc())
    heads_q = select(
        MeterRead.id.label("id"),
        func.row_number()
        .over(partition_by=(MeterRead.meter_id, MeterRead.register), order_by=newest_first)
        .label("rn"),
    ).where(on_chain(), MeterRead.read_at >= recent_from)
    if meter_ids is not None:
        heads_q = heads_q.where(MeterRead.meter_id.in_(list(meter_ids)))
    heads = heads_q.subquery("heads")
    # The newest read, then each read before it: one row per register, one group of columns per read.
    levels = [aliased(MeterRead, name=f"r{i}") for i in range(k)]
    per_read = []
    for r in levels:
        per_read += [
            r.id,
            r.read_at,
            cast(r.reading, Float),
            r.use,
            r.rolled,
            r.norm,
            r.norm_count,
            r.read_code,
            r.estimated,
            r.validation,
            r.corrects_read_id,
        ]
    head = levels[0]
    cur = current_accounts()
    query = select(
        head.meter_id,
        head.register,
        head.history_count,
        head.recent_mean,
        Meter.service_point_id,
        Meter.dials,
        Meter.decimals,
        Meter.multiplier,
        Meter.unit,
        Account.id,
        Account.status,
        Account.occupied,
        *per_read,
    ).select_from(heads)
    query = query.join(head, head.id == heads.c.id)
    for before, r in itertools.pairwise(levels):
        query = query.outerjoin(r, r.id == before.prev_read_id)
    query = (
        query.join(Meter, Meter.id == head.meter_id)
        .outerjoin(cur, cur.c.sp_id == Meter.service_point_id)
        .outerjoin(Account, Account.id == cur.c.account_id)
        .where(heads.c.rn == 1, Meter.status == "in_service", Meter.service_point_id.is_not(None))
        .order_by(head.meter_id, head.register)
    )
    width = 11  # columns per read above
    out: list[MeterFacts] = []
    # Core, not the ORM: 100,000 plain rows without ORM row processing.
    for row in db_session.connection().execute(query):
        intervals = []
        for at in range(12, 12 + width * k, width):
            if row[at] is None:
                break
            intervals.append(
                # Positional, in Interval's field order.
                Interval(
                    row[at],  # read_id
                    row[at + 1],  # read_at
                    row[at + 2],  # reading
                    row[at + 3],  # use
                    bool(row[at + 4]),  # rolled
                    row[at + 5],  # norm
                    row[at + 6] or 0,  # norm_count
                    row[at + 7] or "",  # read_code
                    bool(row[at + 8]),  # estimated
                    bool(row[at + 9]),  # validated
                    row[at + 10] is not None,  # corrects
                )
            )
        out.append(
            MeterFacts(
                meter_id=row[0],
                register=row[1],
                service_point_id=row[4],
                dials=row[5],
                decimals=row[6],
                multiplier=row[7],
                unit=row[8],
                account_id=row[9],
                account_status=row[10],
                occupied=bool(row[11]) if row[11] is not None else False,
                intervals=tuple(intervals),
                history_count=row[2] or 0,
                recent_mean=row[3],
            )
        )
    return out


def account_facts(
    db_session: Session, policy: Policy, run_date: dt.date, *, account_ids: Collection[int] | None = None
) -> list[AccountFacts]:
    """Money, notices, holds and open non-payment orders of every account a billing rule may act on:
    past due over the threshold, shut off, or with an open shut-off, notice or restore order."""
    threshold = policy.shutoff.min_past_due_cents
    nonpay_types = [OrderType.SHUT_OFF_NONPAY.value, OrderType.NOTICE_DELIVERY.value, OrderType.RESTORE.value]
    if account_ids is None:
        with_orders = select(WorkOrder.account_id).where(
            WorkOrder.order_type.in_(nonpay_types),
            WorkOrder.status.in_(OPEN),
            WorkOrder.account_id.is_not(None),
        )
        ids_query = (
            select(Account.id)
            .outerjoin(Balance, Balance.account_id == Account.id)
            .where(
                or_(
                    Balance.past_due_cents >= max(threshold, 1),
                    Account.status == "shut_off",
                    Account.id.in_(with_orders),
                )
            )
        )
        # The district: the selection is a sub-select of every query below (no id lists to send).
        scopes: list[Any] = [ids_query]
    elif not account_ids:
        return []
    else:
        scopes = list(_chunks(account_ids))
    cur_meter = current_meters()
    pay_from = dt.datetime.combine(run_date - dt.timedelta(days=400), dt.time(), tzinfo=dt.UTC)
    rows: dict[int, dict[str, Any]] = {}
    for scope in scopes:
        for a, bal, cust_low, meter_id in db_session.execute(
            select(Account, Balance, Customer.low_income, cur_meter.c.meter_id)
            .join(Customer, Customer.id == Account.customer_id)
            .outerjoin(Balance, Balance.account_id == Account.id)
            .outerjoin(cur_meter, cur_meter.c.sp_id == Account.service_point_id)
            .where(Account.id.in_(scope))
        ):
            rows[a.id] = {
                "account": a,
                "balance": bal,
                "low_income": bool(cust_low),
                "meter_id": meter_id,
                "paid_since": 0,
                "last_payment": (None, None),
                "arrangement": (None, None),
                "plan_defaulted_on": None,
                "holds": [],
                "written": None,
                "final": None,
                "orders": [],
                "exclusion": None,
            }
        # Payments after the balance snapshot, and the latest payment.
        pay = db_session.execute(
            select(Payment.account_id, Payment.id, Payment.amount_cents, Payment.paid_at, Balance.as_of)
            .outerjoin(Balance, Balance.account_id == Payment.account_id)
            .where(Payment.account_id.in_(scope), Payment.paid_at >= pay_from)
        )
        for account_id, pid, amount, paid_at, as_of in pay:
            row = rows[account_id]
            if as_of is not None and paid_at > as_of:
                row["paid_since"] += amount
            if row["last_payment"][0] is None or paid_at > row["last_payment"][0]:
                row["last_payment"] = (paid_at, pid)
        for account_id, arr_id, made in db_session.execute(
            select(PaymentArrangement.account_id, PaymentArrangement.id, PaymentArrangement.made_date).where(
                PaymentArrangement.account_id.in_(scope),
                PaymentArrangement.status == "active",
                PaymentArrangement.made_date <= run_date,
                or_(PaymentArrangement.end_date.is_(None), PaymentArrangement.end_date >= run_date),
            )
        ):
            rows[account_id]["arrangement"] = (arr_id, made)
        # SB 998: the day a protected customer's payment plan defaulted (the CIS sends the plan as
        # status "defaulted" with end_date the day it defaulted); the latest one counts.
        for account_id, defaulted in db_session.execute(
            select(PaymentArrangement.account_id, func.max(PaymentArrangement.end_date))
            .where(
                PaymentArrangement.account_id.in_(scope),
                PaymentArrangement.status == "defaulted",
                PaymentArrangement.end_date <= run_date,
            )
            .group_by(PaymentArrangement.account_id)
        ):
            rows[account_id]["plan_defaulted_on"] = defaulted
        for account_id, kind, start, end in db_session.execute(
            select(
                ShutoffHold.account_id, ShutoffHold.kind, ShutoffHold.start_date, ShutoffHold.end_date
            ).where(
                ShutoffHold.account_id.in_(scope),
                or_(ShutoffHold.end_date.is_(None), ShutoffHold.end_date >= run_date),
            )
        ):
            rows[account_id]["holds"].append(Hold(kind, start, end))
        for account_id, kind, served in db_session.execute(
            select(ShutoffNotice.account_id, ShutoffNotice.kind, func.max(ShutoffNotice.served_at))
            .where(ShutoffNotice.account_id.in_(scope))
            .group_by(ShutoffNotice.account_id, ShutoffNotice.kind)
        ):
            key = "written" if kind == "written" else "final"
            rows[account_id][key] = served
        # A notice-delivery order the CSFR completed is a final notice posted.
        for account_id, done_at in db_session.execute(
            select(WorkOrder.account_id, func.max(WorkOrder.completed_at))
            .where(
                WorkOrder.account_id.in_(scope),
                WorkOrder.order_type == OrderType.NOTICE_DELIVERY.value,
                WorkOrder.status == OrderStatus.COMPLETED.value,
            )
            .group_by(WorkOrder.account_id)
        ):
            if done_at is not None and (
                rows[account_id]["final"] is None or done_at > rows[account_id]["final"]
            ):
                rows[account_id]["final"] = done_at
        for account_id, oid, otype, status, created, review in db_session.execute(
            select(
                WorkOrder.account_id,
                WorkOrder.id,
                WorkOrder.order_type,
                WorkOrder.status,
                WorkOrder.created_at,
                WorkOrder.review_hold,
            ).where(WorkOrder.account_id.in_(scope), WorkOrder.status.in_(OPEN))
        ):
            rows[account_id]["orders"].append(OpenOrder(oid, otype, status, created, review))
        # The latest exclusion from a shut-off list not lifted (one that ended lately is named when
        # the account is raised again).
        for ex in db_session.scalars(
            select(ShutoffExclusion)
            .where(
                ShutoffExclusion.account_id.in_(scope),
                ShutoffExclusion.lifted_at.is_(None),
                ShutoffExclusion.until_date >= run_date - dt.timedelta(days=EXCLUSION_RECALL_DAYS),
            )
            .order_by(ShutoffExclusion.id)
        ):
            rows[ex.account_id]["exclusion"] = exclusion_facts(ex)
    out = []
    for account_id in sorted(rows):
        row = rows[account_id]
        a: Account = row["account"]
        bal: Balance | None = row["balance"]
        out.append(
            AccountFacts(
                account_id=a.id,
                account_number=a.account_number,
                service_point_id=a.service_point_id,
                meter_id=row["meter_id"],
                status=a.status,
                service_class=a.service_class,
                occupied=a.occupied,
                low_income=row["low_income"],
                past_due_cents=bal.past_due_cents if bal else 0,
                oldest_past_due_date=bal.oldest_past_due_date if bal else None,
                balance_as_of=bal.as_of if bal else None,
                paid_since_cents=row["paid_since"],
                last_payment_at=row["last_payment"][0],
                last_payment_id=row["last_payment"][1],
                arrangement_id=row["arrangement"][0],
                arrangement_made=row["arrangement"][1],
                plan_defaulted_on=row["plan_defaulted_on"],
                holds=tuple(row["holds"]),
                written_notice_at=row["written"],
                final_notice_at=row["final"],
                open_orders=tuple(row["orders"]),
                balance_cents=bal.balance_cents if bal else 0,
                exclusion=row["exclusion"],
            )
        )
    return out


EXCLUSION_RECALL_DAYS = 7  # an exclusion that ran out is named on the account's next cut for a week


def exclusion_facts(ex: ShutoffExclusion) -> ExclusionFacts:
    """The rules' view of a stored exclusion."""
    return ExclusionFacts(
        exclusion_id=ex.id,
        batch_id=ex.batch_id,
        note=ex.note,
        excluded_by=ex.excluded_by,
        excluded_at=ex.excluded_at,
        until_date=ex.until_date,
        balance_cents=ex.balance_cents,
        past_due_cents=ex.past_due_cents,
        last_payment_id=ex.last_payment_id,
        lifted_at=ex.lifted_at,
        lifted_by=ex.lifted_by,
    )


def marked_days(db_session: Session, around: dt.date) -> list[tuple[dt.date, str]]:
    """Supervisor-marked no-shut-off days near `around`."""
    return [
        (d, r)
        for d, r in db_session.execute(
            select(NoShutoffDay.day, NoShutoffDay.reason).where(
                NoShutoffDay.day.between(around - dt.timedelta(days=31), around + dt.timedelta(days=31))
            )
        )
    ]


def move_facts(db_session: Session, policy: Policy, run_date: dt.date) -> list[MoveFacts]:
    """Pending move requests due within the lead time."""
    meter = current_meters()
    rows = db_session.execute(
        select(MoveRequest, meter.c.meter_id)
        .outerjoin(meter, meter.c.sp_id == MoveRequest.service_point_id)
        .where(
            MoveRequest.status == "pending",
            MoveRequest.requested_date <= run_date + dt.timedelta(days=policy.moves.lead_days),
        )
        .order_by(MoveRequest.requested_date, MoveRequest.id)
    )
    return [
        MoveFacts(
            request_id=m.id,
            cis_request_id=m.cis_request_id,
            kind=m.kind,
            requested_date=m.requested_date,
            service_point_id=m.service_point_id,
            account_id=m.account_id,
            customer_name=m.customer_name,
            meter_id=meter_id,
        )
        for m, meter_id in rows
    ]


def test_due_facts(db_session: Session, policy: Policy, run_date: dt.date) -> list[TestDueFacts]:
    """In-service meters whose periodic test may be due (the rule applies each size's interval),
    leaving out meters that already have an open meter test."""
    # Each size's latest test (or install) date that can be due by now, a day of slack for 29 February;
    # the rule decides exactly. Sizes are few: one CASE over the district's distinct sizes.
    sizes = list(db_session.scalars(select(Meter.size).distinct()))
    cutoff = {
        size: years_after(run_date, -policy.meter_test.interval_for(size)) + dt.timedelta(days=1)
        for size in sizes
    }
    cur = current_accounts()
    open_tests = select(WorkOrder.meter_id).where(
        WorkOrder.order_type == OrderType.METER_TEST.value,
        WorkOrder.status.in_(OPEN),
        WorkOrder.meter_id.is_not(None),
    )
    since = func.coalesce(Meter.last_test_date, Meter.install_date)
    due_by = (
        case(*((Meter.size == size, day) for size, day in cutoff.items()), else_=None) if cutoff else None
    )
    rows = db_session.execute(
        select(
            Meter.id,
            Meter.serial,
            Meter.size,
            Meter.service_point_id,
            cur.c.account_id,
            Meter.last_test_date,
            Meter.install_date,
        )
        .outerjoin(cur, cur.c.sp_id == Meter.service_point_id)
        .where(
            Meter.status == "in_service",
            Meter.service_point_id.is_not(None),
            since <= due_by if due_by is not None else literal(False),
            Meter.id.not_in(open_tests),
        )
    )
    return [TestDueFacts(*row) for row in rows]


def open_periodic_tests(db_session: Session) -> int:
    """How many periodic meter tests are open now (the rule keeps under the policy's ceiling)."""
    return (
        db_session.scalar(
            select(func.count())
            .select_from(WorkOrder)
            .where(WorkOrder.status.in_(OPEN), WorkOrder.idempotency_key.like("meter_test:periodic:%"))
        )
        or 0
    )


def test_request_facts(db_session: Session) -> list[TestRequestFacts]:
    rows = db_session.execute(
        select(MeterTestRequest, Meter.service_point_id)
        .join(Meter, Meter.id == MeterTestRequest.meter_id)
        .where(MeterTestRequest.status == "pending", Meter.service_point_id.is_not(None))
        .order_by(MeterTestRequest.id)
    )
    return [
        TestRequestFacts(
            request_id=r.id,
            meter_id=r.meter_id,
            service_point_id=sp,
            account_id=r.account_id,
            requested_at=r.requested_at,
            requested_by=r.requested_by,
            note=r.note,
        )
        for r, sp in rows
    ]


def completed_test_facts(db_session: Session, run_date: dt.date) -> list[CompletedTestFacts]:
    """Meter tests completed in the last year with no change-out raised from them yet."""
    exchanged = select(WorkOrder.idempotency_key).where(
        WorkOrder.order_type == OrderType.METER_EXCHANGE.value
    )
    done = {k for k in db_session.scalars(exchanged)}
    since = dt.datetime.combine(run_date - dt.timedelta(days=366), dt.time(), tzinfo=dt.UTC)
    rows = db_session.execute(
        select(
            WorkOrder.id,
            WorkOrder.meter_id,
            WorkOrder.service_point_id,
            WorkOrder.account_id,
            WorkOrder.completed_at,
            WorkOrder.outcome,
        ).where(
            WorkOrder.order_type == OrderType.METER_TEST.value,
            WorkOrder.status == OrderStatus.COMPLETED.value,
            WorkOrder.completed_at >= since,
        )
    )
    return [
        CompletedTestFacts(oid, meter, sp, acct, at, outcome or {})
        for oid, meter, sp, acct, at, outcome in rows
        if f"meter_exchange:test:{oid}" not in done
    ]


def by_account(facts: Iterable[MeterFacts]) -> dict[int, list[MeterFacts]]:
    out: dict[int, list[MeterFacts]] = defaultdict(list)
    for f in facts:
        if f.account_id is not None:
            out[f.account_id].append(f)
    return out
