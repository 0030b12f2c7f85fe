"""Ruin and recreate: every plan it returns is feasible, and it finds good plans from bad ones."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import Break, Problem, SolveParams, TimeWindow, solve
from routing.construct import construct
from routing.ruin_recreate import improve, supports
from routing.solver import _penalties, travel_matrix
from tests.routing.conftest import HOUR, MIN, problem, stop, tech


def _run(
    p: Problem, start: dict[str, list[str]], *, iterations: int = 3000, seed: int = 0
) -> dict[str, list[str]]:
    matrix = travel_matrix(p)
    penalties = _penalties(p, SolveParams(time_limit_s=1))
    return improve(p, matrix, start, penalties, time_limit_s=30.0, seed=seed, iteration_limit=iterations)


def _travel(p: Problem, routes: dict[str, list[str]]) -> int:
    matrix = travel_matrix(p)
    index = {s.id: i for i, s in enumerate(p.stops)}
    n = len(p.stops)
    total = 0
    for v, t in enumerate(p.technicians):
        seq = [index[s] for s in routes.get(t.id, [])]
        if seq:
            nodes = [n + 2 * v, *seq, n + 2 * v + 1]
            total += sum(matrix[a][b] for a, b in itertools.pairwise(nodes))
    return total


def _objective(p: Problem, routes: dict[str, list[str]]) -> int:
    """Travel plus the drop penalty of every stop left out that some technician could do."""
    penalties = _penalties(p, SolveParams(time_limit_s=1))
    placed = {s for r in routes.values() for s in r}
    left = [
        s for s in p.stops if s.id not in placed and any(s.required_skills <= t.skills for t in p.technicians)
    ]
    return _travel(p, routes) + sum(penalties[s.priority] for s in left)


def _fits(p: Problem, v: int, seq: list[int], break_at: int | None) -> bool:
    """Whether technician ``v`` can do ``seq`` with its one break taken before stop ``break_at``
    (where it is, before driving on; ``len(seq)`` = before driving home), or with no break."""
    matrix = travel_matrix(p)
    t_ = p.technicians[v]
    n = len(p.stops)
    t, here, load = t_.shift.start_s, n + 2 * v, 0
    for k in range(len(seq) + 1):
        if k == break_at:
            brk = t_.breaks[0]
            start = max(t, brk.earliest_start_s)
            if start > brk.latest_start_s:
                return False
            t = start + brk.duration_s
        if k == len(seq):
            break
        s = p.stops[seq[k]]
        arrival = t + matrix[here][seq[k]]
        w = next((w for w in s.windows if w.end_s >= arrival), None) if s.windows else None
        if s.windows and w is None:
            return False
        t = max(arrival, w.start_s if w else arrival) + s.service_s
        here, load = seq[k], load + s.demand
    end = t + matrix[here][n + 2 * v + 1]
    latest = t_.shift.end_s + t_.max_overtime_s
    if t_.max_work_s is not None:
        latest = min(latest, t_.shift.start_s + t_.max_work_s)
    return end <= latest and (t_.capacity is None or load <= t_.capacity)


def _assert_feasible(p: Problem, routes: dict[str, list[str]]) -> None:
    """Each route is feasible (for a technician with a break: at some place of the break) and done by a
    technician allowed to; no stop is on two routes."""
    index = {s.id: i for i, s in enumerate(p.stops)}
    seen: list[str] = []
    for v, t in enumerate(p.technicians):
        seq = [index[s] for s in routes.get(t.id, [])]
        places = range(len(seq) + 1) if t.breaks else [None]
        assert any(_fits(p, v, seq, k) for k in places), (t.id, routes[t.id])
        for i in seq:
            assert p.stops[i].required_skills <= t.skills
        seen += routes.get(t.id, [])
    assert len(seen) == len(set(seen)), "a stop is on two routes"


def test_finds_the_round_trip_from_a_scrambled_route() -> None:
    """Twenty stops on a circle, handed in scrambled: the search returns the trip around the circle."""
    stops = [
        stop(f"s{k}", 20 * math.cos(2 * math.pi * k / 20), 20 * math.sin(2 * math.pi * k / 20))
        for k in range(20)
    ]
    p = problem([tech("t1", shift=TimeWindow(0, 24 * HOUR), start=stop("o", 20, 0).location)], stops)
    scrambled = [f"s{k}" for k in random.Random(4).sample(range(20), 20)]
    out = _run(p, {"t1": scrambled})
    _assert_feasible(p, out)
    order = [int(s[1:]) for s in out["t1"]]
    first = order.index(0)
    around = order[first:] + order[:first]
    assert around in (list(range(20)), [0, *range(19, 0, -1)])


def test_better_than_the_start_with_no_fewer_stops() -> None:
    """From the construction on a windowed, tightly capacitated day: no fewer stops, and a lower cost."""
    rng = random.Random(11)
    stops = [
        stop(
            f"s{i}",
            rng.uniform(-30, 30),
            rng.uniform(-30, 30),
            demand=rng.randint(1, 5),
            windows=(TimeWindow(8 * HOUR + rng.randint(0, 5) * HOUR, 8 * HOUR + rng.randint(6, 8) * HOUR),),
        )
        for i in range(40)
    ]
    p = problem([tech(f"t{v}", capacity=30) for v in range(4)], stops)
    start = construct(p, travel_matrix(p))
    out = _run(p, start)
    _assert_feasible(p, out)
    assert sum(len(r) for r in out.values()) >= sum(len(r) for r in start.values())
    assert _objective(p, out) < _objective(p, start)


def test_places_work_the_start_left_out_and_respects_skills() -> None:
    """Stops missing from the starting plan are placed, each only on a technician with its skill."""
    stops = [stop(f"m{i}", i, 3, required_skills=frozenset({"meter_test"})) for i in range(5)]
    stops += [stop(f"r{i}", -i, 3) for i in range(5)]
    p = problem([tech("reader"), tech("tester", skills=frozenset({"meter_test"}))], stops)
    out = _run(p, {"reader": [], "tester": []})
    _assert_feasible(p, out)
    assert sorted(out["tester"])[:5] == [f"m{i}" for i in range(5)]
    assert len(out["reader"]) + len(out["tester"]) == 10


def test_a_full_day_drops_the_least_urgent_work() -> None:
    """When the shift holds only some stops, the emergencies stay and the rereads are left out."""
    urgent = [stop(f"e{i}", 10 + i, 0, service_s=40 * MIN, priority=0) for i in range(4)]
    reread = [stop(f"r{i}", 10, 1 + i, service_s=40 * MIN, priority=5) for i in range(4)]
    p = problem([tech("t1", shift=TimeWindow(8 * HOUR, 12 * HOUR))], reread + urgent)
    out = _run(p, {"t1": [s.id for s in reread]})
    _assert_feasible(p, out)
    assert {f"e{i}" for i in range(4)} <= set(out["t1"])


def test_several_windows_and_latest_end_are_kept() -> None:
    """A stop with two windows is served in one of them, and no route ends after its latest end."""
    stops = [
        stop(
            "two", 10, 0, windows=(TimeWindow(8 * HOUR, 8 * HOUR + 5 * MIN), TimeWindow(13 * HOUR, 14 * HOUR))
        ),
        *[stop(f"s{i}", i, 10 - i, windows=(TimeWindow(9 * HOUR, 12 * HOUR),)) for i in range(8)],
    ]
    p = problem([tech("t1", max_work_s=7 * HOUR), tech("t2", shift=TimeWindow(8 * HOUR, 13 * HOUR))], stops)
    out = _run(p, construct(p, travel_matrix(p)))
    _assert_feasible(p, out)
    assert sum(len(r) for r in out.values()) == 9


def test_same_seed_and_iterations_give_the_same_plan() -> None:
    """With an iteration limit the result depends only on the problem, the start and the seed."""
    rng = random.Random(2)
    stops = [stop(f"s{i}", rng.uniform(-20, 20), rng.uniform(-20, 20)) for i in range(30)]
    p = problem([tech("t1"), tech("t2"), tech("t3")], stops)
    start = construct(p, travel_matrix(p))
    assert _run(p, start, seed=5) == _run(p, start, seed=5)


def test_a_start_that_breaks_a_window_comes_back_unchanged() -> None:
    """A starting route the model finds infeasible is returned as it was, not half-repaired."""
    p = problem([tech("t1")], [stop("a", 30, 0, windows=(TimeWindow(8 * HOUR, 8 * HOUR + 5 * MIN),))])
    assert _run(p, {"t1": ["a"]}) == {"t1": ["a"]}


def test_locked_sequences_are_not_modelled() -> None:
    """Problems with locked sequences are declined (the solver keeps OR-Tools alone for them)."""
    locked = problem([tech("t1")], [stop("a", 1, 1)], locked={"t1": ("a",)})
    assert supports(problem([tech("t1")], [stop("a", 1, 1)]))
    assert not supports(locked)
    with pytest.raises(ValueError, match="locked sequences"):
        _run(locked, {"t1": ["a"]})


def test_lunch_is_taken_in_its_window_and_can_fill_a_wait() -> None:
    """A lunch that only fits in the wait before an appointment: every stop is placed, the route is
    feasible with the break, and the solver's plan (OR-Tools times the breaks) keeps lunch apart from work."""
    lunch = Break(11 * HOUR, 12 * HOUR, 30 * MIN)
    stops = [
        stop("a", 5, 0, windows=(TimeWindow(10 * HOUR, 10 * HOUR + 30 * MIN),)),
        stop(
            "noon",
            10,
            0,
            service_s=90 * MIN,
            windows=(TimeWindow(11 * HOUR + 40 * MIN, 11 * HOUR + 45 * MIN),),
        ),
        *[stop(f"s{i}", i, 8, windows=(TimeWindow(13 * HOUR, 15 * HOUR),)) for i in range(5)],
    ]
    p = problem([tech("t1", breaks=(lunch,)), tech("t2", breaks=(lunch,))], stops)
    out = _run(p, {"t1": [], "t2": []})
    _assert_feasible(p, out)
    assert sum(len(r) for r in out.values()) == len(stops)
    plan = solve(p, SolveParams(time_limit_s=2.0, seed=1, solution_limit=50, iteration_limit=2000))
    assert not plan.unassigned
    for r in plan.routes:
        assert len(r.breaks) == 1
        b = r.breaks[0]
        assert lunch.earliest_start_s <= b.start_s <= lunch.latest_start_s
        for visit in r.visits:
            assert visit.departure_s <= b.start_s or visit.start_s >= b.start_s + b.duration_s


