"""Why a stop is unassigned: checked in the order a dispatcher would ask."""

from __future__ import annotations

from collections.abc import Sequence

from routing.model import Problem, Stop, Technician, UnassignedReason


def skilled_technicians(problem: Problem, stop: Stop) -> tuple[list[int], UnassignedReason]:
    """Indices of technicians allowed to do ``stop`` (skills, pin, capacity), and the reason when none."""
    skilled = [
        v
        for v, t in enumerate(problem.technicians)
        if stop.required_skills <= t.skills and (stop.pinned_technician in (None, t.id))
    ]
    if not skilled:
        return [], UnassignedReason.NO_SKILLED_TECHNICIAN
    fitting = [v for v in skilled if _fits_capacity(problem.technicians[v], stop)]
    if not fitting:
        return [], UnassignedReason.OVER_CAPACITY
    return fitting, UnassignedReason.DAY_FULL


def _fits_capacity(tech: Technician, stop: Stop) -> bool:
    return tech.capacity is None or stop.demand <= tech.capacity


def reachable(problem: Problem, stop: Stop, matrix: Sequence[Sequence[int]], stop_index: int, v: int) -> bool:
    """Whether technician ``v`` could do ``stop`` alone: reach a window and get home within the shift."""
    tech = problem.technicians[v]
    n_stops = len(problem.stops)
    start_node = n_stops + 2 * v
    end_node = start_node + 1
    latest_end = tech.shift.end_s + tech.max_overtime_s
    breaks_s = sum(b.duration_s for b in tech.breaks)
    to_stop = int(matrix[start_node][stop_index])
    back = int(matrix[stop_index][end_node])
    if tech.max_work_s is not None and to_stop + stop.service_s + back + breaks_s > tech.max_work_s:
        return False
    arrival = tech.shift.start_s + to_stop
    windows = [(w.start_s, w.end_s) for w in stop.windows] or [(tech.shift.start_s, latest_end)]
    for w_start, w_end in windows:
        begin = max(arrival, w_start)
        if begin <= w_end and begin + stop.service_s + back + breaks_s <= latest_end:
            return True
    return False


def diagnose_unassigned(
    problem: Problem, stop: Stop, matrix: Sequence[Sequence[int]], stop_index: int
) -> UnassignedReason:
    """The reason a stop is left out: no skilled technician, over capacity, window unreachable, else day full."""
    allowed, reason = skilled_technicians(problem, stop)
    if not allowed:
        return reason
    if not any(reachable(problem, stop, matrix, stop_index, v) for v in allowed):
        return UnassignedReason.WINDOW_UNREACHABLE
    return UnassignedReason.DAY_FULL
