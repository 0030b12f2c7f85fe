"""Issue 22 against the database (SQLite and PostgreSQL): cut hours honoured by a plan (shutoff.cut_hours_*),
and SB 998's protected-customer facts from the CIS import into account_facts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from server.dispatch import service
from server.orders.calendar import Calendar
from server.orders.models import WorkOrder
from server.orders.policy import load_policy
from server.orders.rules.billing import cut_window

ZONE = ZoneInfo("America/Los_Angeles")
FRIDAY = dt.date(2026, 12, 4)  # the office is closed the next day: cuts end at noon


def test_shutoff_cut_end_before_closure_is_honoured_by_the_plan(
    db_session, make_technician, make_service_point
):
    """A cut planned on a Friday among 4.5 hours of restore-priority work keeps to 08:00-12:00
    (shutoff.cut_end_before_closure), and is not valued as a customer appointment."""
    policy = load_policy()
    start, end = cut_window(policy, Calendar.of(policy.calendar), FRIDAY, ZONE)
    assert (start.astimezone(ZONE).time(), end.astimezone(ZONE).time()) == (dt.time(8), dt.time(12))
    tech = make_technician(
        code="TC", skills=["read", "turn_on_off"], shift_start=dt.time(8), shift_end=dt.time(16)
    )
    orders = []
    for n in range(4):
        sp = make_service_point(lat=38.58 + n * 0.002, lon=-121.49)
        order = WorkOrder(
            order_type="shut_off_nonpay" if n == 3 else "turn_off",
            priority="shut_off" if n == 3 else "restore",
            service_point_id=sp.id,
            required_skills=["turn_on_off"],
            estimated_minutes=20 if n == 3 else 90,
            idempotency_key=f"cutwin:{n}",
            scheduled_date=FRIDAY,
            window_start=start if n == 3 else None,
            window_end=end if n == 3 else None,
        )
        db_session.add(order)
        orders.append(order)
    db_session.flush()
    row = service.make_plan(
        db_session=db_session, plan_date=FRIDAY, service_area="", time_limit_s=2.0, seed=1, actor="test"
    )
    (route,) = [r for r in row.routes if r["technician_id"] == tech.id]
    (cut,) = [v for v in route["visits"] if v["order_id"] == orders[3].id]
    begun = dt.datetime.fromisoformat(cut["start_at"]).astimezone(ZONE)
    assert start <= begun < end, cut  # the visit starts inside the cut window


def test_sb998_protected_customer_facts_from_the_cis_import(db_session, make_account):
    """SB 998 facts as the CIS import stores them: medical_certificate and cannot_pay holds, and a payment plan
    with status "defaulted" whose end_date is the day it defaulted; account_facts carries the latest default
    (plan_defaulted_on) and the rule holds the account for the 60 days (shutoff.protected_plan_default_days)."""
    from server.accounts.models import Balance, PaymentArrangement, ShutoffHold, ShutoffNotice
    from server.orders import facts as F
    from server.orders.rules import billing

    day = dt.date(2026, 11, 17)
    policy = load_policy()
    exact = dataclasses.replace(
        policy, shutoff=dataclasses.replace(policy.shutoff, hold_kinds=frozenset({"dispute"}))
    )
    a = make_account()
    db_session.add(
        Balance(
            account_id=a.id,
            balance_cents=15_000,
            past_due_cents=12_000,
            oldest_past_due_date=day - dt.timedelta(days=200),
            as_of=dt.datetime.combine(day, dt.time(6), tzinfo=ZONE),
        )
    )
    served = dt.datetime.combine(day - dt.timedelta(days=30), dt.time(10), tzinfo=ZONE)
    db_session.add(ShutoffNotice(cis_notice_id=f"W{a.id}", account_id=a.id, kind="written", served_at=served))
    for kind in ("medical_certificate", "cannot_pay"):
        db_session.add(
            ShutoffHold(
                cis_hold_id=f"{kind}{a.id}",
                account_id=a.id,
                kind=kind,
                start_date=day - dt.timedelta(days=150),
            )
        )
    for n, ended in enumerate((day - dt.timedelta(days=120), day - dt.timedelta(days=40))):
        db_session.add(
            PaymentArrangement(
                cis_arrangement_id=f"PA{a.id}-{n}",
                account_id=a.id,
                status="defaulted",
                made_date=ended - dt.timedelta(days=30),
                end_date=ended,
            )
        )
    db_session.flush()
    (facts,) = F.account_facts(db_session, exact, day, account_ids=[a.id])
    assert facts.plan_defaulted_on == day - dt.timedelta(days=40)
    assert {h.kind for h in facts.holds} == {"medical_certificate", "cannot_pay"}
    d = billing.shutoff_rule(facts, exact, Calendar.of(policy.calendar), day, ZONE)
    assert d.outcome.value == "hold" and "40 of 60 days" in d.reason


def test_sb998_facts_arrive_through_the_cis_import(db_session, tmp_path):
    """holds.csv kind cannot_pay (the customer's statement) and arrangements.csv status defaulted with its
    end_date come through the CIS import into account_facts (SB 998, HSC 116910)."""
    from server.cis.importer import find_files, import_files
    from server.orders import facts as F

    files = {
        "service_points.csv": "service_point_id,address,lat,lon\nSP1,1 Oak St,38.5,-121.4\n",
        "accounts.csv": "account_number,customer_id,customer_name,service_point_id,status,occupied\n"
        "A1,C1,Ann Lee,SP1,active,yes\n",
        "balances.csv": "account_number,balance,past_due,oldest_past_due_date\nA1,150.00,120.00,2026-05-01\n",
        "holds.csv": "hold_id,account_number,kind,start_date\nH1,A1,medical_certificate,2026-06-01\n"
        "H2,A1,cannot_pay,2026-06-01\n",
        "arrangements.csv": "arrangement_id,account_number,status,made_date,end_date\n"
        "PA1,A1,defaulted,2026-06-05,2026-10-08\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    import_files(db_session, find_files(tmp_path, ZONE), zone=ZONE)
    (facts,) = F.account_facts(db_session, load_policy(), dt.date(2026, 11, 17))
    assert facts.plan_defaulted_on == dt.date(2026, 10, 8)
    assert {h.kind for h in facts.holds} == {"medical_certificate", "cannot_pay"}
