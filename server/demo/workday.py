"""The demo's working day: which day it raises orders for, and what it made, counted by kind (pure)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from contracts.codes import OrderType
from server.orders.calendar import Calendar
from server.orders.generation import RunResult
from server.orders.policy import ShutoffPolicy
from server.orders.rules.base import Outcome
from server.timezone import format_day

# How far ahead the demo looks for a day with shut-offs (a long holiday season is under three weeks).
SEARCH_DAYS = 31

# Names as a person counts them: (one, many).
ORDER_TYPE_NAMES = {
    OrderType.TURN_ON: ("turn-on (move-in)", "turn-ons (move-in)"),
    OrderType.TURN_OFF: ("turn-off (move-out)", "turn-offs (move-out)"),
    OrderType.SHUT_OFF_NONPAY: ("shut-off for non-payment", "shut-offs for non-payment"),
    OrderType.RESTORE: ("restore", "restores"),
    OrderType.NOTICE_DELIVERY: ("notice delivery", "notice deliveries"),
    OrderType.REREAD: ("reread", "rereads"),
    OrderType.ZERO_USE_CHECK: ("zero-use check", "zero-use checks"),
    OrderType.LEAK_INVESTIGATION: ("leak / high-bill investigation", "leak / high-bill investigations"),
    OrderType.METER_TEST: ("meter test", "meter tests"),
    OrderType.METER_EXCHANGE: ("meter exchange", "meter exchanges"),
    OrderType.THEFT_INVESTIGATION: ("theft investigation", "theft investigations"),
    OrderType.EMERGENCY: ("emergency", "emergencies"),
}


def count_of(n: int, kind: OrderType) -> str:
    """'1 notice delivery', '5 notice deliveries'."""
    one, many = ORDER_TYPE_NAMES[kind]
    return f"{n} {one if n == 1 else many}"


@dataclass(frozen=True)
class WorkingDay:
    """The day the demo works, and why it is not today when it is not."""

    day: dt.date
    why: str  # '' when the day is today


def _not_a_work_day(day: dt.date, cal: Calendar, shutoff: ShutoffPolicy) -> str:
    """Why `day` does not show a full working day (no business, or no shut-offs allowed); '' when it does."""
    if day.weekday() in cal.policy.weekend_days:
        return "a weekend day"
    name = cal.holiday(day)
    if name:
        return f"a holiday ({name})"
    if shutoff.enabled:
        forbidden = cal.shutoff_forbidden(day, shutoff)
        if forbidden:
            return f"a day without shut-offs: {forbidden}"
    return ""


def choose_day(today: dt.date, *, calendar: Calendar, shutoff: ShutoffPolicy) -> WorkingDay:
    """Today when it is a business day on which the policy allows shut-offs; otherwise the first such day
    after it (so the demo always has a shut-off list to approve). Without any such day within a month,
    the next business day."""
    why = _not_a_work_day(today, calendar, shutoff)
    if not why:
        return WorkingDay(today, "")
    for offset in range(1, SEARCH_DAYS + 1):
        day = today + dt.timedelta(days=offset)
        if not _not_a_work_day(day, calendar, shutoff):
            return WorkingDay(day, f"Today is {format_day(today)}, {why}")
    day = calendar.next_business_day(today) if not calendar.is_business_day(today) else today
    return WorkingDay(
        day, f"Today is {format_day(today)}, {why}; no day in the next {SEARCH_DAYS} allows shut-offs"
    )


@dataclass
class DaySummary:
    """What one generation run made, by order type; shut-offs awaiting a supervisor kept apart."""

    made: Counter[OrderType] = field(default_factory=Counter)
    awaiting_approval: int = 0  # shut-offs made into the batch a supervisor must approve
    held: Counter[str] = field(default_factory=Counter)  # rule -> accounts or meters held back
    batch_id: int | None = None

    def lines(self) -> list[str]:
        """Readable lines: the shut-off list first, then every other kind made, then what was held."""
        out: list[str] = []
        shutoff = OrderType.SHUT_OFF_NONPAY
        ready = self.made.get(shutoff, 0) - self.awaiting_approval
        if self.awaiting_approval:
            out.append(
                f"{count_of(self.awaiting_approval, shutoff)} awaiting a supervisor's approval"
                + (f" (shut-off batch {self.batch_id})" if self.batch_id else "")
            )
        if ready:
            out.append(f"{count_of(ready, shutoff)} ready to plan")
        for kind in OrderType:
            if kind is not shutoff and self.made.get(kind):
                out.append(count_of(self.made[kind], kind))
        if not out:
            out.append("no orders")
        for rule, n in sorted(self.held.items()):
            out.append(f"{n} held back by rule {rule} (see `curbstop generate-orders --dry-run`)")
        return out


def summarize(result: RunResult) -> DaySummary:
    """Count what a run created by order type (a notice delivery is not a shut-off)."""
    summary = DaySummary(batch_id=result.batch_id)
    for applied in result.applied:
        decision = applied.decision
        if applied.outcome is Outcome.HOLD:
            summary.held[decision.rule.value] += decision.count
        if applied.outcome is not Outcome.CREATE or decision.order is None:
            continue
        summary.made[decision.order.order_type] += decision.count
        if decision.order.needs_review:
            summary.awaiting_approval += decision.count
    return summary
