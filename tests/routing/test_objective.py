"""The objective a utility pays for: overtime at its price, work at its value, balance; and reasons found by trying."""

from __future__ import annotations

import pytest

from routing import Plan, SolveParams, TimeWindow, UnassignedReason, solve
from routing.diagnose import describe
from tests.routing.conftest import HOUR, MIN, at, problem, stop, tech

# A periodic meter test is worth less than the least overtime can cost (a 30-minute minimum x 3 = 5400).
LOW_VALUE = 2000
OVERTIME = {"max_overtime_s": 2 * HOUR, "overtime_cost_per_s": 3, "overtime_min_s": 30 * MIN}
URGENT_VALUE = 1_000_000


def _overtime(plan: Plan) -> int:
    return sum(r.overtime_s for r in plan.routes)


def _ring(prefix: str, count: int, **kwargs: object) -> list:  # type: ignore[type-arg]
    """``count`` 30-minute stops 2-4 minutes from the origin."""
    return [stop(f"{prefix}{k}", 2 + k % 3, (k % 2), service_s=30 * MIN, **kwargs) for k in range(count)]


def test_low_priority_work_is_not_bought_with_overtime(quick: SolveParams) -> None:
    """A day with more low-value work than the shift holds leaves the rest out (not worth overtime)
    instead of buying overtime for it; priced by priority alone (the old travel-only objective with
    huge drop penalties), the same day buys overtime."""
    techs = [tech("t1", **OVERTIME)]
    # 18 x 30 min + travel: more than the 8-hour shift, less than shift + 2 h overtime.
    valued = problem(techs, _ring("test", 18, value=LOW_VALUE, priority=5))
    plan = solve(valued, quick)
    assert _overtime(plan) == 0
    assert plan.unassigned
    assert {u.reason for u in plan.unassigned} == {UnassignedReason.NOT_WORTH_OVERTIME}
    assert "overtime" in plan.unassigned[0].detail

    by_priority = problem(techs, _ring("test", 18, priority=5))
    assert _overtime(solve(by_priority, quick)) > 0


def test_urgent_work_is_worth_overtime(quick: SolveParams) -> None:
    """Work worth more than its overtime (an emergency, a restore, an appointment) still gets it."""
    techs = [tech("t1", **OVERTIME)]
    stops = [
        *_ring("test", 15, value=LOW_VALUE, priority=5),
        stop("restore", 3, 3, service_s=90 * MIN, value=URGENT_VALUE, priority=1),
        stop("main-break", 4, 1, service_s=60 * MIN, value=URGENT_VALUE, priority=0),
    ]
    plan = solve(problem(techs, stops), quick)
    placed = plan.assignment()
    assert "restore" in placed and "main-break" in placed
    # The urgent work is in; low-value tests fill only what the shift holds plus at most a sliver of
    # overtime that the urgent work already bought.
    assert _overtime(plan) <= 2 * HOUR
    assert all(u.stop_id.startswith("test") for u in plan.unassigned)


def test_no_overtime_while_a_skilled_colleague_is_free(quick: SolveParams) -> None:
    """A light day never gives one technician overtime while a colleague with the skill has time:
    the work nearest one yard overflows to the other technician rather than into overtime."""
    techs = [
        tech("near", skills=frozenset({"meter_test"}), **OVERTIME),
        tech("far", start=at(15, 0), skills=frozenset({"meter_test"}), **OVERTIME),
    ]
    # 17 x 30 min next to "near"'s yard: 8.5 h of service, one shift's worth and a bit.
    stops = _ring("test", 17, required_skills=frozenset({"meter_test"}), value=20_000)
    plan = solve(problem(techs, stops), quick)
    assert not plan.unassigned
    assert _overtime(plan) == 0
    assert plan.route_of("far").visits


