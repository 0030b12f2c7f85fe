"""Run the order-generation rules for a day: gather facts, decide, apply, and record why.

A run is idempotent: every order carries a key derived from what caused it (the read, the request,
the account and day), so a second run finds the orders of the first and creates nothing twice. A run
is applied in the caller's transaction: it lands whole or not at all. Every decision, including each
account held back from a shut-off and the reason, is kept as a GenerationDecision for review.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from contracts.codes import OrderStatus, OrderType, Skill
from server.accounts.models import Account, MoveRequest
from server.audit.models import AuditEvent
from server.db import bulk_insert, copy_rows, utcnow
from server.meters.models import Meter, MeterRead
from server.orders import facts as F
from server.orders import lifecycle
from server.orders.calendar import Calendar
from server.orders.lifecycle import LifecycleError, Via
from server.orders.models import (
    GenerationDecision,
    GenerationRun,
    MeterTestRequest,
    ShutoffBatch,
    WorkOrder,
)
from server.orders.policy import Policy
from server.orders.rules import billing, reads
from server.orders.rules import field as field_rules
from server.orders.rules.base import Decision, Outcome, Rule

log = logging.getLogger("curbstop.orders")

# Pull before shut-off (a paid account must not be cut), restores early (a customer is without water).
RULE_ORDER: tuple[Rule, ...] = (
    Rule.PULL,
    Rule.RESTORE,
    Rule.SHUTOFF,
    Rule.MOVES,
    Rule.REREAD,
    Rule.LEAK,
    Rule.THEFT,
    Rule.METER_TEST,
    Rule.CHANGE_OUT,
)
READ_RULES = {Rule.REREAD, Rule.LEAK, Rule.THEFT, Rule.METER_TEST}
BILLING_RULES = {Rule.PULL, Rule.RESTORE, Rule.SHUTOFF}
Progress = Callable[[int, int, str], None]


@dataclass
class Applied:
    """A decision and what became of it (the order made, found or cancelled)."""

    decision: Decision
    outcome: Outcome
    order_id: int | None = None


@dataclass
class RunResult:
    run_id: int | None
    run_date: dt.date
    rules: list[Rule]
    dry_run: bool
    applied: list[Applied] = field(default_factory=list)
    batch_id: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for a in self.applied:
            out[a.decision.rule.value][a.outcome.value] += a.decision.count
        return {rule: dict(c) for rule, c in sorted(out.items())}


def parse_rules(names: Sequence[str] | None) -> list[Rule]:
    """Rule names (or all) in their run order; ValueError naming an unknown one."""
    if not names:
        return list(RULE_ORDER)
    known = {r.value: r for r in Rule}
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(
            f"unknown rule {', '.join(bad)}; rules are: {', '.join(r.value for r in RULE_ORDER)}"
        )
    wanted = {known[n] for n in names}
    return [r for r in RULE_ORDER if r in wanted]


def evaluate(
    db_session: Session,
    *,
    policy: Policy,
    run_date: dt.date,
    rules: Sequence[Rule],
    zone: ZoneInfo,
    account_ids: Collection[int] | None = None,
    meter_ids: Collection[int] | None = None,
    progress: Progress | None = None,
    seconds: dict[str, float] | None = None,
    verdicts: list[tuple[int, str, str]] | None = None,
) -> list[Decision]:
    """Every rule's decisions for `run_date` (nothing is written). `account_ids`/`meter_ids` narrow the
    facts to some accounts or meters (the "why" view and tests)."""
    timings = seconds if seconds is not None else {}
    decisions: list[Decision] = []
    cal = Calendar.of(policy.calendar, F.marked_days(db_session, run_date))
    total = len(rules)

    def step(i: int, rule: Rule) -> None:
        if progress:
            progress(i, total, f"rule {rule.value}")

    meters: list[reads.MeterFacts] | None = None
    accounts: list[billing.AccountFacts] | None = None
    for i, rule in enumerate(rules):
        step(i, rule)
        started = time.perf_counter()
        if rule in READ_RULES and meters is None:
            mids = meter_ids
            if account_ids is not None and mids is None:
                mids = set(
                    db_session.scalars(
                        select(Meter.id)
                        .join(Account, Account.service_point_id == Meter.service_point_id)
                        .where(Account.id.in_(list(account_ids)))
                    )
                )
            meters = F.meter_facts(db_session, policy, run_date, meter_ids=mids)
            timings["facts.meters"] = time.perf_counter() - started
            started = time.perf_counter()
        if rule in BILLING_RULES and accounts is None:
            accounts = F.account_facts(db_session, policy, run_date, account_ids=account_ids)
            timings["facts.accounts"] = time.perf_counter() - started
            started = time.perf_counter()
        if rule is Rule.PULL:
            for acct in accounts or ():
                decisions.extend(billing.pull_rule(acct, policy, run_date))
        elif rule is Rule.RESTORE:
            decisions.extend(
                d for acct in accounts or () if (d := billing.restore_rule(acct, policy, cal, run_date, zone))
            )
        elif rule is Rule.SHUTOFF:
            pulled = {d.account_id for d in decisions if d.rule is Rule.PULL}
            for acct in accounts or ():
                if acct.account_id in pulled:
                    continue
                d = billing.shutoff_rule(acct, policy, cal, run_date, zone)
                if d is not None:
                    decisions.append(d)
        elif rule is Rule.MOVES:
            for move in F.move_facts(db_session, policy, run_date):
                if account_ids is not None and move.account_id not in account_ids:
                    continue
                d = field_rules.move_rule(move, policy, run_date)
                if d is not None:
                    decisions.append(d)
        elif rule is Rule.REREAD:
            decisions.extend(d for m in meters or () if (d := reads.reread_rule(m, policy, run_date, zone)))
            if verdicts is not None:
                for m in meters or ():
                    if m.intervals and not m.intervals[0].validated:
                        v = reads.verdict_for(m, policy)
                        if v is not None:
                            verdicts.append((m.intervals[0].read_id, v.validation, v.reason[:200]))
        elif rule is Rule.LEAK:
            decisions.extend(d for m in meters or () if (d := reads.leak_rule(m, policy, run_date)))
        elif rule is Rule.THEFT:
            decisions.extend(d for m in meters or () if (d := reads.theft_rule(m, policy, run_date)))
        elif rule is Rule.METER_TEST:
            tests = [d for m in meters or () if (d := reads.zero_use_rule(m, policy))]
            for req in F.test_request_facts(db_session):
                if account_ids is None or req.account_id in account_ids:
                    tests.append(field_rules.requested_test_rule(req))
            taken = {d.meter_id for d in tests}
            due = [m for m in F.test_due_facts(db_session, policy, run_date) if m.meter_id not in taken]
            if account_ids is not None:
                due = [m for m in due if m.account_id in account_ids]
            tests.extend(
                field_rules.periodic_test_rule(
                    due,
                    policy,
                    run_date,
                    open_periodic=F.open_periodic_tests(db_session),
                    # A district run records the meters waiting under the ceiling as one count.
                    itemize_waiting=account_ids is not None or meter_ids is not None,
                    per_day=periodic_tests_per_day(db_session=db_session, policy=policy),
                    days=_business_days(policy, run_date, 23),
                )
            )
            decisions.extend(tests)
        elif rule is Rule.CHANGE_OUT:
            for test in F.completed_test_facts(db_session, run_date):
                if account_ids is None or test.account_id in account_ids:
                    d = field_rules.change_out_rule(test, policy)
                    if d is not None:
                        decisions.append(d)
        timings[rule.value] = timings.get(rule.value, 0.0) + time.perf_counter() - started
    if progress:
        progress(total, total, "rules evaluated")
    return _dedupe(decisions)


def _dedupe(decisions: list[Decision]) -> list[Decision]:
    """One order per key, and one open order per meter and type (a zero-use test and a periodic test
    on the same meter are one visit): the first decision wins, in rule order."""
    seen_keys: set[str] = set()
    seen_visit: set[tuple[str, int]] = set()
    out = []
    for d in decisions:
        if d.order is not None:
            if d.order.key in seen_keys:
                continue
            seen_keys.add(d.order.key)
            if d.order.meter_id is not None and d.order.order_type is OrderType.METER_TEST:
                visit = (d.order.order_type.value, d.order.meter_id)
                if visit in seen_visit:
                    continue
                seen_visit.add(visit)
        out.append(d)
    return out


def _existing_orders(db_session: Session, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for i in range(0, len(keys), F.CHUNK):
        chunk = keys[i : i + F.CHUNK]
        rows = db_session.execute(
            select(WorkOrder.idempotency_key, WorkOrder.id).where(WorkOrder.idempotency_key.in_(chunk))
        )
        found.update({key: oid for key, oid in rows})
    return found


def _open_visits(db_session: Session, meter_ids: set[int]) -> dict[tuple[str, int], int]:
    """Open orders by (type, meter): a rule does not send a second CSFR for the same thing."""
    found: dict[tuple[str, int], int] = {}
    for chunk in F._chunks(meter_ids):
        for oid, otype, mid in db_session.execute(
            select(WorkOrder.id, WorkOrder.order_type, WorkOrder.meter_id).where(
                WorkOrder.meter_id.in_(chunk), WorkOrder.status.in_(F.OPEN)
            )
        ):
            found.setdefault((otype, mid), oid)
    return found


def run(
    db_session: Session,
    *,
    policy: Policy,
    run_date: dt.date,
    zone: ZoneInfo,
    rules: Sequence[Rule] | None = None,
    dry_run: bool = False,
    actor: str = "system",
    job_id: int | None = None,
    progress: Progress | None = None,
    meter_ids: Collection[int] | None = None,
) -> RunResult:
    """Evaluate and (unless `dry_run`) apply the rules; record the run and its decisions.

    The caller commits. Nothing is half-applied: an error raises before the caller's commit.
    """
    chosen = list(rules) if rules else list(RULE_ORDER)
    run_row = GenerationRun(
        run_date=run_date,
        rules=[r.value for r in chosen],
        dry_run=dry_run,
        actor=actor,
        job_id=job_id,
        policy_source=policy.source[:200],
    )
    db_session.add(run_row)
    db_session.flush()
    result = RunResult(run_id=run_row.id, run_date=run_date, rules=chosen, dry_run=dry_run)
    verdicts: list[tuple[int, str, str]] = []
    decisions = evaluate(
        db_session,
        policy=policy,
        run_date=run_date,
        rules=chosen,
        zone=zone,
        progress=progress,
        seconds=result.seconds,
        verdicts=verdicts,
        meter_ids=meter_ids,
    )
    started = time.perf_counter()
    result.applied, result.batch_id = apply(
        db_session,
        decisions,
        policy=policy,
        run_date=run_date,
        actor=actor,
        dry_run=dry_run,
        run_id=run_row.id,
    )
    if not dry_run:
        write_validation(db_session, verdicts)
    result.seconds["apply"] = time.perf_counter() - started
    run_row.counts = result.counts
    run_row.status = "succeeded"
    run_row.finished_at = utcnow()
    db_session.flush()
    return result


def apply(
    db_session: Session,
    decisions: Sequence[Decision],
    *,
    policy: Policy,
    run_date: dt.date,
    actor: str,
    dry_run: bool,
    run_id: int | None,
) -> tuple[list[Applied], int | None]:
    """Create, find or cancel what the decisions say; return each decision's fate and the shut-off batch."""
    creates = [d for d in decisions if d.outcome is Outcome.CREATE and d.order is not None]
    existing = _existing_orders(db_session, [d.order.key for d in creates if d.order])
    visits = _open_visits(db_session, {d.order.meter_id for d in creates if d.order and d.order.meter_id})
    applied: list[Applied] = []
    to_insert: list[Decision] = []
    for d in decisions:
        if d.outcome is Outcome.CREATE and d.order is not None:
            if d.order.key in existing:
                applied.append(Applied(d, Outcome.EXISTING, existing[d.order.key]))
                continue
            same = visits.get((d.order.order_type.value, d.order.meter_id)) if d.order.meter_id else None
            if same is not None:
                applied.append(
                    Applied(
                        Decision(
                            d.rule,
                            Outcome.EXISTING,
                            f"{d.reason} (order {same} is already open for it)",
                            account_id=d.account_id,
                            meter_id=d.meter_id,
                            order=d.order,
                        ),
                        Outcome.EXISTING,
                        same,
                    )
                )
                continue
            to_insert.append(d)
            applied.append(Applied(d, Outcome.CREATE))
        else:
            applied.append(Applied(d, d.outcome, d.cancel_order_id))
    if dry_run:
        _record_decisions(db_session, applied, run_id)
        return applied, None

    batch_id = None
    # The day's list: new shut-offs to review; a day with none still gets one list that shows the
    # accounts an exclusion keeps off it.
    if any(d.order and d.order.needs_review for d in to_insert) or (
        any(d.outcome is Outcome.EXCLUDED for d in decisions)
        and db_session.scalar(select(ShutoffBatch.id).where(ShutoffBatch.service_date == run_date).limit(1))
        is None
    ):
        batch = ShutoffBatch(service_date=run_date, run_id=run_id)
        db_session.add(batch)
        db_session.flush()
        batch_id = batch.id
    ids = _insert_orders(db_session, to_insert, policy=policy, actor=actor, batch_id=batch_id, run_id=run_id)
    for a in applied:
        if a.outcome is Outcome.CREATE and a.decision.order is not None:
            a.order_id = ids[a.decision.order.key]
    _mark_sources(db_session, applied)
    for a in applied:
        if a.outcome is not Outcome.CANCEL or a.order_id is None:
            continue
        why_not = refusal(db_session, a.order_id, reason=a.decision.reason, actor=actor)
        if why_not is not None:
            # It moved on (completed) before the pull: nothing to cancel; the decision says why.
            a.outcome = Outcome.EXISTING
            a.decision = dataclasses.replace(
                a.decision, reason=f"{a.decision.reason} (not cancelled: {why_not})"
            )
    _record_decisions(db_session, applied, run_id)
    return applied, batch_id


