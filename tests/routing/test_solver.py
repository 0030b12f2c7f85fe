"""The OR-Tools model: every constraint of a field-service day, pinned on tiny problems."""

from __future__ import annotations

from routing import Break, Plan, SolveParams, TimeWindow, UnassignedReason, solve
from tests.routing.conftest import HOUR, MIN, problem, stop, tech


def _visit(plan: Plan, stop_id: str) -> tuple[str, int, int]:
    for r in plan.routes:
        for v in r.visits:
            if v.stop_id == stop_id:
                return r.technician_id, v.start_s, v.departure_s
    raise AssertionError(f"{stop_id} not in the plan")


def test_stop_never_goes_to_unskilled_technician(quick: SolveParams) -> None:
    """A stop needing a skill only goes to a technician with it, even when another is closer."""
    p = problem(
        [
            tech("reader", skills=frozenset({"read"})),
            tech("tester", start=tech("x").start, skills=frozenset({"meter_test"})),
        ],
        [stop(f"test{i}", 5 + i, 0, required_skills=frozenset({"meter_test"})) for i in range(4)]
        + [stop(f"read{i}", -5 - i, 0, required_skills=frozenset({"read"})) for i in range(4)],
    )
    plan = solve(p, quick)
    assert not plan.unassigned
    for r in plan.routes:
        skills = p.technician(r.technician_id).skills
        for v in r.visits:
            assert p.stops[[s.id for s in p.stops].index(v.stop_id)].required_skills <= skills


def test_windows_and_break_are_met(quick: SolveParams) -> None:
    """Service starts inside a window (either of two), and the lunch break overlaps no service."""
    lunch = Break(11 * HOUR + 30 * MIN, 12 * HOUR + 30 * MIN, 30 * MIN)
    p = problem(
        [tech("t1", breaks=(lunch,))],
        [
            stop("early", 10, 0, windows=(TimeWindow(9 * HOUR, 9 * HOUR + 15 * MIN),)),
            stop("noon", 10, 5, service_s=45 * MIN, windows=(TimeWindow(11 * HOUR + 40 * MIN, 12 * HOUR),)),
            stop(
                "two",
                0,
                10,
                windows=(TimeWindow(8 * HOUR, 8 * HOUR + 5 * MIN), TimeWindow(14 * HOUR, 15 * HOUR)),
            ),
            stop("late", 5, 5, windows=(TimeWindow(13 * HOUR, 13 * HOUR + 30 * MIN),)),
        ],
    )
    plan = solve(p, quick)
    assert not plan.unassigned
    route = plan.route_of("t1")
    assert len(route.breaks) == 1
    brk = route.breaks[0]
    assert lunch.earliest_start_s <= brk.start_s <= lunch.latest_start_s
    for v in route.visits:
        s = next(s for s in p.stops if s.id == v.stop_id)
        assert any(w.start_s <= v.start_s <= w.end_s for w in s.windows), v
        assert v.arrival_s <= v.start_s
        assert brk.start_s + brk.duration_s <= v.start_s or v.departure_s <= brk.start_s, (v, brk)


def test_pinned_stop_goes_to_its_technician(quick: SolveParams) -> None:
    """A stop pinned to a far-away technician goes to that technician."""
    p = problem(
        [tech("near"), tech("far", start=tech("x").start.__class__(lat=0.0, lon=100.0))],
        [stop("a", 1, 1, pinned_technician="far"), stop("b", 2, 1)],
    )
    plan = solve(p, quick)
    assert plan.assignment()["a"] == "far"


def test_locked_sequence_never_moves(quick: SolveParams) -> None:
    """Locked stops stay on their technician in their order even when a reorder would be shorter."""
    # A zig-zag order that optimisation would undo.
    locked = ("c", "a", "d", "b")
    p = problem(
        [tech("t1"), tech("t2")],
        [stop("a", 1, 0), stop("b", 2, 0), stop("c", 3, 0), stop("d", 4, 0), stop("free", 2, 1)],
        locked={"t2": locked},
    )
    plan = solve(p, quick)
    order = [v.stop_id for v in plan.route_of("t2").visits if v.stop_id in locked]
    assert order == list(locked)
    assert "free" in plan.assignment()


