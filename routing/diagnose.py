"""Why a stop is unassigned: checked in the order a dispatcher would ask, and found by trying.

``diagnose_unassigned`` is the quick check (skills, capacity, reachability alone). ``explain`` goes
further on a finished plan: it tries to put each left-out stop back into every allowed technician's
route, at every position, and says what stopped it (the skill's holders are full while others have
time; it fits only with overtime that costs more than it is worth; a detour worth more than the work;
everyone is full), and it sums up the bottlenecks and the idle capacity that head the list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

from routing.model import (
    Bottleneck,
    IdleCapacity,
    Plan,
    Problem,
    Stop,
    Technician,
    Unassigned,
    UnassignedReason,
)

IDLE_MIN_S = 30 * 60  # a technician with at least this much of the shift free counts as idle capacity


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


def _minutes(seconds: int) -> int:
    return -(-max(0, seconds) // 60)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _names(ids: Sequence[str], name: Callable[[str], str], most: int = 6) -> str:
    shown = [name(i) for i in ids[:most]]
    return ", ".join(shown) + (f" and {len(ids) - most} more" if len(ids) > most else "")


def describe(u: Unassigned, *, name: Callable[[str], str] = str, crew: str = "technicians") -> str:
    """``u`` in a dispatcher's words; ``name`` maps a technician id to how people know them."""
    skills = ", ".join(u.skills) or "no skill"
    who = _names(u.technician_ids, name)
    if u.reason is UnassignedReason.NO_SKILLED_TECHNICIAN:
        if u.technician_ids:
            return f"pinned to {who}, who lacks {skills}"
        return f"needs {skills}: none of the {u.crew_size} {crew} has it"
    if u.reason is UnassignedReason.OVER_CAPACITY:
        return "larger than every allowed vehicle's capacity"
    if u.reason is UnassignedReason.WINDOW_UNREACHABLE:
        by = f" by {_minutes(u.short_s)} min" if u.short_s > 0 else ""
        if u.window is not None:
            return f"window {_clock(u.window[0])}-{_clock(u.window[1])} unreachable{by}"
        return f"too far to reach and return within the shift{by}"
    if u.reason is UnassignedReason.SKILL_SHORT:
        return (
            f"needs {skills}: {who} {'is' if len(u.technician_ids) == 1 else 'are'} full "
            f"({len(u.technician_ids)} of {u.crew_size} {crew} have it)"
        )
    if u.reason is UnassignedReason.NOT_WORTH_OVERTIME:
        return (
            f"fits only with {_minutes(u.short_s)} min of overtime ({who}), which costs more than it is worth"
        )
    if u.reason is UnassignedReason.NOT_WORTH_TRAVEL:
        return f"a {_minutes(u.short_s)} min detour ({who}) costs more than it is worth today"
    if not u.technician_ids:  # not tried (e.g. left out to make room for an emergency)
        return f"every {crew[:-1] if crew.endswith('s') else crew} who could do it is full"
    if len(u.technician_ids) == 1:
        return f"{who} is full, overtime included"
    return f"all {len(u.technician_ids)} allowed {crew} are full, overtime included ({who})"


def _route_nodes(problem: Problem, plan: Plan) -> list[list[int]]:
    index = {s.id: i for i, s in enumerate(problem.stops)}
    by_tech = {r.technician_id: r for r in plan.routes}
    out = []
    for t in problem.technicians:
        route = by_tech.get(t.id)
        out.append([index[v.stop_id] for v in route.visits if v.stop_id in index] if route else [])
    return out


