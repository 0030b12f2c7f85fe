"""Dispatch: plan a day from orders and technicians, publish, re-plan the rest, insert an emergency."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contracts.codes import Role
from server.dispatch import service
from server.jobs.models import Job
from server.orders.models import WorkOrder

ZONE = ZoneInfo("America/Los_Angeles")
DAY = dt.date(2026, 12, 2)  # a Wednesday


def local(h: int, m: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(h, m), tzinfo=ZONE)


@pytest.fixture
def crew(make_technician):
    """Two CSFRs: A reads and turns water on/off; B reads and tests meters."""
    a = make_technician(
        code="TA", skills=["read", "turn_on_off"], shift_start=dt.time(8), shift_end=dt.time(16)
    )
    b = make_technician(
        code="TB", skills=["read", "meter_test"], shift_start=dt.time(8), shift_end=dt.time(16)
    )
    return a, b


@pytest.fixture
def make_order(db_session, make_service_point):
    """Factory for open orders at premises spread a few hundred metres apart."""
    n = [0]

    def make(order_type="reread", skills=("read",), minutes=10, priority="reread", **kw):
        n[0] += 1
        sp = make_service_point(lat=38.58 + n[0] * 0.002, lon=-121.49 + (n[0] % 3) * 0.002)
        order = WorkOrder(
            order_type=order_type,
            priority=priority,
            service_point_id=sp.id,
            required_skills=list(skills),
            estimated_minutes=minutes,
            scheduled_date=DAY,
            idempotency_key=f"t:{n[0]}:{order_type}",
            **kw,
        )
        db_session.add(order)
        db_session.flush()
        return order

    return make


def plan(db_session, seconds=2.0):
    return service.make_plan(
        db_session=db_session, plan_date=DAY, service_area="", time_limit_s=seconds, seed=1, actor="test"
    )


def visits_of(row, tech_id):
    route = next((r for r in row.routes if r["technician_id"] == tech_id), None)
    return [v["order_id"] for v in route["visits"]] if route else []


def test_plan_respects_skills_windows_breaks_and_reports_unassigned(db_session, crew, make_order):
    """Meter tests go to the tester, the appointment is met, lunch is scheduled, unskillable work says why."""
    a, b = crew
    rereads = [make_order() for _ in range(4)]
    test = make_order("meter_test", skills=("meter_test",), minutes=45, priority="meter_test")
    appointment = make_order(
        "turn_on", skills=("turn_on_off",), priority="restore", window_start=local(10), window_end=local(11)
    )
    nobody = make_order("emergency", skills=("emergency",), priority="emergency")
    row = plan(db_session)
    assert test.id in visits_of(row, b.id)
    assert appointment.id in visits_of(row, a.id)
    visit = next(v for r in row.routes for v in r["visits"] if v["order_id"] == appointment.id)
    start = dt.datetime.fromisoformat(visit["start_at"])
    assert local(10) <= start <= local(11)
    assert all(r["breaks"] for r in row.routes if r["visits"])
    entry = next(u for u in row.unassigned if u["order_id"] == nobody.id)
    assert {
        "order_id": nobody.id,
        "reason": "no_skilled_technician",
        "carried_over": False,
        "original_date": None,
    }.items() <= entry.items()
    assert entry["detail"] == "needs emergency: none of the 2 CSFRs has it"
    planned = {v["order_id"] for r in row.routes for v in r["visits"]}
    assert {o.id for o in rereads} <= planned


def test_publish_dispatches_and_refuses_a_stale_plan(db_session, crew, make_order):
    """Publishing sets technician, sequence and arrival and dispatches; an order edited since is a 409."""
    orders = [make_order() for _ in range(3)]
    row = plan(db_session)
    result = service.publish(db_session=db_session, plan=row, actor="test")
    assert result["dispatched"] == 3
    for order in orders:
        db_session.refresh(order)
        assert (
            order.status == "dispatched"
            and order.technician_id
            and order.route_sequence
            and order.planned_arrival_at
        )
    orders[0].notes = "gate code changed"
    db_session.flush()
    second = plan(db_session)
    orders[1].notes = "edited after planning"
    db_session.flush()
    with pytest.raises(Exception) as caught:
        service.publish(db_session=db_session, plan=second, actor="test")
    assert "changed since plan" in str(caught.value)


def test_locked_stop_keeps_its_technician_and_order(db_session, crew, make_order):
    """Stops a dispatcher locked to B in a sequence stay on B in that order after planning."""
    a, b = crew
    first = make_order(technician_id=b.id, locked=True, route_sequence=2)
    second = make_order(technician_id=b.id, locked=True, route_sequence=1)
    others = [make_order() for _ in range(4)]
    row = plan(db_session)
    on_b = visits_of(row, b.id)
    assert on_b.index(second.id) < on_b.index(first.id)
    assert first.id not in visits_of(row, a.id)
    assert others


def test_replan_keeps_done_work_and_takes_new_orders(db_session, crew, make_order):
    """After a morning of work, re-planning keeps completed stops in place and schedules new work after now."""
    for _ in range(4):
        make_order()
    row = plan(db_session)
    service.publish(db_session=db_session, plan=row, actor="test")
    route = next(r for r in row.routes if r["visits"])
    done_id = route["visits"][0]["order_id"]
    done = db_session.get(WorkOrder, done_id)
    done.status = "completed"
    late = make_order()
    db_session.flush()
    now = local(11)
    new = service.replan_rest(
        db_session=db_session, plan=row, now=now, time_limit_s=1.0, seed=1, actor="test"
    )
    same = next(r for r in new.routes if r["technician_id"] == route["technician_id"])
    assert same["visits"][0]["order_id"] == done_id
    late_visit = next(v for r in new.routes for v in r["visits"] if v["order_id"] == late.id)
    assert dt.datetime.fromisoformat(late_visit["arrival_at"]) >= now
    result = service.publish(db_session=db_session, plan=new, actor="test")
    db_session.refresh(done)
    assert done.status == "completed" and result["dispatched"] >= 1


def test_emergency_is_inserted_without_reshuffling(client, login, db_session, crew, make_order):
    """An emergency goes to the one technician able to do it; everyone's remaining order is unchanged."""
    a, _b = crew
    a.skills = ["read", "turn_on_off", "emergency"]
    for _ in range(5):
        make_order()
    row = plan(db_session)
    service.publish(db_session=db_session, plan=row, actor="test")
    before = {r["technician_id"]: [v["order_id"] for v in r["visits"]] for r in row.routes}
    urgent = make_order("emergency", skills=("emergency",), minutes=30, priority="emergency")
    dispatcher = login(Role.DISPATCHER)
    resp = client.post(
        "/api/dispatch/emergency",
        json={"order_id": urgent.id, "now": local(9, 30).isoformat()},
        headers=dispatcher,
    )
    assert resp.status_code == 202, resp.text  # a job (tests/server/dispatch/test_planning.py)
    job = db_session.get(Job, resp.json()["job_id"])
    result = service.emergency_job(db_session=db_session, job=job, report=lambda *_a, **_k: None)
    new = service.get_plan(db_session=db_session, plan_id=result["plan_id"])
    after = {r["technician_id"]: [v["order_id"] for v in r["visits"]] for r in new.routes}
    assert urgent.id in after[a.id]
    for tech, sequence in before.items():
        assert [o for o in after.get(tech, []) if o != urgent.id] == sequence
    db_session.refresh(urgent)
    assert urgent.status == "dispatched" and urgent.technician_id == a.id


