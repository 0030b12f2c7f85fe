"""Mid-day re-planning: done work stays, technicians start where they are, emergencies go in."""

from __future__ import annotations

from routing import SolveParams, TechnicianState, insert_emergency, replan, solve
from tests.routing.conftest import HOUR, MIN, at, problem, stop, tech


def _day() -> tuple[object, object]:
    p = problem(
        [tech("t1"), tech("t2", start=at(20, 0))],
        [stop(f"s{i}", (i * 3) % 20, (i * 7) % 9) for i in range(12)],
    )
    plan = solve(p, SolveParams(time_limit_s=2.0, solution_limit=200))
    return p, plan


def test_replan_keeps_completed_and_in_progress_stops() -> None:
    """Done and in-progress stops keep their technician, position and times; the rest start after now."""
    p, plan = _day()
    now = 9 * HOUR
    route = plan.route_of("t1")  # type: ignore[attr-defined]
    done = route.visits[:2]
    here = next(s for s in p.stops if s.id == done[-1].stop_id)  # type: ignore[attr-defined]
    states = {
        "t1": TechnicianState(
            "t1", here.location, max(now, done[-1].departure_s), tuple(v.stop_id for v in done)
        )
    }
    result = replan(p, plan, states, now, SolveParams(time_limit_s=2.0, solution_limit=200))  # type: ignore[arg-type]
    new_route = result.route_of("t1")
    assert new_route.visits[: len(done)] == done
    for v in new_route.visits[len(done) :]:
        assert v.start_s >= states["t1"].available_s
    assert sorted(result.assignment()) == sorted(plan.assignment())  # type: ignore[attr-defined]


def test_emergency_insertion_keeps_locked_order() -> None:
    """Inserting an emergency changes nobody's remaining order and puts the emergency on a skilled technician."""
    p = problem(
        [tech("t1", skills=frozenset({"emergency"})), tech("t2")],
        [stop(f"s{i}", (i * 3) % 20, (i * 7) % 9) for i in range(12)],
    )
    plan = solve(p, SolveParams(time_limit_s=2.0, solution_limit=200))
    now = 8 * HOUR + 30 * MIN
    emergency = stop("leak", 10, 4, priority=0, required_skills=frozenset({"emergency"}))
    result = insert_emergency(
        p, plan, {}, now, emergency, SolveParams(time_limit_s=1.5, metaheuristic="GREEDY_DESCENT")
    )
    assert result.technician_id == "t1"
    for r in plan.routes:
        before = [v.stop_id for v in r.visits]  # nobody has started: everything is still ahead
        after = [v.stop_id for v in result.plan.route_of(r.technician_id).visits if v.stop_id != "leak"]
        assert after == before