def explain(problem: Problem, matrix: Sequence[Sequence[int]], plan: Plan, values: Sequence[int]) -> Plan:
    """``plan`` with every unassigned stop's reason found by trying, and its bottlenecks and idle capacity.

    Parameters
    ----------
    problem, matrix
        What was solved.
    plan
        The solver's plan.
    values
        Each stop's value (``routing.objective.stop_values``).
    """
    from routing.construct import simulate  # construct imports this module

    techs = problem.technicians
    index = {s.id: i for i, s in enumerate(problem.stops)}
    by_tech = {r.technician_id: r for r in plan.routes}
    nodes = _route_nodes(problem, plan)

    def end_of(v: int) -> int:
        route = by_tech.get(techs[v].id)
        return route.end_s if route is not None and route.visits else techs[v].shift.start_s

    def free_of(v: int) -> int:
        t = techs[v]
        route = by_tech.get(t.id)
        used = route.end_s - route.start_s if route is not None and route.visits else 0
        return max(0, t.shift.end_s - t.shift.start_s - used)

    free = [free_of(v) for v in range(len(techs))]
    waits = [by_tech[t.id].idle_s if t.id in by_tech else 0 for t in techs]
    explained: list[Unassigned] = []
    for old in plan.unassigned:
        i = index.get(old.stop_id)
        if i is None:
            explained.append(old)
            continue
        stop = problem.stops[i]
        base = Unassigned(
            stop.id,
            old.reason,
            skills=tuple(sorted(stop.required_skills)),
            crew_size=len(techs),
            window=(stop.windows[0].start_s, stop.windows[-1].end_s) if stop.windows else None,
        )
        allowed, why = skilled_technicians(problem, stop)
        if not allowed:
            pinned = (stop.pinned_technician,) if stop.pinned_technician else ()
            u = replace(base, reason=why, technician_ids=pinned)
        else:
            u = _tried(
                problem, matrix, stop, i, allowed, nodes, end_of, free, waits, values[i], simulate, base
            )
        explained.append(replace(u, detail=describe(u)))
    bottlenecks = _bottlenecks(problem, explained)
    idle = tuple(
        IdleCapacity(t.id, free[v], tuple(sorted(t.skills)))
        for v, t in sorted(enumerate(techs), key=lambda vt: (-free[vt[0]], vt[0]))
        if free[v] >= IDLE_MIN_S
    )
    return replace(plan, unassigned=tuple(explained), bottlenecks=bottlenecks, idle=idle)


def _tried(
    problem: Problem,
    matrix: Sequence[Sequence[int]],
    stop: Stop,
    i: int,
    allowed: Sequence[int],
    nodes: Sequence[Sequence[int]],
    end_of: Callable[[int], int],
    free: Sequence[int],
    waits: Sequence[int],
    value: int,
    simulate: Callable[..., object],
    base: Unassigned,
) -> Unassigned:
    """Try ``stop`` at every position of every allowed route and name what stopped it."""
    techs = problem.technicians
    ids = tuple(techs[v].id for v in allowed)
    reach = [v for v in allowed if reachable(problem, stop, matrix, i, v)]
    if not reach:
        return replace(
            base,
            reason=UnassignedReason.WINDOW_UNREACHABLE,
            technician_ids=ids,
            short_s=min(_lateness(problem, stop, matrix, i, v) for v in allowed),
        )
    n = len(problem.stops)
    in_shift: tuple[int, str] | None = None  # (added travel, technician id)
    with_overtime: tuple[int, str] | None = None  # (added overtime, technician id)
    for v in reach:
        tech = techs[v]
        seq = list(nodes[v])
        latest = tech.shift.end_s + tech.max_overtime_s
        if tech.max_work_s is not None:
            latest = min(latest, tech.shift.start_s + tech.max_work_s)
        # Room on the route: time before its latest end plus the waiting inside it. An insertion needs
        # its service and its added travel out of that.
        room = latest - end_of(v) + waits[v] if seq else latest - tech.shift.start_s
        if room < stop.service_s:
            continue
        prev = [n + 2 * v, *seq]
        old_overtime = max(0, end_of(v) - tech.shift.end_s) if seq else 0
        for p in range(len(seq) + 1):
            nxt = seq[p] if p < len(seq) else n + 2 * v + 1
            added = int(matrix[prev[p]][i]) + int(matrix[i][nxt]) - (int(matrix[prev[p]][nxt]) if seq else 0)
            if added + stop.service_s > room:
                continue
            sched = simulate(tech, v, [*seq[:p], i, *seq[p:]], problem.stops, matrix)
            if sched is None:
                continue
            end_s = sched.end_s  # type: ignore[attr-defined]
            overtime = max(0, end_s - tech.shift.end_s) - old_overtime
            if overtime <= 0:
                if in_shift is None or added < in_shift[0]:
                    in_shift = (added, tech.id)
            elif with_overtime is None or overtime < with_overtime[0]:
                with_overtime = (overtime, tech.id)
    if in_shift is not None:
        reason = UnassignedReason.NOT_WORTH_TRAVEL if in_shift[0] >= value else UnassignedReason.DAY_FULL
        if reason is UnassignedReason.NOT_WORTH_TRAVEL:
            return replace(base, reason=reason, technician_ids=(in_shift[1],), short_s=in_shift[0])
    # No allowed route has room in its shift. A skill bottleneck when others, without the skill, have
    # time to spare (the cause a dispatcher can act on, even where overtime could squeeze it in).
    allowed_set = set(allowed)
    others_idle = [
        v for v in range(len(techs)) if v not in allowed_set and free[v] >= max(IDLE_MIN_S, stop.service_s)
    ]
    if stop.pinned_technician is None and stop.required_skills and others_idle:
        scarce = tuple(sorted(k for k in stop.required_skills if not all(k in t.skills for t in techs)))
        if scarce:
            return replace(base, reason=UnassignedReason.SKILL_SHORT, technician_ids=ids, skills=scarce)
    if with_overtime is not None:
        return replace(
            base,
            reason=UnassignedReason.NOT_WORTH_OVERTIME,
            technician_ids=(with_overtime[1],),
            short_s=with_overtime[0],
        )
    return replace(base, reason=UnassignedReason.DAY_FULL, technician_ids=ids)


