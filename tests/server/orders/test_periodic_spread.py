"""Periodic meter tests are raised to fit the testers' capacity, not all on one day."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from server.orders.calendar import Calendar
from server.orders.generation import _business_days, periodic_tests_per_day
from server.orders.policy import load_policy
from server.orders.rules import field
from server.orders.rules.base import Outcome

POLICY = load_policy()
TUE = dt.date(2026, 11, 17)  # an ordinary Tuesday


def test_periodic_tests_are_scheduled_per_day_oldest_first():
    """Thirty meters past their interval with room for twelve tests a day: twelve on the run date,
    twelve the next business day, six the day after, the oldest due first; without a rate, all undated."""
    due = [
        field.TestDueFacts(i, f"S{i}", "5/8", i, i, dt.date(2010, 1, 1) + dt.timedelta(days=i), None)
        for i in range(1, 31)
    ]
    days = _business_days(POLICY, TUE, 23)
    made = field.periodic_test_rule(due, POLICY, TUE, per_day=12, days=days)
    created = [d for d in made if d.outcome is Outcome.CREATE]
    per_day = Counter(d.order.scheduled_date for d in created)
    assert per_day == {days[0]: 12, days[1]: 12, days[2]: 6}
    assert created[0].meter_id == 1 and created[0].order.scheduled_date == TUE
    assert all(Calendar.of(POLICY.calendar).is_business_day(d) for d in per_day)
    undated = field.periodic_test_rule(due, POLICY, TUE)
    assert {d.order.scheduled_date for d in undated if d.outcome is Outcome.CREATE} == {None}


def test_tests_per_day_follow_the_active_testers_hours(db_session, make_technician):
    """Three active testers on 08:00-16:00 with a 30-minute lunch: 7.5 h less a quarter for driving,
    half of it for periodic tests of 45 minutes: 11 a day; readers and inactive testers do not count."""
    minutes = POLICY.order_defaults(field.OrderType.METER_TEST).minutes
    for _ in range(3):
        make_technician(
            skills=["read", "meter_test"], shift_start=dt.time(8), shift_end=dt.time(16), break_minutes=30
        )
    make_technician(skills=["read"], shift_start=dt.time(8), shift_end=dt.time(16))
    make_technician(skills=["meter_test"], active=False)
    expected = int(3 * 450 * 0.75 * POLICY.meter_test.periodic_share // minutes)
    assert periodic_tests_per_day(db_session=db_session, policy=POLICY) == expected
    assert expected == (11 if minutes == 45 else expected)
