"""Re-planning mid-day: start each technician where and when they are, keep what is done.

Completed and in-progress stops are taken out of the problem and put back at the head of their
technician's route unchanged. The rest is solved again from the current plan as a warm start.
``insert_emergency`` additionally locks every technician's remaining sequence (same technician,
same relative order), so the only thing that changes is where the new work goes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from routing.construct import plan_routes, simulate
from routing.diagnose import diagnose_unassigned, skilled_technicians
from routing.model import (
    Break,
    Location,
    Plan,
    Problem,
    Route,
    SolveParams,
    Stop,
    Technician,
    TimeWindow,
    Unassigned,
)
from routing.solver import solve, travel_matrix


@dataclass(frozen=True, slots=True)
class TechnicianState:
    """Where a technician is now.

    Parameters
    ----------
    technician_id
        Which technician.
    location
        Where they are, or where the in-progress job is.
    available_s
        When they can leave ``location`` (now, or when the in-progress job ends).
    done_stop_ids
        Completed and in-progress stops, in the order they were worked; never moved.
    breaks_taken
        Whether the day's breaks are behind them.
    """

    technician_id: str
    location: Location
    available_s: int
    done_stop_ids: tuple[str, ...] = ()
    breaks_taken: bool = False


@dataclass(frozen=True, slots=True)
class EmergencyInsertion:
    """The plan after inserting an emergency and who got it (``None`` if nobody could)."""

    plan: Plan
    technician_id: str | None


def _sequence(plan: Plan, tech_id: str) -> list[str]:
    try:
        return [v.stop_id for v in plan.route_of(tech_id).visits]
    except KeyError:
        return []


def _remaining_technician(tech: Technician, state: TechnicianState | None, now_s: int) -> Technician:
    """The technician as they are now: later shift start, current place, breaks still ahead."""
    location = tech.start if state is None else state.location
    ready = max(tech.shift.start_s, now_s if state is None else max(now_s, state.available_s))
    latest_end = tech.shift.end_s + tech.max_overtime_s
    ready = min(ready, latest_end)
    shift_end = max(ready, tech.shift.end_s)
    overtime = max(0, latest_end - shift_end)
    breaks: list[Break] = []
    if state is None or not state.breaks_taken:
        for b in tech.breaks:
            earliest = max(b.earliest_start_s, ready)
            if earliest <= b.latest_start_s and b.latest_start_s + b.duration_s <= latest_end:
                breaks.append(Break(earliest, b.latest_start_s, b.duration_s))
    max_work = tech.max_work_s
    if max_work is not None:
        max_work = max(1, max_work - max(0, ready - tech.shift.start_s))
    return replace(
        tech,
        start=location,
        shift=TimeWindow(ready, shift_end),
        breaks=tuple(breaks),
        max_overtime_s=overtime,
        max_work_s=max_work,
    )


def replan(
    problem: Problem,
    plan: Plan,
    states: Mapping[str, TechnicianState],
    now_s: int,
    params: SolveParams,
    *,
    new_stops: Sequence[Stop] = (),
    keep_sequences: bool = False,
) -> Plan:
    """Re-plan the rest of the day.

    Parameters
    ----------
    problem
        The morning's problem (its locked sequences still hold).
    plan
        The plan being worked.
    states
        Technician id -> where and when they are; technicians without a state have not started.
    now_s
        The current time.
    params
        Search parameters for the re-solve.
    new_stops
        Work that arrived since (emergencies, call-ins).
    keep_sequences
        Lock every technician's remaining planned sequence, so new work is only inserted.

    Returns
    -------
    Plan
        Done stops first, unchanged, then the re-planned rest.
    """
    done: dict[str, str] = {}
    for tech_id, state in states.items():
        if tech_id not in {t.id for t in problem.technicians}:
            raise ValueError(f"states: technician {tech_id!r} is not in the problem")
        for stop_id in state.done_stop_ids:
            done[stop_id] = tech_id
    known = {s.id for s in problem.stops}
    for s in new_stops:
        if s.id in known:
            raise ValueError(f"new_stops: stop {s.id!r} is already in the problem")
    techs = tuple(_remaining_technician(t, states.get(t.id), now_s) for t in problem.technicians)
    stops = tuple(s for s in problem.stops if s.id not in done) + tuple(new_stops)
    remaining = {t.id: [sid for sid in _sequence(plan, t.id) if sid not in done] for t in problem.technicians}
    locked: dict[str, tuple[str, ...]] = {}
    if keep_sequences:
        locked = {tid: tuple(seq) for tid, seq in remaining.items() if seq}
    else:
        for tid, seq in problem.locked.items():
            kept = tuple(sid for sid in seq if sid not in done)
            if kept:
                locked[tid] = kept
    sub = Problem(technicians=techs, stops=stops, locked=locked, travel=problem.travel)
    rest = solve(sub, params, initial_routes=remaining)
    return _merge(problem, plan, rest, states)


def _merge(problem: Problem, plan: Plan, rest: Plan, states: Mapping[str, TechnicianState]) -> Plan:
    routes: list[Route] = []
    for tech in problem.technicians:
        new = rest.route_of(tech.id)
        state = states.get(tech.id)
        if state is None or not state.done_stop_ids:
            routes.append(new)
            continue
        wanted = set(state.done_stop_ids)
        try:
            old = plan.route_of(tech.id)
            done_visits = tuple(v for v in old.visits if v.stop_id in wanted)
            start_s = old.start_s
            old_breaks = tuple(b for b in old.breaks if b.start_s < new.start_s)
        except KeyError:
            done_visits, start_s, old_breaks = (), new.start_s, ()
        end_s = new.end_s if new.visits else max(new.end_s, state.available_s)
        routes.append(
            Route(
                technician_id=tech.id,
                start_s=start_s,
                end_s=end_s,
                visits=done_visits + new.visits,
                breaks=old_breaks + new.breaks,
                travel_s=sum(v.travel_s for v in done_visits) + new.travel_s,
                idle_s=sum(v.start_s - v.arrival_s for v in done_visits) + new.idle_s,
                overtime_s=max(0, end_s - tech.shift.end_s),
            )
        )
    return Plan(tuple(routes), rest.unassigned, rest.objective, sum(r.travel_s for r in routes), rest.status)


def insert_emergency(
    problem: Problem,
    plan: Plan,
    states: Mapping[str, TechnicianState],
    now_s: int,
    emergency: Stop,
    params: SolveParams,
) -> EmergencyInsertion:
    """Insert one urgent stop without reordering anybody's remaining work.

    Every technician's remaining sequence is kept as it is; the emergency goes to the skilled
    technician and position where its service can start earliest while that whole route stays
    feasible (ties: least added travel). This is a direct feasible insertion, not a search, so it
    answers in well under a second on a 1,000-stop day. ``params`` is accepted for symmetry with
    ``replan`` (no search runs).
    """
    del params
    done: dict[str, str] = {}
    for tech_id, state in states.items():
        if tech_id not in {t.id for t in problem.technicians}:
            raise ValueError(f"states: technician {tech_id!r} is not in the problem")
        for stop_id in state.done_stop_ids:
            done[stop_id] = tech_id
    if emergency.id in {s.id for s in problem.stops}:
        raise ValueError(f"emergency: stop {emergency.id!r} is already in the problem")
    techs = tuple(_remaining_technician(t, states.get(t.id), now_s) for t in problem.technicians)
    stops = (*tuple(s for s in problem.stops if s.id not in done), emergency)
    sub = Problem(technicians=techs, stops=stops, travel=problem.travel)
    matrix = travel_matrix(sub)
    index = {s.id: i for i, s in enumerate(stops)}
    e = index[emergency.id]
    remaining = {
        t.id: [sid for sid in _sequence(plan, t.id) if sid not in done and sid in index] for t in techs
    }
    allowed, _reason = skilled_technicians(sub, emergency)
    best: tuple[int, int, int, int] | None = None  # (emergency start, added travel, v, position)
    n = len(stops)
    for v in allowed:
        seq = [index[sid] for sid in remaining[techs[v].id]]
        nodes = [n + 2 * v, *seq]
        for p in range(len(seq) + 1):
            trial = [*seq[:p], e, *seq[p:]]
            schedule = simulate(techs[v], v, trial, stops, matrix)
            if schedule is None:
                continue
            start_e = next(leg.start_s for leg in schedule.legs if leg.stop == e)
            b = seq[p] if p < len(seq) else n + 2 * v + 1
            added = matrix[nodes[p]][e] + matrix[e][b] - matrix[nodes[p]][b]
            key = (start_e, added, v, p)
            if best is None or key < best:
                best = key
    routes = {t.id: list(remaining[t.id]) for t in techs}
    chosen: str | None = None
    if best is not None:
        _, _, v, p = best
        chosen = techs[v].id
        routes[chosen].insert(p, emergency.id)
    else:
        # No room anywhere: make room by leaving out the least urgent remaining stop(s) of one route
        # (never a stop as urgent as the emergency), keeping everybody's order otherwise.
        bumped = _insert_by_bumping(techs, stops, matrix, allowed, remaining, index, e)
        if bumped is not None:
            chosen, sequence = bumped
            routes[chosen] = sequence
    rest_routes = tuple(plan_routes(sub, matrix, routes))
    placed = {v.stop_id for r in rest_routes for v in r.visits}
    unassigned = tuple(
        Unassigned(s.id, diagnose_unassigned(sub, s, matrix, i))
        for i, s in enumerate(stops)
        if s.id not in placed
    )
    rest = Plan(
        rest_routes,
        unassigned,
        sum(r.travel_s for r in rest_routes),
        sum(r.travel_s for r in rest_routes),
        "insertion",
    )
    return EmergencyInsertion(_merge(problem, plan, rest, states), chosen)


BUMP_CANDIDATES = 6  # least urgent stops per route tried for removal
MAX_BUMPED = 2


def _insert_by_bumping(
    techs: Sequence[Technician],
    stops: Sequence[Stop],
    matrix: Sequence[Sequence[int]],
    allowed: Sequence[int],
    remaining: Mapping[str, list[str]],
    index: Mapping[str, int],
    e: int,
) -> tuple[str, list[str]] | None:
    """The technician and new sequence that takes the emergency after leaving out the fewest, least urgent
    stops (at most MAX_BUMPED, each less urgent than the emergency); earliest emergency start wins."""
    urgency = stops[e].priority
    best: tuple[int, int, int, int, str, list[str]] | None = (
        None  # (bumped, -priority sum, start, v, tech, seq)
    )
    for v in allowed:
        seq = [index[sid] for sid in remaining[techs[v].id]]
        movable = sorted(
            (i for i in seq if stops[i].priority > urgency), key=lambda i: (-stops[i].priority, i)
        )
        movable = movable[:BUMP_CANDIDATES]
        options: list[tuple[int, ...]] = [(i,) for i in movable]
        options += [(a, b) for k, a in enumerate(movable) for b in movable[k + 1 :]][: BUMP_CANDIDATES * 2]
        for drop in options[: BUMP_CANDIDATES * 3]:
            if len(drop) > MAX_BUMPED:
                continue
            kept = [i for i in seq if i not in drop]
            for p in range(len(kept) + 1):
                trial = [*kept[:p], e, *kept[p:]]
                schedule = simulate(techs[v], v, trial, stops, matrix)
                if schedule is None:
                    continue
                start_e = next(leg.start_s for leg in schedule.legs if leg.stop == e)
                key = (len(drop), -sum(stops[i].priority for i in drop), start_e, v)
                if best is None or key < best[:4]:
                    best = (*key, techs[v].id, [stops[i].id for i in trial])
                break  # earliest feasible position for this removal set
    if best is None:
        return None
    return best[4], best[5]