def _lateness(problem: Problem, stop: Stop, matrix: Sequence[Sequence[int]], stop_index: int, v: int) -> int:
    """How late technician ``v``, going straight there, is for the stop's last window (or the shift's end)."""
    tech = problem.technicians[v]
    n = len(problem.stops)
    to_stop = int(matrix[n + 2 * v][stop_index])
    back = int(matrix[stop_index][n + 2 * v + 1])
    arrival = tech.shift.start_s + to_stop
    if stop.windows and arrival > stop.windows[-1].end_s:
        return arrival - stop.windows[-1].end_s
    begin = max(arrival, stop.windows[0].start_s) if stop.windows else arrival
    breaks_s = sum(b.duration_s for b in tech.breaks)
    return max(0, begin + stop.service_s + back + breaks_s - tech.shift.end_s - tech.max_overtime_s)


def _bottlenecks(problem: Problem, explained: Sequence[Unassigned]) -> tuple[Bottleneck, ...]:
    """Skill bottlenecks (by skill) then the crew's hours, largest first."""
    service = {s.id: s.service_s for s in problem.stops}
    by_skill: dict[tuple[str, ...], list[Unassigned]] = defaultdict(list)
    hours: list[Unassigned] = []
    for u in explained:
        if u.reason is UnassignedReason.SKILL_SHORT:
            by_skill[u.skills].append(u)
        elif u.reason in (UnassignedReason.DAY_FULL, UnassignedReason.NOT_WORTH_OVERTIME):
            hours.append(u)
    out: list[Bottleneck] = []
    for skills, group in sorted(by_skill.items(), key=lambda kv: -len(kv[1])):
        holders = tuple(t.id for t in problem.technicians if set(skills) <= t.skills)
        work = sum(service.get(u.stop_id, 0) for u in group)
        out.append(Bottleneck("skill", skills, holders, len(group), work))
    if hours:
        work = sum(service.get(u.stop_id, 0) for u in hours)
        out.append(Bottleneck("hours", (), (), len(hours), work))
    return tuple(replace(b, text=describe_bottleneck(b, crew_size=len(problem.technicians))) for b in out)


def describe_bottleneck(
    b: Bottleneck, *, crew_size: int, name: Callable[[str], str] = str, crew: str = "technicians"
) -> str:
    """A bottleneck in a dispatcher's words."""
    hours = f"{b.work_s / 3600:.1f} h"
    if b.kind == "skill":
        return (
            f"skill short: {', '.join(b.skills)}: {b.stops} left out ({hours} on site); only "
            f"{len(b.technician_ids)} of {crew_size} {crew} have it ({_names(b.technician_ids, name)}) "
            "and they are full"
        )
    return f"hours short: {b.stops} left out ({hours} on site) that the crew's time, or overtime worth its price, cannot take"