def _insert_orders(
    db_session: Session,
    decisions: Sequence[Decision],
    *,
    policy: Policy,
    actor: str,
    batch_id: int | None,
    run_id: int | None,
) -> dict[str, int]:
    if not decisions:
        return {}
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for d in decisions:
        spec = d.order
        assert spec is not None
        defaults = policy.order_defaults(spec.order_type)
        rows.append(
            {
                "order_type": spec.order_type.value,
                "status": OrderStatus.NEW.value,
                "priority": defaults.priority.value,
                "account_id": spec.account_id,
                "service_point_id": spec.service_point_id,
                "meter_id": spec.meter_id,
                "scheduled_date": spec.scheduled_date,
                "window_start": spec.window_start,
                "window_end": spec.window_end,
                "required_skills": sorted(s.value for s in defaults.skills),
                "estimated_minutes": defaults.minutes,
                "rule": f"{d.rule.value}",
                "reason": d.reason,
                "idempotency_key": spec.key,
                "notes": "",
                "locked": False,
                "status_reason": "",
                "outcome": {},
                "created_by": actor,
                "created_at": now,
                "updated_at": now,
                "review_hold": (f"awaiting review in shut-off batch {batch_id}" if spec.needs_review else ""),
                "batch_id": batch_id if spec.needs_review else None,
                "version": 1,
            }
        )
    if db_session.get_bind().dialect.name == "postgresql":
        # COPY, then one look-up of the new ids by their keys: much faster than INSERT ... RETURNING
        # in batches for thousands of orders.
        copy_rows(db_session, WorkOrder.__table__, rows)
        ids = _existing_orders(db_session, [r["idempotency_key"] for r in rows])
    else:
        ids = {}
        for i in range(0, len(rows), 2000):
            result = db_session.execute(
                insert(WorkOrder).returning(
                    WorkOrder.id, WorkOrder.idempotency_key, sort_by_parameter_order=True
                ),
                rows[i : i + 2000],
            )
            ids.update({key: oid for oid, key in result})
    bulk_insert(
        db_session,
        AuditEvent.__table__,
        [
            {
                "actor": actor,
                "action": "created",
                "entity_type": "work_order",
                "entity_id": str(ids[d.order.key]),
                "detail": {
                    "order_type": d.order.order_type.value,
                    "rule": d.rule.value,
                    "run_id": run_id,
                    "idempotency_key": d.order.key,
                },
                "at": now,
            }
            for d in decisions
            if d.order is not None
        ],
    )
    return ids