def test_light_day_spreads_work_when_balance_is_on(quick: SolveParams) -> None:
    """With balance on, a light day (about half the crew's hours) goes to all three technicians, the
    longest day not much longer than the shortest; travel alone packs it onto fewer technicians."""
    techs = [tech(f"t{k}") for k in range(3)]
    stops = [stop(f"s{k}", 3 + k % 4, k % 3, service_s=35 * MIN) for k in range(20)]
    p = problem(techs, stops)

    def spans(plan: Plan) -> list[int]:
        return sorted(r.end_s - r.start_s if r.visits else 0 for r in plan.routes)

    packed = solve(p, quick)
    spread = solve(p, SolveParams(**{**_fields(quick), "balance_cost_per_s": 2}))
    assert not packed.unassigned and not spread.unassigned
    assert spans(packed)[0] == 0 or spans(packed)[-1] - spans(packed)[0] > 3 * HOUR
    assert spans(spread)[0] > 0
    assert spans(spread)[-1] - spans(spread)[0] <= 90 * MIN


def _fields(params: SolveParams) -> dict[str, object]:
    return {name: getattr(params, name) for name in params.__slots__}


def test_skill_bottleneck_is_named(quick: SolveParams) -> None:
    """When only one of four technicians has meter_test and the tests overflow their day while the
    others have nothing to do, each test left out says so ("needs meter_test: t0 is full (1 of 4
    technicians have it)"), a skill bottleneck heads the summary, and the idle technicians are listed."""
    techs = [tech("t0", skills=frozenset({"read", "meter_test"}))] + [
        tech(f"t{k}", skills=frozenset({"read"})) for k in range(1, 4)
    ]
    stops = _ring("test", 20, required_skills=frozenset({"meter_test"})) + [
        stop(f"read{k}", -3, k, required_skills=frozenset({"read"})) for k in range(3)
    ]
    plan = solve(problem(techs, stops), quick)
    left = plan.unassigned
    assert left and all(u.stop_id.startswith("test") for u in left)
    assert {u.reason for u in left} == {UnassignedReason.SKILL_SHORT}
    assert left[0].detail == "needs meter_test: t0 is full (1 of 4 technicians have it)"
    assert describe(left[0], name=lambda i: i.upper(), crew="CSFRs") == (
        "needs meter_test: T0 is full (1 of 4 CSFRs have it)"
    )
    first = plan.bottlenecks[0]
    assert (first.kind, first.skills, first.technician_ids, first.stops) == (
        "skill",
        ("meter_test",),
        ("t0",),
        len(left),
    )
    idle = {i.technician_id for i in plan.idle}
    assert {"t2", "t3"} <= idle and "t0" not in idle


def test_unreachable_window_says_by_how_much(quick: SolveParams) -> None:
    """A window nobody can reach in time is reported with the window and the minutes it is missed by."""
    late = stop("appt", 40, 0, windows=(TimeWindow(8 * HOUR, 8 * HOUR + 15 * MIN),))
    plan = solve(problem([tech("t1")], [late]), quick)
    (u,) = plan.unassigned
    assert u.reason is UnassignedReason.WINDOW_UNREACHABLE
    assert u.detail == "window 08:00-08:15 unreachable by 25 min"


def test_everyone_full_is_day_full(quick: SolveParams) -> None:
    """When every technician is full and nobody else is idle, the reason is the crew's hours."""
    techs = [tech("t1"), tech("t2")]
    stops = _ring("s", 40, priority=5)
    plan = solve(problem(techs, stops), quick)
    assert plan.unassigned
    assert {u.reason for u in plan.unassigned} == {UnassignedReason.DAY_FULL}
    assert plan.bottlenecks[-1].kind == "hours"
    assert "all 2 allowed technicians are full" in plan.unassigned[0].detail


@pytest.mark.parametrize("balance", [-1, 1.5])
def test_balance_cost_is_validated(balance: object) -> None:
    """A negative or fractional balance cost is refused with the field named."""
    with pytest.raises(ValueError, match="balance_cost_per_s"):
        SolveParams(time_limit_s=1, balance_cost_per_s=balance)  # type: ignore[arg-type]
