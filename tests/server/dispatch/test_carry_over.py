"""Carry-over: open orders due on an earlier day are offered flagged and counted, never silently re-dated."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

from contracts.codes import Role
from server.audit.models import AuditEvent
from server.dispatch import service
from server.jobs.models import Job
from server.orders.models import WorkOrder
from server.orders.policy import load_policy

DAY = dt.date(2026, 11, 30)  # a Monday
YESTERDAY = DAY - dt.timedelta(days=1)


@pytest.fixture
def crew(make_technician):
    """One CSFR who turns water on and off, 08:00-16:00."""
    return make_technician(
        code="TC", skills=["read", "turn_on_off"], shift_start=dt.time(8), shift_end=dt.time(16)
    )


@pytest.fixture
def order_on(db_session, make_service_point):
    """Factory: an open order of `order_type` due on `day`."""
    n = [0]

    def make(day: dt.date, order_type: str = "turn_on", priority: str = "restore") -> WorkOrder:
        n[0] += 1
        sp = make_service_point(lat=38.58 + n[0] * 0.002, lon=-121.49)
        order = WorkOrder(
            order_type=order_type,
            priority=priority,
            service_point_id=sp.id,
            required_skills=["turn_on_off"],
            estimated_minutes=15,
            scheduled_date=day,
            idempotency_key=f"carry:{n[0]}:{day}",
        )
        db_session.add(order)
        db_session.flush()
        return order

    return make


def plan(db_session, **kw):
    return service.make_plan(
        db_session=db_session, plan_date=DAY, service_area="", time_limit_s=1.0, seed=1, actor="test", **kw
    )


def entry(row, order_id):
    """The plan's visit or unassigned entry for an order."""
    for route in row.routes:
        for visit in route["visits"]:
            if visit["order_id"] == order_id:
                return visit
    return next(u for u in row.unassigned if u["order_id"] == order_id)


def test_overdue_move_in_is_offered_as_carried_over_and_keeps_its_date(db_session, crew, order_on):
    """An open move-in due yesterday is planned flagged `carried_over` with its original date and counted;
    publishing dispatches it for the new day, keeps the day it was due and audits the move."""
    late = order_on(YESTERDAY)
    today = order_on(DAY)
    row = plan(db_session)
    assert row.carried_over == 1 and row.params["include_carry_over"] is True
    flagged = entry(row, late.id)
    assert "sequence" in flagged  # planned
    assert flagged["carried_over"] is True and flagged["original_date"] == YESTERDAY.isoformat()
    assert entry(row, today.id)["carried_over"] is False
    result = service.publish(db_session=db_session, plan=row, actor="disp")
    assert result["carried_over"] == 1
    db_session.refresh(late)
    assert late.status == "dispatched" and late.scheduled_date == DAY
    assert late.original_scheduled_date == YESTERDAY
    db_session.refresh(today)
    assert today.original_scheduled_date is None
    event = db_session.scalar(
        select(AuditEvent).where(
            AuditEvent.entity_type == "work_order",
            AuditEvent.entity_id == str(late.id),
            AuditEvent.action == "carried_over",
        )
    )
    assert event is not None and event.actor == "disp"
    assert event.detail["from"] == YESTERDAY.isoformat() and event.detail["to"] == DAY.isoformat()


def test_carried_twice_keeps_the_first_day(db_session, crew, order_on):
    """An order carried from the 28th to the 29th and then to the 30th still names the 28th."""
    late = order_on(YESTERDAY)
    late.original_scheduled_date = YESTERDAY - dt.timedelta(days=1)
    db_session.flush()
    row = plan(db_session)
    assert entry(row, late.id)["original_date"] == (YESTERDAY - dt.timedelta(days=1)).isoformat()
    service.publish(db_session=db_session, plan=row, actor="disp")
    db_session.refresh(late)
    assert late.scheduled_date == DAY and late.original_scheduled_date == YESTERDAY - dt.timedelta(days=1)


