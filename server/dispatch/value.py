"""What an order is worth to a plan, when it is due, and which day of the look-ahead it belongs to.

One place for these facts (policy section `[dispatch]`): the planner (server/dispatch/problem.py) turns
them into routing's `Stop.value` and the look-ahead, and the plan's reasons quote the due date and the
day an order is planned for. Values are in travel seconds, the routing objective's unit (a second of a
CSFR driving costs 1); the policy states them in minutes of driving.

- **Due date** (`due_date`): an appointment is due on its day; a periodic meter test by the last
  business day of the month it was raised in; a reread `reread_due_business_days` business days after
  it was raised; other investigations and tests `due_business_days` after; everything else (an
  emergency, a restore, a turn-on or -off, a shut-off) on the day it is scheduled.
- **Value** (`value_of`): the priority's `value_minutes`, raised by up to `due_boost` times as the due
  date comes (linearly over the last `due_ramp_business_days`; overdue work gets the whole boost); an
  appointment is worth at least `appointment_value_minutes`. Work whose priority is not in
  `overtime_worthy` (and that has no appointment) is capped just below the price of the overtime
  minimum, so it never opens overtime.
"""

from __future__ import annotations

import calendar as pycal
import datetime as dt
import math

from contracts.codes import OrderType, Priority
from server.orders.calendar import Calendar
from server.orders.models import WorkOrder
from server.orders.policy import Policy
from server.orders.rules.base import Rule

# Order types due `due_business_days` after they were raised (the rest are due the day they are scheduled).
DEFERRABLE = frozenset(
    t.value
    for t in (
        OrderType.METER_TEST,
        OrderType.LEAK_INVESTIGATION,
        OrderType.ZERO_USE_CHECK,
        OrderType.THEFT_INVESTIGATION,
    )
)


def raised_on(order: WorkOrder, today: dt.date) -> dt.date:
    """The day the order was first due to be worked: first scheduled (carried over), scheduled, or for
    backlog without a date (periodic tests) the day it was raised."""
    if order.original_scheduled_date or order.scheduled_date:
        return order.original_scheduled_date or order.scheduled_date or today
    return order.created_at.date() if order.created_at else today


def is_periodic_test(order: WorkOrder) -> bool:
    """A meter test raised by the periodic rule (a meter past its size's test interval)."""
    return order.order_type == OrderType.METER_TEST.value and order.rule == Rule.METER_TEST.value


def add_business_days(calendar: Calendar, day: dt.date, count: int) -> dt.date:
    """The `count`-th business day after `day` (`day` itself when count is 0)."""
    for _ in range(count):
        day = calendar.next_business_day(day)
    return day


def last_business_day_of_month(calendar: Calendar, day: dt.date) -> dt.date:
    """The month's last business day (its last day if the month has none)."""
    last = day.replace(day=pycal.monthrange(day.year, day.month)[1])
    probe = last
    while probe.month == day.month and not calendar.is_business_day(probe):
        probe -= dt.timedelta(days=1)
    return probe if probe.month == day.month else last


def due_date(order: WorkOrder, *, policy: Policy, calendar: Calendar, today: dt.date) -> dt.date:
    """The last day the order should be worked on (see the module doc)."""
    raised = raised_on(order, today)
    rules = policy.dispatch
    if order.window_start is not None:
        return raised
    if is_periodic_test(order):
        return last_business_day_of_month(calendar, raised)
    if order.order_type == OrderType.REREAD.value:
        return add_business_days(calendar, raised, rules.reread_due_business_days)
    if order.order_type in DEFERRABLE or order.priority == Priority.INVESTIGATION.value:
        return add_business_days(calendar, raised, rules.due_business_days)
    return raised


def value_of(
    order: WorkOrder,
    *,
    due: dt.date,
    plan_date: dt.date,
    policy: Policy,
    calendar: Calendar,
    overtime_floor: int | None,
) -> int:
    """The order's value in a plan for `plan_date`, in travel seconds (see the module doc).

    `overtime_floor` is the least the crew's overtime can cost once started (the cheapest CSFR's
    price per second times the overtime minimum); None when overtime has no minimum.
    """
    rules = policy.dispatch
    priority = Priority(order.priority)
    base = rules.value_minutes[priority.value] * 60
    days_left = calendar.business_days_between(plan_date, due) if due > plan_date else 0
    ramp = max(1, rules.due_ramp_business_days)
    closeness = max(0.0, 1.0 - days_left / ramp)
    value = math.ceil(base * (1.0 + rules.due_boost * closeness))
    # A shut-off's window is the policy's cut hours (shutoff.cut_hours_*), not a promise to a customer.
    appointment = order.window_start is not None and order.order_type != OrderType.SHUT_OFF_NONPAY.value
    if appointment:
        value = max(value, rules.appointment_value_minutes * 60)
    worthy = appointment or priority.value in rules.overtime_worthy
    if not worthy and overtime_floor is not None and overtime_floor > 1:
        value = min(value, overtime_floor - 1)
    return max(1, value)


def business_days_ahead(calendar: Calendar, start: dt.date, count: int) -> list[dt.date]:
    """`start` (the plan date) and the next `count - 1` business days."""
    days = [start]
    while len(days) < count:
        days.append(calendar.next_business_day(days[-1]))
    return days
