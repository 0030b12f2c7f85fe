"""Field-work rules: move-in/out turn-ons and turn-offs, meter tests and change-outs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.codes import OrderType
from contracts.forms import FormKind, FormMismatch, MeterTestFields, parse_fields
from server.orders.calendar import years_after
from server.orders.policy import Policy
from server.orders.rules.base import Decision, OrderSpec, Outcome, Rule, create, hold


@dataclass(frozen=True, slots=True)
class MoveFacts:
    request_id: int
    cis_request_id: str
    kind: str  # move_in | move_out
    requested_date: dt.date
    service_point_id: int
    account_id: int | None
    customer_name: str
    meter_id: int | None


def move_rule(move: MoveFacts, policy: Policy, run_date: dt.date) -> Decision | None:
    """A turn-on (move-in, initial read) or turn-off (move-out, final read) for the requested date."""
    if move.requested_date > run_date + dt.timedelta(days=policy.moves.lead_days):
        return None
    if move.requested_date < run_date - dt.timedelta(days=30):
        return hold(
            Rule.MOVES,
            f"move request {move.cis_request_id} for {move.requested_date} is over 30 days old; "
            "ask the office whether it still stands",
            account_id=move.account_id,
        )
    if move.kind == "move_in":
        order_type, what = OrderType.TURN_ON, "move-in: turn the water on and take the initial read"
    else:
        order_type, what = OrderType.TURN_OFF, "move-out: take the final read and turn the water off"
    # Due on the day the customer asked for, even when that has passed (a late request, a missed run):
    # planning then offers it as carried over with that day, never silently re-dated.
    who = f" for {move.customer_name}" if move.customer_name else ""
    return create(
        Rule.MOVES,
        f"{what}{who}, requested for {move.requested_date} (request {move.cis_request_id})",
        OrderSpec(
            order_type,
            key=f"move:{move.request_id}",
            service_point_id=move.service_point_id,
            account_id=move.account_id,
            meter_id=move.meter_id,
            scheduled_date=move.requested_date,
        ),
        source_id=move.request_id,
    )


@dataclass(frozen=True, slots=True)
class TestDueFacts:
    meter_id: int
    serial: str
    size: str
    service_point_id: int
    account_id: int | None
    last_tested: dt.date | None
    installed: dt.date | None


def periodic_test_rule(
    meters: Iterable[TestDueFacts],
    policy: Policy,
    run_date: dt.date,
    *,
    open_periodic: int = 0,
    itemize_waiting: bool = True,
    per_day: int = 0,
    days: Sequence[dt.date] = (),
) -> list[Decision]:
    """Meter tests for meters past their size's test interval, oldest due first, while fewer than
    `meter_test.max_open_periodic` periodic tests are open (`open_periodic` are already).

    With `per_day` (how many periodic tests the crew's testers can take a day) and `days` (the
    business days from the run date on), the tests are scheduled `per_day` to a day, oldest first, so
    they flow through the testers' capacity instead of all landing on one day (the last day takes
    what is left).

    Meters past due beyond the ceiling wait: one hold each, or with `itemize_waiting=False` one hold
    that counts them all (a district run; the "why" view of an account still names its meter)."""
    due: list[tuple[dt.date, TestDueFacts]] = []
    for m in meters:
        since = m.last_tested or m.installed
        if since is None:
            continue
        due_on = years_after(since, policy.meter_test.interval_for(m.size))
        if due_on <= run_date:
            due.append((due_on, m))
    due.sort(key=lambda t: (t[0], t[1].meter_id))
    cap = policy.meter_test.max_open_periodic
    room = max(0, cap - open_periodic)
    ceiling = f"{cap} periodic tests are open already (meter_test.max_open_periodic)"
    decisions = []
    for k, (due_on, m) in enumerate(due[:room]):
        day = days[min(k // per_day, len(days) - 1)] if per_day > 0 and days else None
        decisions.append(
            create(
                Rule.METER_TEST,
                _due_reason(m, policy, due_on),
                OrderSpec(
                    OrderType.METER_TEST,
                    key=f"meter_test:periodic:{m.meter_id}:{due_on.isoformat()}",
                    service_point_id=m.service_point_id,
                    account_id=m.account_id,
                    meter_id=m.meter_id,
                    scheduled_date=day,
                ),
            )
        )
    waiting = due[room:]
    if itemize_waiting:
        decisions.extend(
            hold(
                Rule.METER_TEST,
                f"{_due_reason(m, policy, due_on)}; waiting: {ceiling}",
                account_id=m.account_id,
                meter_id=m.meter_id,
            )
            for due_on, m in waiting
        )
    elif waiting:
        oldest = waiting[0][0]
        decisions.append(
            Decision(
                Rule.METER_TEST,
                Outcome.HOLD,
                f"{len(waiting):,} meters past their test interval are waiting (the oldest was due "
                f"{oldest}): {ceiling}",
                count=len(waiting),
            )
        )
    return decisions


def _due_reason(m: TestDueFacts, policy: Policy, due_on: dt.date) -> str:
    since = m.last_tested or m.installed
    what = "last tested" if m.last_tested else "installed"
    years = policy.meter_test.interval_for(m.size)
    return f'{m.size}" meter {m.serial} {what} {since}; its {years}-year test was due {due_on}'


@dataclass(frozen=True, slots=True)
class TestRequestFacts:
    request_id: int
    meter_id: int
    service_point_id: int
    account_id: int | None
    requested_at: dt.datetime
    requested_by: str
    note: str


def requested_test_rule(req: TestRequestFacts) -> Decision:
    """A meter test the customer asked for."""
    note = f": {req.note}" if req.note else ""
    return create(
        Rule.METER_TEST,
        f"customer asked for a meter test on {req.requested_at:%Y-%m-%d} (taken by {req.requested_by}){note}",
        OrderSpec(
            OrderType.METER_TEST,
            key=f"meter_test:request:{req.request_id}",
            service_point_id=req.service_point_id,
            account_id=req.account_id,
            meter_id=req.meter_id,
        ),
        source_id=req.request_id,
    )


@dataclass(frozen=True, slots=True)
class CompletedTestFacts:
    order_id: int
    meter_id: int | None
    service_point_id: int
    account_id: int | None
    completed_at: dt.datetime | None
    outcome: dict[str, Any]


def meter_test_result(outcome: dict[str, Any]) -> MeterTestFields | None:
    """A completed meter test's result (the tablet's `contracts.forms.MeterTestFields`) from the order's
    stored outcome; None when no result was recorded; FormMismatch naming a field that does not fit."""
    fields = outcome.get("fields")
    if not fields:
        return None
    result = parse_fields(FormKind.METER_TEST, fields)
    assert isinstance(result, MeterTestFields)
    return result


def change_out_reason(result: MeterTestFields) -> str | None:
    """Why a meter test's result calls for a change-out (None when it passed and may stay)."""
    if not result.passed:
        failed = ", ".join(
            f"{p.point} {p.accuracy_pct:g}% (accepted {p.min_pct:g}-{p.max_pct:g}%)"
            for p in result.points
            if not p.passed
        )
        return f"the meter failed its accuracy test at {failed}; billing accuracy {result.billing_accuracy_pct:g}%"
    if result.recommendation == "replace":
        return "the tester recommended replacing the meter"
    return None


def change_out_rule(test: CompletedTestFacts, policy: Policy) -> Decision | None:
    """A meter change-out after a failed test; a hold when the stored result cannot be read."""
    if not policy.meter_test.change_out_on_fail or test.meter_id is None:
        return None
    try:
        result = meter_test_result(test.outcome)
    except FormMismatch as exc:
        return hold(
            Rule.CHANGE_OUT,
            f"the result of meter test order {test.order_id} does not fit the form ({exc}); review it",
            account_id=test.account_id,
            meter_id=test.meter_id,
        )
    why = change_out_reason(result) if result is not None else None
    if why is None:
        return None
    return create(
        Rule.CHANGE_OUT,
        f"{why} on order {test.order_id}",
        OrderSpec(
            OrderType.METER_EXCHANGE,
            key=f"meter_exchange:test:{test.order_id}",
            service_point_id=test.service_point_id,
            account_id=test.account_id,
            meter_id=test.meter_id,
        ),
    )
