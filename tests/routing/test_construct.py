"""The greedy construction that warm-starts OR-Tools: every constraint holds, urgent work goes first."""

from __future__ import annotations

from benchmarks.routing import utility_problem, verify_plan
from routing import Break, Plan, TimeWindow
from routing.construct import construct, plan_routes
from routing.solver import travel_matrix
from tests.routing.conftest import problem, stop, tech


def built(p):
    m = travel_matrix(p)
    routes = construct(p, m)
    return routes, plan_routes(p, m, routes)


def test_skills_and_pins_are_respected():
    """A stop goes only to a technician with every required skill, and a pinned stop to its technician."""
    p = problem(
        [
            tech("reader", skills=frozenset({"read"})),
            tech("tester", skills=frozenset({"read", "meter_test"})),
        ],
        [
            stop("t1", 1, 0, required_skills=frozenset({"meter_test"})),
            stop("r1", 0, 1),
            stop("pin", 2, 2, pinned_technician="reader"),
        ],
    )
    routes, _ = built(p)
    assert "t1" in routes["tester"] and "pin" in routes["reader"]


def test_windows_and_breaks_hold_in_the_timed_routes():
    """Every stop starts inside its window; the break starts inside its own window; verified independently."""
    p = problem(
        [tech("a", breaks=(Break(11 * 3600, 12 * 3600, 1800),))],
        [
            stop(f"s{i}", i, 0, windows=(TimeWindow(8 * 3600 + i * 1800, 9 * 3600 + i * 1800),))
            for i in range(8)
        ],
    )
    _routes, timed = built(p)
    for route in timed:
        for visit in route.visits:
            window = next(s for s in p.stops if s.id == visit.stop_id).windows[0]
            assert window.start_s <= visit.start_s <= window.end_s
        for brk in route.breaks:
            assert 11 * 3600 <= brk.start_s <= 12 * 3600
    plan = Plan(tuple(timed), (), 0, 0, "construction")
    ok, problems = verify_plan(p, plan)
    assert ok, problems


def test_urgent_work_is_placed_before_routine_work_when_the_day_is_full():
    """With room for only some stops, the priority-0 stops are all placed and priority-5 ones are left out."""
    stops = [stop(f"u{i}", 1 + i * 0.1, 0, priority=0, service_s=3600) for i in range(3)]
    stops += [stop(f"r{i}", 1 + i * 0.1, 1, priority=5, service_s=3600) for i in range(8)]
    p = problem([tech("a")], stops)
    routes, _ = built(p)
    placed = set(routes["a"])
    assert {"u0", "u1", "u2"} <= placed and len(placed) < len(stops)


def test_locked_sequence_is_kept_in_order():
    """Stops locked to a technician stay with them in the locked order."""
    p = problem(
        [tech("a"), tech("b")], [stop("x", 5, 0), stop("y", 1, 0), stop("z", 3, 0)], locked={"b": ("x", "y")}
    )
    routes, _ = built(p)
    assert routes["b"].index("x") < routes["b"].index("y")


def test_construction_is_deterministic_and_fills_a_utility_day():
    """Same input, same routes; on a 300-stop day with 12 CSFRs every technician gets work, all of it feasible."""
    p = utility_problem(300, 12)
    first, timed = built(p)
    second, _ = built(p)
    assert first == second
    assert all(first[t.id] for t in p.technicians)
    ok, problems = verify_plan(p, Plan(tuple(timed), (), 0, 0, "construction"))
    assert ok, problems
    assert sum(len(r) for r in first.values()) >= 200


def test_capacity_is_respected():
    """Demand beyond a technician's capacity is not loaded onto them."""
    p = problem([tech("a", capacity=10)], [stop(f"s{i}", i, 0, demand=4) for i in range(5)])
    routes, _ = built(p)
    assert len(routes["a"]) == 2