def test_solver_uses_it_and_returns_a_checked_plan() -> None:
    """Without breaks each worker runs ruin and recreate, and the plan comes back through OR-Tools."""
    from routing.solver import _portfolio

    workers = _portfolio(SolveParams(time_limit_s=1, workers=2, seed=7), cold_allowed=True, ruin=True)
    assert [s.ruin_seed for s in workers] == [7, 8]
    rng = random.Random(5)
    stops = [stop(f"s{i}", rng.uniform(-20, 20), rng.uniform(-20, 20)) for i in range(25)]
    p = problem([tech("t1"), tech("t2")], stops)
    plan = solve(p, SolveParams(time_limit_s=2.0, seed=1, solution_limit=50, iteration_limit=2000))
    assert not plan.unassigned
    assert plan.travel_s <= _travel(p, construct(p, travel_matrix(p)))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_stops=st.integers(1, 25),
    n_techs=st.integers(1, 4),
)
def test_any_random_day_stays_feasible(seed: int, n_stops: int, n_techs: int) -> None:
    """Random windows, demands, skills, shifts and lunches: the result is feasible and costs no more than
    the start."""
    rng = random.Random(seed)
    stops = []
    for i in range(n_stops):
        open_h = rng.randint(8, 14)
        stops.append(
            stop(
                f"s{i}",
                rng.uniform(-40, 40),
                rng.uniform(-40, 40),
                service_s=rng.randint(0, 40) * MIN,
                demand=rng.randint(0, 4),
                priority=rng.randint(0, 5),
                required_skills=frozenset({"x"}) if rng.random() < 0.2 else frozenset(),
                windows=(TimeWindow(open_h * HOUR, (open_h + rng.randint(0, 3)) * HOUR + 30 * MIN),)
                if rng.random() < 0.7
                else (),
            )
        )
    techs = [
        tech(
            f"t{v}",
            capacity=rng.choice([None, 10]),
            skills=frozenset({"x"}) if rng.random() < 0.5 else frozenset(),
            shift=TimeWindow(rng.randint(7, 9) * HOUR, rng.randint(14, 17) * HOUR),
            breaks=(Break(11 * HOUR, 12 * HOUR + rng.randint(0, 60) * MIN, rng.randint(15, 45) * MIN),)
            if rng.random() < 0.5
            else (),
        )
        for v in range(n_techs)
    ]
    p = problem(techs, stops)
    start = construct(p, travel_matrix(p))
    out = _run(p, start, iterations=300, seed=seed)
    _assert_feasible(p, out)
    assert _objective(p, out) <= _objective(p, start)
