"""The demo's working day (which day it raises orders for) and its summary by order type."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from contracts.codes import OrderType
from server.demo.workday import choose_day, summarize
from server.orders.calendar import Calendar
from server.orders.generation import Applied, RunResult
from server.orders.policy import load_policy
from server.orders.rules.base import Decision, OrderSpec, Outcome, Rule

POLICY = load_policy()


def cal(*marked: tuple[dt.date, str]) -> Calendar:
    return Calendar.of(POLICY.calendar, marked)


@pytest.mark.parametrize(
    ("today", "expected", "reason"),
    [
        (dt.date(2026, 12, 1), dt.date(2026, 12, 1), ""),  # Tuesday: today
        (dt.date(2026, 11, 28), dt.date(2026, 11, 30), "a weekend day"),  # Saturday -> Monday
        (dt.date(2026, 11, 29), dt.date(2026, 11, 30), "a weekend day"),  # Sunday -> Monday
        (dt.date(2026, 11, 26), dt.date(2026, 11, 30), "a holiday (Thanksgiving Day)"),  # Thu holiday
        (dt.date(2026, 12, 4), dt.date(2026, 12, 7), "no shut-offs on a Friday"),  # Friday: policy
        # Thursday 24 December is the day before Christmas: no shut-offs; Friday; weekend; Christmas
        # observed Friday 25th; the next day for a full day is Monday 28 December.
        (dt.date(2026, 12, 24), dt.date(2026, 12, 28), "day before a holiday"),
    ],
)
def test_choose_day_skips_days_without_a_shutoff_list(today: dt.date, expected: dt.date, reason: str) -> None:
    """On a weekend, a holiday or a day the policy forbids shut-offs, the demo works the next business
    day on which shut-offs are allowed, and says why; on an ordinary weekday it works today."""
    chosen = choose_day(today, calendar=cal(), shutoff=POLICY.shutoff)
    assert chosen.day == expected
    if reason:
        assert reason in chosen.why and chosen.why.startswith(f"Today is {today:%A}")
    else:
        assert chosen.why == ""


def test_choose_day_honours_marked_days_and_disabled_shutoffs() -> None:
    """A supervisor-marked no-shut-off Monday moves the demo to Tuesday; with shut-offs switched off in
    the policy a weekend still moves to the next business day."""
    monday = dt.date(2026, 11, 30)
    chosen = choose_day(dt.date(2026, 11, 28), calendar=cal((monday, "extreme heat")), shutoff=POLICY.shutoff)
    assert chosen.day == dt.date(2026, 12, 1)
    off = dataclasses.replace(POLICY.shutoff, enabled=False)
    assert choose_day(dt.date(2026, 12, 4), calendar=cal(), shutoff=off).day == dt.date(2026, 12, 4)
    assert choose_day(dt.date(2026, 11, 28), calendar=cal(), shutoff=off).day == monday


def _made(rule: Rule, kind: OrderType, *, review: bool = False, n: int = 1) -> list[Applied]:
    spec = OrderSpec(order_type=kind, key=f"{kind}-{n}", service_point_id=1, needs_review=review)
    return [
        Applied(Decision(rule, Outcome.CREATE, "why", order=spec), Outcome.CREATE, order_id=i)
        for i in range(n)
    ]


def test_summary_counts_notice_deliveries_apart_from_shutoffs() -> None:
    """The shut-off rule makes both cuts and 48-hour notice deliveries: the summary counts each order
    type, shut-offs awaiting approval on their own line, and never calls a notice a shut-off."""
    result = RunResult(run_id=1, run_date=dt.date(2026, 11, 30), rules=list(Rule), dry_run=False, batch_id=4)
    result.applied += _made(Rule.SHUTOFF, OrderType.SHUT_OFF_NONPAY, review=True, n=3)
    result.applied += _made(Rule.SHUTOFF, OrderType.NOTICE_DELIVERY, n=5)
    result.applied += _made(Rule.MOVES, OrderType.TURN_ON, n=1)
    result.applied.append(Applied(Decision(Rule.SHUTOFF, Outcome.HOLD, "dispute", count=2), Outcome.HOLD))
    summary = summarize(result)
    assert summary.made[OrderType.SHUT_OFF_NONPAY] == 3 and summary.made[OrderType.NOTICE_DELIVERY] == 5
    assert summary.awaiting_approval == 3
    lines = summary.lines()
    assert lines[0] == "3 shut-offs for non-payment awaiting a supervisor's approval (shut-off batch 4)"
    assert "5 notice deliveries" in lines and "1 turn-on (move-in)" in lines
    assert not any("shut-off" in line for line in lines[1:] if "notice" in line)
    assert lines[-1].startswith("2 held back by rule shutoff")