def _mark_sources(db_session: Session, applied: Sequence[Applied]) -> None:
    """Move and meter-test requests that now have their order are no longer pending."""
    for a in applied:
        d = a.decision
        if d.source_id is None or a.order_id is None or a.outcome not in (Outcome.CREATE, Outcome.EXISTING):
            continue
        if d.rule is Rule.MOVES:
            db_session.execute(
                update(MoveRequest).where(MoveRequest.id == d.source_id).values(status="ordered")
            )
        elif d.rule is Rule.METER_TEST:
            db_session.execute(
                update(MeterTestRequest)
                .where(MeterTestRequest.id == d.source_id)
                .values(status="ordered", order_id=a.order_id)
            )


def _record_decisions(db_session: Session, applied: Sequence[Applied], run_id: int | None) -> None:
    if run_id is None or not applied:
        return
    rows = [
        {
            "run_id": run_id,
            "rule": a.decision.rule.value,
            "outcome": a.outcome.value,
            "account_id": a.decision.account_id,
            "meter_id": a.decision.meter_id,
            "order_id": a.order_id,
            "order_type": a.decision.order.order_type.value if a.decision.order else "",
            "reason": a.decision.reason,
        }
        for a in applied
    ]
    bulk_insert(db_session, GenerationDecision.__table__, rows)