def test_with_carry_over_off_the_overdue_order_is_listed_not_planned(db_session, crew, order_on, monkeypatch):
    """With dispatch.include_carry_over = false the overdue move-in is not planned, but listed as carried
    over (reason `carry_over_not_included`) and counted; publishing leaves its date alone."""
    policy = load_policy()
    off = dataclasses.replace(policy, dispatch=dataclasses.replace(policy.dispatch, include_carry_over=False))
    monkeypatch.setattr(service, "current_policy", lambda: off)
    late = order_on(YESTERDAY)
    today = order_on(DAY)
    row = plan(db_session)
    assert row.carried_over == 1 and row.params["include_carry_over"] is False
    listed = entry(row, late.id)
    assert "sequence" not in listed
    assert listed == {
        "order_id": late.id,
        "reason": "carry_over_not_included",
        "carried_over": True,
        "original_date": YESTERDAY.isoformat(),
    }
    assert "sequence" in entry(row, today.id)
    service.publish(db_session=db_session, plan=row, actor="disp")
    db_session.refresh(late)
    assert late.status == "new" and late.scheduled_date == YESTERDAY and late.original_scheduled_date is None
    # The request overrides the policy.
    again = plan(db_session, include_carry_over=True)
    assert "sequence" in entry(again, late.id) and entry(again, late.id)["carried_over"] is True


def test_plan_api_passes_the_override_and_the_plan_shows_the_count(client, login, db_session, crew, order_on):
    """POST /api/dispatch/plans takes include_carry_over into the job; GET shows `carried_over`."""
    order_on(YESTERDAY)
    dispatcher = login(Role.DISPATCHER)
    resp = client.post(
        "/api/dispatch/plans",
        json={"date": DAY.isoformat(), "time_limit_s": 1, "include_carry_over": False},
        headers=dispatcher,
    )
    assert resp.status_code == 202, resp.text
    job = db_session.get(Job, resp.json()["job_id"])
    assert job.params["include_carry_over"] is False
    bad = client.post(
        "/api/dispatch/plans",
        json={"date": DAY.isoformat(), "include_carry_over": "maybe"},
        headers=dispatcher,
    )
    assert bad.status_code == 422 and "include_carry_over" in bad.text
    row = plan(db_session, include_carry_over=False)
    shown = client.get(f"/api/dispatch/plans/{row.id}", headers=dispatcher).json()
    assert shown["carried_over"] == 1 and shown["unassigned"][0]["carried_over"] is True


def test_policy_file_validates_include_carry_over(tmp_path):
    """A policy file with a non-boolean dispatch.include_carry_over is refused naming the key."""
    from server.orders.policy import PolicyError

    bad = tmp_path / "policy.toml"
    bad.write_text('[dispatch]\ninclude_carry_over = "sometimes"\n')
    with pytest.raises(PolicyError) as caught:
        load_policy(bad)
    assert "dispatch.include_carry_over" in str(caught.value)
    good = tmp_path / "ok.toml"
    good.write_text("[dispatch]\ninclude_carry_over = false\n")
    assert load_policy(good).dispatch.include_carry_over is False


@pytest.mark.slow
def test_plan_command_lists_carried_over_work(empty_database_url, fresh_engine, tmp_path):
    """`curbstop plan --no-carry-over` leaves the overdue move-in out and lists it, with the day it was
    due; the default (the policy's) plans it and says so."""
    from sqlalchemy.orm import sessionmaker

    from server.accounts.models import ServicePoint
    from server.technicians.models import Technician
    from tests.server.test_cli import run

    factory = sessionmaker(bind=fresh_engine, expire_on_commit=False)
    with factory() as s:
        s.add(Technician(code="T1", name="One", skills=["turn_on_off"], depot_lat=38.58, depot_lon=-121.49))
        ids = []
        for i, day in enumerate((YESTERDAY, DAY)):
            sp = ServicePoint(
                cis_service_point_id=f"S{i}", address=f"{i} Elm", lat=38.58 + i / 500, lon=-121.49
            )
            s.add(sp)
            s.flush()
            order = WorkOrder(
                order_type="turn_on",
                priority="restore",
                service_point_id=sp.id,
                required_skills=["turn_on_off"],
                scheduled_date=day,
                idempotency_key=f"cli-carry-{i}",
            )
            s.add(order)
            s.flush()
            ids.append(order.id)
        s.commit()
    late = ids[0]
    off = run(
        ["plan", "--date", DAY.isoformat(), "--time-limit", "1", "--no-carry-over"],
        empty_database_url,
        tmp_path,
    )
    assert off.returncode == 0, off.stdout + off.stderr
    assert "carried over: 1 open orders due on an earlier day (not planned" in off.stdout
    assert f"order {late}, due {YESTERDAY}: carry_over_not_included" in off.stdout
    on = run(["plan", "--date", DAY.isoformat(), "--time-limit", "1"], empty_database_url, tmp_path)
    assert on.returncode == 0, on.stdout + on.stderr
    assert f"order {late}, due {YESTERDAY}: planned" in on.stdout
