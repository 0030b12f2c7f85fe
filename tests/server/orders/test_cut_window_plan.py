"""Hours of day for cuts (policy shutoff.cut_hours_start / cut_hours_end / cut_end_before_closure): a
shut-off order carries the policy's window and the planner schedules the cut inside it (SQLite and PostgreSQL)."""

from __future__ import annotations

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