def write_validation(db_session: Session, verdicts: Sequence[tuple[int, str, str]]) -> None:
    """Record each newly validated read's class and reason (one statement on PostgreSQL)."""
    if not verdicts:
        return
    if db_session.get_bind().dialect.name == "postgresql":
        for i in range(0, len(verdicts), 50_000):
            chunk = verdicts[i : i + 50_000]
            db_session.execute(
                text(
                    "UPDATE meter_reads SET validation = v.validation, validation_reason = v.reason "
                    "FROM unnest(CAST(:ids AS bigint[]), CAST(:vals AS text[]), CAST(:reasons AS text[])) "
                    "AS v(id, validation, reason) WHERE meter_reads.id = v.id"
                ),
                {
                    "ids": [v[0] for v in chunk],
                    "vals": [v[1] for v in chunk],
                    "reasons": [v[2] for v in chunk],
                },
            )
        return
    db_session.execute(
        update(MeterRead.__table__)
        .where(MeterRead.__table__.c.id == bindparam("rid"))
        .values(validation=bindparam("val"), validation_reason=bindparam("why")),
        [{"rid": rid, "val": val, "why": why} for rid, val, why in verdicts],
    )


def cancel(db_session: Session, order_id: int, *, reason: str, actor: str, via: Via = Via.GENERATION) -> bool:
    """Cancel an open order with `reason` through the lifecycle (a dispatched one too: the publisher
    tells the tablet).

    Returns False when the order is gone or has already closed (a cut already done is then a restore's
    business); `refusal` says why.
    """
    return refusal(db_session, order_id, reason=reason, actor=actor, via=via) is None


