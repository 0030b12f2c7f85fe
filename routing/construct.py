"""A fast, constraint-aware construction: the warm start OR-Tools improves, and a plan in its own right.

OR-Tools' own first-solution heuristics evaluate every insertion through its constraint propagation;
with lunch breaks, skills and windows together that is far too slow for a utility day (1,000 stops,
40 technicians: a handful of stops placed in a minute). This module inserts stops greedily in plain
Python with its own schedule simulation, which is exact enough to be a feasible witness:

* stops go in by value (``values``, else by urgency: priority 0 first), then by how few technicians
  may do them, then by how tight their window is, so when the day is full it is the least valuable
  work that is left out;
* each stop is tried only on the technicians whose routes (or starts) are nearest to it, at every
  position, and goes where it adds the least cost (travel plus overtime at the technician's price)
  while the whole route stays feasible; with ``values``, only if that cost is below its value;
* a route is feasible when its load fits the vehicle, every stop starts inside one of its windows (waiting allowed), the break
  starts inside its window (taken at the latest moment the next leg would otherwise pass it), the
  route ends by the shift end plus the allowed overtime, and its span stays within ``max_work_s``;
* locked sequences are placed first, in their order, on their technician.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from routing.diagnose import skilled_technicians
from routing.model import BreakSlot, Problem, Route, Stop, Technician, Visit
from routing.objective import overtime_cost

NEIGHBOUR_TECHS = 8  # technicians tried per stop: the nearest routes


@dataclass(frozen=True, slots=True)
class _Leg:
    stop: int  # stop index
    arrival_s: int
    start_s: int
    departure_s: int
    travel_s: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """A simulated route: visits with times, the break, and the end."""

    legs: tuple[_Leg, ...]
    breaks: tuple[BreakSlot, ...]
    start_s: int
    end_s: int


def simulate(
    tech: Technician,
    v: int,
    route: Sequence[int],
    stops: Sequence[Stop],
    matrix: Sequence[Sequence[int]],
    *,
    strict: bool = True,
) -> Schedule | None:
    """The schedule of technician ``v`` doing ``route`` (stop indices) in order, or None if infeasible.

    With ``strict=False`` it never gives up: a missed window starts the stop on arrival, a late break
    is taken when it can be, and the route may end late (used to time a route that must be kept).
    """
    n = len(stops)
    if strict and tech.capacity is not None and sum(stops[i].demand for i in route) > tech.capacity:
        return None
    start_node, end_node = n + 2 * v, n + 2 * v + 1
    t = tech.shift.start_s
    pos = start_node
    pending = list(tech.breaks)
    taken: list[BreakSlot] = []
    legs: list[_Leg] = []
    latest_end = tech.shift.end_s + tech.max_overtime_s
    for idx in route:
        stop = stops[idx]
        travel = matrix[pos][idx]
        arrival = t + travel
        start = arrival
        if stop.windows:
            window = next((w for w in stop.windows if w.end_s >= arrival), None)
            if window is None and strict:
                return None
            start = max(arrival, window.start_s) if window is not None else arrival
        # Take a pending break before this leg if doing the leg would carry us past its latest start.
        while pending and start + stop.service_s > pending[0].latest_start_s:
            brk = pending.pop(0)
            b_start = max(t, brk.earliest_start_s)
            if b_start > brk.latest_start_s and strict:
                return None
            taken.append(BreakSlot(b_start, brk.duration_s))
            t = b_start + brk.duration_s
            arrival = t + travel
            start = arrival
            if stop.windows:
                window = next((w for w in stop.windows if w.end_s >= arrival), None)
                if window is None and strict:
                    return None
                start = max(arrival, window.start_s) if window is not None else arrival
        departure = start + stop.service_s
        legs.append(_Leg(idx, arrival, start, departure, travel))
        t = departure
        pos = idx
    for brk in pending:  # breaks still owed: taken before driving home
        b_start = max(t, brk.earliest_start_s)
        if b_start > brk.latest_start_s and strict:
            return None
        taken.append(BreakSlot(b_start, brk.duration_s))
        t = b_start + brk.duration_s
    end = t + matrix[pos][end_node]
    if strict and end > latest_end:
        return None
    if strict and tech.max_work_s is not None and end - tech.shift.start_s > tech.max_work_s:
        return None
    return Schedule(tuple(legs), tuple(taken), tech.shift.start_s, end)


def construct(
    problem: Problem, matrix: Sequence[Sequence[int]], values: Sequence[int] | None = None
) -> dict[str, list[str]]:
    """Greedy insertion: technician id -> stop ids in visiting order (unplaced stops are left out).

    ``values`` (one per stop, see ``routing.objective.stop_values``) orders the work and leaves out a
    stop whose cheapest position costs more than it is worth; without it every feasible stop goes in.
    """
    stops = problem.stops
    techs = problem.technicians
    n = len(stops)
    routes: list[list[int]] = [[] for _ in techs]
    tech_index = {t.id: v for v, t in enumerate(techs)}
    stop_index = {s.id: i for i, s in enumerate(stops)}
    locked_on: dict[int, int] = {}
    for tech_id, seq in problem.locked.items():
        v = tech_index[tech_id]
        for sid in seq:
            i = stop_index[sid]
            trial = [*routes[v], i]
            if simulate(techs[v], v, trial, stops, matrix) is not None:
                routes[v] = trial
            locked_on[i] = v
    allowed: list[list[int]] = []
    for stop in stops:
        ids, _reason = skilled_technicians(problem, stop)
        allowed.append(ids)

    def tightness(i: int) -> tuple[int, int, int, int, str]:
        s = stops[i]
        span = sum(w.end_s - w.start_s for w in s.windows) if s.windows else 10**9
        worth = -values[i] if values is not None else 0
        return (worth, s.priority, len(allowed[i]), span, s.id)

    def overtime(v: int, end_s: int) -> int:
        return overtime_cost(techs[v], end_s)

    ends = [t.shift.start_s for t in techs]  # each route's end (shift start while empty)
    for v in range(len(techs)):
        if routes[v]:
            sched = simulate(techs[v], v, routes[v], stops, matrix, strict=False)
            ends[v] = sched.end_s if sched is not None else ends[v]

    order = sorted((i for i in range(n) if i not in locked_on and allowed[i]), key=tightness)
    full: set[int] = set()  # technicians that have already refused a stop (checked last)
    for i in order:
        nearest = _nearest_techs(i, [v for v in allowed[i] if v not in full], routes, n, matrix)
        # The nearest routes first; only when none of them can take the stop, every other allowed one
        # (so work is not dropped while a technician elsewhere still has room).
        rest = [v for v in allowed[i] if v not in nearest]
        best: tuple[int, int, int, int] | None = None  # (added cost, v, position, new end)
        for group in (nearest, rest):
            if best is not None:
                # The nearest routes' best place costs overtime: only a colleague whose route ends
                # early enough to take the stop within the shift can do better.
                group = [v for v in group if ends[v] + stops[i].service_s <= techs[v].shift.end_s]
            for v in group:
                route = routes[v]
                prev_nodes = [n + 2 * v, *route]
                fits = False
                for p in range(len(route) + 1):
                    a = prev_nodes[p]
                    b = route[p] if p < len(route) else n + 2 * v + 1
                    added = matrix[a][i] + matrix[i][b] - matrix[a][b]
                    if best is not None and added >= best[0]:
                        continue
                    sched = simulate(techs[v], v, [*route[:p], i, *route[p:]], stops, matrix)
                    if sched is not None:
                        fits = True
                        cost = added + overtime(v, sched.end_s) - overtime(v, ends[v])
                        if best is None or cost < best[0]:
                            best = (cost, v, p, sched.end_s)
                if not fits and best is None and group is nearest:
                    full.add(v)
            # The nearest routes suffice unless their best place costs overtime: then try the rest,
            # where a colleague may have the time.
            if best is not None and overtime(best[1], best[3]) == overtime(best[1], ends[best[1]]):
                break
        if best is not None and (values is None or best[0] < values[i]):
            _, v, p, end_s = best
            routes[v].insert(p, i)
            ends[v] = end_s
    return {techs[v].id: [stops[i].id for i in route] for v, route in enumerate(routes)}


def _nearest_techs(
    i: int, allowed: Sequence[int], routes: Sequence[Sequence[int]], n: int, matrix: Sequence[Sequence[int]]
) -> list[int]:
    """The allowed technicians whose route or start is nearest to stop ``i``."""

    def distance(v: int) -> int:
        nodes = [n + 2 * v, *routes[v]]
        return min(matrix[node][i] for node in nodes)

    if len(allowed) <= NEIGHBOUR_TECHS:
        return list(allowed)
    return sorted(allowed, key=lambda v: (distance(v), v))[:NEIGHBOUR_TECHS]


def plan_routes(
    problem: Problem, matrix: Sequence[Sequence[int]], routes: dict[str, list[str]]
) -> list[Route]:
    """The constructed routes as plan Routes with times (the fallback when OR-Tools finds nothing better)."""
    stop_index = {s.id: i for i, s in enumerate(problem.stops)}
    out = []
    for v, tech in enumerate(problem.technicians):
        seq = [stop_index[s] for s in routes.get(tech.id, [])]
        # A route handed in must be kept whole even if it no longer fits exactly (times run late).
        sched = simulate(tech, v, seq, problem.stops, matrix) or simulate(
            tech, v, seq, problem.stops, matrix, strict=False
        )
        assert sched is not None
        visits = tuple(
            Visit(problem.stops[leg.stop].id, leg.arrival_s, leg.start_s, leg.departure_s, leg.travel_s)
            for leg in sched.legs
        )
        n = len(problem.stops)
        last = sched.legs[-1].stop if sched.legs else n + 2 * v
        travel = sum(leg.travel_s for leg in sched.legs) + (matrix[last][n + 2 * v + 1] if sched.legs else 0)
        idle = sum(leg.start_s - leg.arrival_s for leg in sched.legs)
        out.append(
            Route(
                tech.id,
                sched.start_s,
                sched.end_s if sched.legs else sched.start_s,
                visits,
                sched.breaks,
                travel,
                idle,
                max(0, sched.end_s - tech.shift.end_s) if sched.legs else 0,
            )
        )
    return out