def test_infeasible_work_is_reported_with_its_reason(quick: SolveParams) -> None:
    """Unassigned stops carry why: no skill, window out of reach, over capacity, or day full."""
    p = problem(
        [tech("t1", skills=frozenset({"read"}), shift=TimeWindow(8 * HOUR, 10 * HOUR), capacity=5)],
        [
            stop("needs_test", 1, 1, required_skills=frozenset({"meter_test"})),
            stop("too_far_for_window", 100, 0, windows=(TimeWindow(8 * HOUR, 9 * HOUR),)),
            stop("too_heavy", 1, 0, demand=9),
            *[stop(f"fill{i}", 1, i % 3, service_s=30 * MIN) for i in range(6)],
        ],
    )
    plan = solve(p, quick)
    reasons = {u.stop_id: u.reason for u in plan.unassigned}
    assert reasons["needs_test"] is UnassignedReason.NO_SKILLED_TECHNICIAN
    assert reasons["too_far_for_window"] is UnassignedReason.WINDOW_UNREACHABLE
    assert reasons["too_heavy"] is UnassignedReason.OVER_CAPACITY
    full = [s for s, r in reasons.items() if s.startswith("fill")]
    assert full and all(reasons[s] is UnassignedReason.DAY_FULL for s in full)


def test_priorities_drop_lowest_first(quick: SolveParams) -> None:
    """When the day cannot hold everything, the least urgent stops are left out."""
    stops = [
        stop(f"p{prio}_{i}", 2 + i, prio, service_s=50 * MIN, priority=prio)
        for prio in (0, 2, 5)
        for i in range(3)
    ]
    p = problem([tech("t1", shift=TimeWindow(8 * HOUR, 14 * HOUR))], stops)
    plan = solve(p, quick)
    dropped = {u.stop_id for u in plan.unassigned}
    # Six 50-minute stops fit in the 6-hour day: exactly the three priority-5 stops are left out.
    assert dropped == {"p5_0", "p5_1", "p5_2"}
    assert all(u.reason is UnassignedReason.DAY_FULL for u in plan.unassigned)


def test_overtime_is_priced_and_reported(quick: SolveParams) -> None:
    """A route may run past the shift up to max_overtime_s, and the plan reports the overtime."""
    p = problem(
        [tech("t1", shift=TimeWindow(8 * HOUR, 9 * HOUR), max_overtime_s=2 * HOUR)],
        [stop(f"s{i}", 3, i, service_s=25 * MIN, priority=0) for i in range(3)],
    )
    plan = solve(p, quick)
    route = plan.route_of("t1")
    assert not plan.unassigned
    assert route.overtime_s == route.end_s - 9 * HOUR > 0
    assert route.end_s <= 11 * HOUR


def test_same_seed_same_plan() -> None:
    """With iteration and solution limits the plan is a function of the problem and seed alone."""
    p = problem([tech("t1"), tech("t2")], [stop(f"s{i}", (i * 7) % 11, (i * 5) % 13) for i in range(15)])
    params = SolveParams(time_limit_s=5.0, seed=3, solution_limit=100, iteration_limit=3000)
    first, second = solve(p, params), solve(p, params)
    assert first == second


def test_portfolio_pairs_the_warm_start_with_cold_starts() -> None:
    """Worker 1 starts from the construction, the others from OR-Tools' own first solutions (rotated
    by the seed); when re-planning every worker starts from the current plan, each searching differently."""
    from routing.solver import WARM, _portfolio

    two = _portfolio(SolveParams(time_limit_s=1, workers=2), cold_allowed=True)
    assert [s.first_solution for s in two] == [WARM, "PARALLEL_CHEAPEST_INSERTION"]
    rotated = _portfolio(SolveParams(time_limit_s=1, workers=2, seed=1), cold_allowed=True)
    assert [s.first_solution for s in rotated] == [WARM, "LOCAL_CHEAPEST_INSERTION"]
    assert [s.first_solution for s in _portfolio(SolveParams(time_limit_s=1), cold_allowed=True)] == [WARM]
    replan = _portfolio(SolveParams(time_limit_s=1, workers=3), cold_allowed=False)
    assert {s.first_solution for s in replan} == {WARM} and len({s.gls_lambda for s in replan}) == 3


def test_two_workers_place_every_stop_within_its_window() -> None:
    """The multi-process path (a warm and a cold worker) returns a complete, window-respecting plan."""
    stops = [
        stop(
            f"s{i}",
            (i * 7) % 11,
            (i * 5) % 13,
            windows=(TimeWindow(8 * HOUR + 30 * MIN * (i % 4), 12 * HOUR),),
        )
        for i in range(12)
    ]
    plan = solve(problem([tech("t1"), tech("t2")], stops), SolveParams(time_limit_s=2.0, workers=2))
    assert not plan.unassigned
    for r in plan.routes:
        for v in r.visits:
            i = int(v.stop_id[1:])
            assert 8 * HOUR + 30 * MIN * (i % 4) <= v.start_s <= 12 * HOUR