def refusal(
    db_session: Session, order_id: int, *, reason: str, actor: str, via: Via = Via.GENERATION
) -> str | None:
    """Cancel the order like `cancel`; None when it was cancelled, else the lifecycle's reason why not."""
    order = db_session.get(WorkOrder, order_id)
    if order is None:
        return f"order {order_id} does not exist"
    try:
        lifecycle.cancel(db_session=db_session, order=order, actor=actor, via=via, reason=reason)
    except LifecycleError as exc:
        return exc.reason
    db_session.flush()
    return None


def periodic_tests_per_day(*, db_session: Session, policy: Policy) -> int:
    """How many periodic meter tests to schedule a day: `meter_test.periodic_share` of the active
    testers' shift hours (less lunch and a quarter for driving) over a test's minutes; 0 (all on the
    run date) when nobody has the skill."""
    from server.technicians.models import Technician

    minutes = policy.order_defaults(OrderType.METER_TEST).minutes
    testers = [
        t
        for t in db_session.scalars(select(Technician).where(Technician.active.is_(True)))
        if Skill.METER_TEST.value in (t.skills or [])
    ]
    work_min = sum(
        max(
            0.0,
            (t.shift_end.hour * 60 + t.shift_end.minute)
            - (t.shift_start.hour * 60 + t.shift_start.minute)
            - t.break_minutes,
        )
        * 0.75
        for t in testers
    )
    return int(work_min * policy.meter_test.periodic_share // max(1, minutes))


def _business_days(policy: Policy, start: dt.date, count: int) -> list[dt.date]:
    """`start` and the business days after it, `count` in all."""
    calendar = Calendar.of(policy.calendar)
    days = [start]
    while len(days) < count:
        days.append(calendar.next_business_day(days[-1]))
    return days