def test_plan_api_queues_a_job_and_checks_roles(client, login, crew, make_order, db_session):
    """Planning is a queued job for staff; a CSFR may not plan; an advisor may read plans."""
    make_order()
    dispatcher = login(Role.DISPATCHER)
    resp = client.post(
        "/api/dispatch/plans", json={"date": DAY.isoformat(), "time_limit_s": 1}, headers=dispatcher
    )
    assert resp.status_code == 202
    job = db_session.get(Job, resp.json()["job_id"])
    assert job.kind == "dispatch.plan" and job.status == "queued"
    assert (
        client.post(
            "/api/dispatch/plans", json={"date": DAY.isoformat()}, headers=login(Role.CSFR)
        ).status_code
        == 403
    )
    assert client.get("/api/dispatch/plans", headers=login(Role.ADVISOR)).status_code == 200
    bad = client.post("/api/dispatch/plans", json={"date": "2026-13-01"}, headers=dispatcher)
    assert bad.status_code == 422 and "date" in bad.json()["error"]["message"]


def test_plan_job_runs_end_to_end(fresh_engine):
    """A queued plan job run by a worker stores a draft plan and reports progress."""
    from sqlalchemy.orm import sessionmaker

    from server.accounts.models import ServicePoint
    from server.jobs.service import run_pending, submit
    from server.technicians.models import Technician

    factory = sessionmaker(bind=fresh_engine, expire_on_commit=False)
    with factory() as s:
        s.add(Technician(code="T1", name="One", skills=["read"], depot_lat=38.58, depot_lon=-121.49))
        for i in range(3):
            sp = ServicePoint(
                cis_service_point_id=f"S{i}", address=f"{i} Elm", lat=38.58 + i / 500, lon=-121.49
            )
            s.add(sp)
            s.flush()
            s.add(
                WorkOrder(
                    order_type="reread",
                    priority="reread",
                    service_point_id=sp.id,
                    required_skills=["read"],
                    scheduled_date=DAY,
                    idempotency_key=f"e2e{i}",
                )
            )
        job = submit(
            db_session=s,
            kind="dispatch.plan",
            params={"date": DAY.isoformat(), "time_limit_s": 1},
            actor="test",
        )
        s.commit()
    assert run_pending(factory=factory) == 1
    with factory() as s:
        done = s.get(Job, job.id)
        assert done.status == "succeeded", done.message
        assert done.progress_done == done.progress_total == 3
        from server.dispatch.models import DispatchPlan

        stored = s.scalar(select(DispatchPlan).where(DispatchPlan.id == done.result["plan_id"]))
        assert sum(len(r["visits"]) for r in stored.routes) == 3
