"""Order generation against a real database (SQLite and PostgreSQL): facts, runs, idempotency,
the shut-off batch, pulls after dispatch, the API and the job."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from contracts.codes import OrderStatus, Role
from server.accounts.models import Balance, MoveRequest, Payment, PaymentArrangement, ShutoffNotice
from server.meters.models import MeterRead
from server.orders import facts as F
from server.orders import generation, review
from server.orders.models import GenerationDecision, ShutoffBatch, WorkOrder
from server.orders.policy import load_policy
from server.orders.rules import reads
from server.orders.rules.base import Rule

ZONE = ZoneInfo("America/Los_Angeles")
POLICY = load_policy()
DAY = dt.date(2026, 11, 17)  # a Tuesday


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=ZONE)


def monthly_reads(
    db_session, meter, uses, *, start=1000.0, top=None, last_day=DAY - dt.timedelta(days=2), codes=None
):
    """Reads a month apart ending on `last_day`; uses[i] is the use up to read i+1."""
    n = len(uses) + 1
    reading = start
    rows = []
    for i in range(n):
        months_back = n - 1 - i
        y, m = last_day.year, last_day.month - months_back
        while m <= 0:
            y, m = y - 1, m + 12
        when = at(dt.date(y, m, min(last_day.day, 28)))
        if i > 0:
            reading += uses[i - 1]
            if top:
                reading %= top
        row = MeterRead(
            meter_id=meter.id, read_at=when, reading=reading, source="cis", read_code=(codes or {}).get(i, "")
        )
        db_session.add(row)
        rows.append(row)
    db_session.flush()
    return rows


def _delinquent(db_session, account):
    """$120 past due for 75 days, with a written notice served two weeks ago."""
    db_session.add(
        Balance(
            account_id=account.id,
            balance_cents=15_000,
            past_due_cents=12_000,
            oldest_past_due_date=DAY - dt.timedelta(days=75),
            as_of=at(DAY - dt.timedelta(days=1), 6),
        )
    )
    db_session.add(
        ShutoffNotice(
            cis_notice_id=f"W{account.id}",
            account_id=account.id,
            kind="written",
            served_at=at(DAY - dt.timedelta(days=14)),
        )
    )


@pytest.fixture
def world(db_session, make_account, make_meter):
    """Accounts that each rule should act on, and some that it must leave alone."""
    w = {}
    # A: steady use, then a very high read two days ago -> reread.
    w["high"] = a = make_account()
    m = make_meter(service_point_id=a.service_point_id)
    w["high_reads"] = monthly_reads(db_session, m, [100.0] * 35 + [900.0])
    w["high_meter"] = m
    # B: two zero intervals on an occupied account -> reread and a meter test.
    w["stuck"] = a = make_account()
    m = make_meter(service_point_id=a.service_point_id)
    monthly_reads(db_session, m, [100.0] * 34 + [0.0, 0.0])
    w["stuck_meter"] = m
    # C: a 6-dial register rolling over with normal use -> nothing.
    w["roll"] = a = make_account()
    m = make_meter(service_point_id=a.service_point_id, dials=6)
    monthly_reads(db_session, m, [100.0] * 36, start=1_000_000 - 100 * 35 - 20, top=1_000_000)
    w["roll_meter"] = m
    # D: delinquent 75 days, notices served -> on the shut-off list.
    w["cut"] = a = make_account()
    w["cut_meter"] = make_meter(service_point_id=a.service_point_id)
    _delinquent(db_session, a)
    db_session.add(
        ShutoffNotice(
            cis_notice_id=f"F{a.id}", account_id=a.id, kind="final", served_at=at(DAY - dt.timedelta(days=3))
        )
    )
    # E: delinquent but with an arrangement made today -> held, with the reason.
    w["plan"] = a = make_account()
    _delinquent(db_session, a)
    db_session.add(PaymentArrangement(cis_arrangement_id=f"PA{a.id}", account_id=a.id, made_date=DAY))
    # F: a move-in tomorrow.
    w["move"] = a = make_account()
    db_session.add(
        MoveRequest(
            cis_request_id=f"MR{a.id}",
            service_point_id=a.service_point_id,
            account_id=a.id,
            kind="move_in",
            requested_date=DAY + dt.timedelta(days=1),
            customer_name="Ana",
        )
    )
    db_session.flush()
    return w


def run(db_session, day=DAY, rules=None, dry_run=False):
    result = generation.run(
        db_session, policy=POLICY, run_date=day, zone=ZONE, rules=rules, dry_run=dry_run, actor="test"
    )
    db_session.flush()
    return result


def orders_for(db_session, account):
    return db_session.scalars(
        select(WorkOrder).where(WorkOrder.account_id == account.id).order_by(WorkOrder.id)
    ).all()


def test_set_based_facts_agree_with_the_python_rules(db_session, world):
    """Interval use, rollover and seasonal norm from SQL equal the pure functions on the same reads."""
    facts = {f.meter_id: f for f in F.meter_facts(db_session, POLICY, DAY)}
    roll = facts[world["roll_meter"].id]
    history = [
        (r.read_at, float(r.reading))
        for r in db_session.scalars(
            select(MeterRead).where(MeterRead.meter_id == world["roll_meter"].id).order_by(MeterRead.read_at)
        )
    ]
    latest = roll.intervals[0]
    norm, n = reads.seasonal_norm(history, latest.read_at, dials=6, decimals=0, max_fraction=0.5)
    assert (
        latest.use == pytest.approx(100.0)
        and latest.norm == pytest.approx(norm)
        and latest.norm_count == n == 2
    )
    assert all(iv.use == pytest.approx(100.0) for iv in roll.intervals)
    # The register did roll over in this history, and the SQL norm (which spans it) still averages 100.
    assert any(
        reads.interval_use(a[1], b[1], dials=6, decimals=0, max_fraction=0.5)[1]
        for a, b in itertools.pairwise(history)
    )
    high = facts[world["high_meter"].id]
    assert high.intervals[0].use == pytest.approx(900.0) and high.intervals[0].norm == pytest.approx(100.0)
    assert reads.verdict_for(high, POLICY).validation == "very_high"
    assert reads.verdict_for(roll, POLICY).validation in ("ok", "rollover")


def test_a_run_creates_the_right_orders_and_a_second_run_nothing(db_session, world):
    first = run(db_session)
    high = orders_for(db_session, world["high"])
    assert [o.order_type for o in high] == ["reread"] and "over 4 times the seasonal norm" in high[0].reason
    assert high[0].rule == "reread" and high[0].idempotency_key == f"reread:read:{world['high_reads'][-1].id}"
    assert sorted(o.order_type for o in orders_for(db_session, world["stuck"])) == ["meter_test", "reread"]
    assert orders_for(db_session, world["roll"]) == []
    (cut,) = orders_for(db_session, world["cut"])
    assert (
        cut.order_type == "shut_off_nonpay"
        and cut.batch_id == first.batch_id
        and "awaiting review" in cut.review_hold
    )
    assert orders_for(db_session, world["plan"]) == []
    held = db_session.scalars(
        select(GenerationDecision).where(
            GenerationDecision.run_id == first.run_id, GenerationDecision.account_id == world["plan"].id
        )
    ).all()
    assert [(d.rule, d.outcome) for d in held] == [("shutoff", "hold")] and "arrangement" in held[0].reason
    (turn_on,) = orders_for(db_session, world["move"])
    assert turn_on.order_type == "turn_on" and turn_on.scheduled_date == DAY + dt.timedelta(days=1)
    assert (
        db_session.scalar(select(MoveRequest.status).where(MoveRequest.account_id == world["move"].id))
        == "ordered"
    )
    # The newest reads are validated and say why.
    db_session.refresh(world["high_reads"][-1])
    assert world["high_reads"][-1].validation == "very_high"

    count = db_session.scalar(select(func.count()).select_from(WorkOrder))
    second = run(db_session)
    assert db_session.scalar(select(func.count()).select_from(WorkOrder)) == count
    assert all("create" not in c for c in second.counts.values()), second.counts
    assert second.batch_id is None


def test_dry_run_writes_no_orders_but_records_decisions(db_session, world):
    result = run(db_session, dry_run=True)
    assert db_session.scalar(select(func.count()).select_from(WorkOrder)) == 0
    assert result.counts["shutoff"]["create"] == 1
    assert db_session.scalar(
        select(func.count()).select_from(GenerationDecision).where(GenerationDecision.run_id == result.run_id)
    ) == len(result.applied)


def test_shutoffs_wait_for_review_then_a_payment_after_dispatch_pulls_them(
    db_session, world, make_technician
):
    result = run(db_session, rules=[Rule.SHUTOFF])
    batch = db_session.get(ShutoffBatch, result.batch_id)
    (cut,) = orders_for(db_session, world["cut"])
    from server.auth.service import Principal
    from server.orders import service as orders
    from server.orders.schemas import OrderTransition

    tech = make_technician(skills=["turn_on_off"])
    cut.technician_id = tech.id
    boss = Principal(name="boss", role=Role.DISPATCHER)
    with pytest.raises(Exception) as refused:
        orders.transition(
            db_session=db_session, order=cut, body=OrderTransition(to=OrderStatus.ASSIGNED), principal=boss
        )
    assert "awaiting review" in str(
        refused.value.detail if hasattr(refused.value, "detail") else refused.value
    )
    out = review.approve_batch(
        db_session, batch, exclude=[], note="ok", actor="sup", policy=POLICY, today=DAY
    )
    assert out["released"] == [cut.id] and cut.review_hold == "" and batch.status == "approved"
    orders.transition(
        db_session=db_session, order=cut, body=OrderTransition(to=OrderStatus.ASSIGNED), principal=boss
    )
    orders.transition(
        db_session=db_session, order=cut, body=OrderTransition(to=OrderStatus.DISPATCHED), principal=boss
    )
    db_session.flush()
    version = cut.version
    # The customer pays at 09:00 on the day of the cut, after the order reached the tablet.
    db_session.add(
        Payment(cis_payment_id="P-late", account_id=world["cut"].id, amount_cents=12_000, paid_at=at(DAY, 9))
    )
    db_session.flush()
    pulled = run(db_session, rules=[Rule.PULL])
    assert pulled.counts == {"pull": {"cancel": 1}}
    db_session.refresh(cut)
    assert cut.status == "cancelled" and "under the $50.00 threshold" in cut.status_reason
    assert cut.technician_id == tech.id and cut.version > version  # the publisher sends the cancellation


def test_batch_approval_rechecks_and_excludes(db_session, world, make_account):
    result = run(db_session, rules=[Rule.SHUTOFF])
    batch = db_session.get(ShutoffBatch, result.batch_id)
    (cut,) = orders_for(db_session, world["cut"])
    db_session.add(
        PaymentArrangement(cis_arrangement_id="PA-late", account_id=world["cut"].id, made_date=DAY)
    )
    db_session.flush()
    out = review.approve_batch(db_session, batch, exclude=[], note="", actor="sup", policy=POLICY, today=DAY)
    assert out["pulled"] == [cut.id] and cut.status == "cancelled" and "arrangement" in cut.status_reason


def test_no_shutoff_day_holds_the_list(db_session, world):
    from server.orders.models import NoShutoffDay

    db_session.add(NoShutoffDay(day=DAY, reason="heat advisory: 106 F", marked_by="sup"))
    db_session.flush()
    result = run(db_session, rules=[Rule.SHUTOFF])
    assert result.batch_id is None and orders_for(db_session, world["cut"]) == []
    reasons = [a.decision.reason for a in result.applied if a.decision.account_id == world["cut"].id]
    assert len(reasons) == 1 and "heat advisory" in reasons[0]


def test_why_explains_every_rule_for_one_account(db_session, world):
    out = review.explain_account(db_session, world["plan"].id, run_date=DAY, policy=POLICY)
    assert (
        out["rules"]["shutoff"][0]["outcome"] == "hold"
        and "arrangement" in out["rules"]["shutoff"][0]["reason"]
    )
    assert out["rules"]["reread"][0]["outcome"] == "none"
    high = review.explain_account(db_session, world["high"].id, run_date=DAY, policy=POLICY)
    assert high["read_validation"][0]["validation"] == "very_high"


def test_api_runs_a_job_lists_runs_and_checks_roles(client, login, db_session, world):
    dispatcher = login(Role.DISPATCHER)
    csfr = login(Role.CSFR)
    assert (
        client.post("/api/order-generation/runs", json={"date": DAY.isoformat()}, headers=csfr).status_code
        == 403
    )
    bad = client.post("/api/order-generation/runs", json={"rules": ["shutof"]}, headers=dispatcher)
    assert bad.status_code == 422 and "rules" in bad.text
    accepted = client.post(
        "/api/order-generation/runs", json={"date": DAY.isoformat(), "dry_run": True}, headers=dispatcher
    )
    assert accepted.status_code == 202 and accepted.json()["status_url"].startswith("/api/jobs/")
    # Run the work here, in the test's transaction, as the job handler would.
    result = run(db_session)
    runs = client.get("/api/order-generation/runs", headers=dispatcher).json()
    assert runs[0]["id"] == result.run_id and runs[0]["counts"]["shutoff"]["create"] == 1
    page = client.get(
        f"/api/order-generation/runs/{result.run_id}/decisions?rule=shutoff&outcome=hold", headers=dispatcher
    ).json()
    assert page["total"] >= 1 and all(d["outcome"] == "hold" for d in page["items"])
    why = client.get(f"/api/accounts/{world['plan'].id}/why?date={DAY}", headers=dispatcher)
    assert why.status_code == 200 and why.json()["rules"]["shutoff"][0]["outcome"] == "hold"
    assert client.get(f"/api/accounts/{world['plan'].id}/why", headers=csfr).status_code == 403
    # Only a supervisor releases a shut-off list.
    assert (
        client.post(
            f"/api/shutoff-batches/{result.batch_id}/approve", json={}, headers=dispatcher
        ).status_code
        == 403
    )
    sup = login(Role.SUPERVISOR)
    detail = client.post(
        f"/api/shutoff-batches/{result.batch_id}/approve",
        json={"exclude": [{"account_id": 999999, "note": "paying Monday"}]},
        headers=sup,
    )
    assert detail.status_code == 422 and "not in shut-off batch" in detail.json()["error"]["message"]
    ok = client.post(f"/api/shutoff-batches/{result.batch_id}/approve", json={"note": "checked"}, headers=sup)
    assert (
        ok.status_code == 200
        and ok.json()["status"] == "approved"
        and ok.json()["orders"][0]["review_hold"] == ""
    )
    again = client.post(f"/api/shutoff-batches/{result.batch_id}/approve", json={}, headers=sup)
    assert again.status_code == 409
    marked = client.put(
        f"/api/no-shutoff-days/{DAY + dt.timedelta(days=7)}", json={"reason": "heat advisory"}, headers=sup
    )
    assert marked.status_code == 200
    assert client.put(f"/api/no-shutoff-days/{DAY}", json={"reason": "x"}, headers=sup).status_code == 422
    req = client.post(
        "/api/meter-test-requests",
        json={"account_id": world["high"].id, "note": "bill too high"},
        headers=dispatcher,
    )
    assert req.status_code == 201 and req.json()["meter_id"] == world["high_meter"].id
    run(db_session, rules=[Rule.METER_TEST])
    tests = [o for o in orders_for(db_session, world["high"]) if o.order_type == "meter_test"]
    assert len(tests) == 1 and "customer asked" in tests[0].reason


def test_generate_job_runs_end_to_end(fresh_engine):
    """The `orders.generate` job runs in a worker with its own session and records its run."""
    from sqlalchemy.orm import sessionmaker

    from server.jobs.models import Job
    from server.jobs.service import run_pending, submit
    from server.orders.models import GenerationRun

    factory = sessionmaker(bind=fresh_engine, expire_on_commit=False)
    with factory() as session:
        job = submit(
            db_session=session,
            kind="orders.generate",
            actor="t",
            params={"date": DAY.isoformat(), "rules": ["moves", "shutoff"], "dry_run": False},
        )
        session.commit()
    assert run_pending(factory=factory) == 1
    with factory() as session:
        done = session.get(Job, job.id)
        assert done.status == "succeeded", done.message
        gen = session.get(GenerationRun, done.result["run_id"])
        assert gen.job_id == job.id and gen.rules == ["shutoff", "moves"] and gen.status == "succeeded"
