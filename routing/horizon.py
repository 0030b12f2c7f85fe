"""A rolling look-ahead: which of the next N working days each piece of work belongs to.

Planning one day at a time takes everything that is open today, so periodic work raised in one batch
(a month's meter tests) lands on one day and fights today's urgent work for the few technicians with
the skill. ``assign_days`` looks ahead at lower precision than a route: each day is the crew's hours
by skill (shift less breaks, less a share for driving), each stop its service time, skills and the
last day it may be done on (its due date). Work due soonest goes first. Today takes what its crew
has room for (no idle technician while work waits); what does not fit today goes to the day up to its
due day where the technicians able to do it are least loaded (ties: the earliest), so work that can
wait flows evenly over the coming days instead of piling onto the next one. Work that fits no day up
to its due day goes to the least loaded day anyway and is reported late (``DayAssignment.late``), so
nothing passes its due date unnoticed.

Today's plan then values each stop by its day (the server does this): work assigned to today at its
full value, later work at a fraction, so it is done today only where a technician has time for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from routing.model import Stop, Technician

TRAVEL_SHARE = 0.25  # share of each shift kept for driving between stops


@dataclass(frozen=True, slots=True)
class DayAssignment:
    """The day index (0 = today) each stop belongs to, and the stops that fit no day by their due day."""

    day_of: Mapping[str, int]
    late: frozenset[str]
    load: tuple[float, ...]  # each day's assigned service time over the crew's working time


def assign_days(
    days: Sequence[Sequence[Technician]],
    stops: Sequence[Stop],
    due_day: Mapping[str, int],
    *,
    travel_share: float = TRAVEL_SHARE,
) -> DayAssignment:
    """Spread ``stops`` over ``days`` by due day and capacity.

    Parameters
    ----------
    days
        The technicians working each day of the look-ahead (index 0 is today), with that day's shift.
    stops
        The open work; a stop's skills and pin limit who may do it, as in a plan.
    due_day
        Stop id -> the last day index it may be done on (0 = due today or overdue; a value past the
        horizon means it may wait beyond it). Stops missing here may be done on any day.
    travel_share
        Fraction of each shift kept for driving.

    Returns
    -------
    DayAssignment
        Stop id -> day index for every stop; those that fit no day up to their due day are ``late``.
    """
    if not days:
        raise ValueError("days is empty: the look-ahead needs at least today")
    if not 0 <= travel_share < 1:
        raise ValueError(f"travel_share must be in [0, 1), got {travel_share!r}")
    horizon = len(days)
    # free[d][tech id] = working seconds left that day; total[d] = that day's working seconds.
    free: list[dict[str, float]] = []
    skills: list[dict[str, frozenset[str]]] = []
    for crew in days:
        free.append(
            {
                t.id: max(0.0, (t.shift.end_s - t.shift.start_s - sum(b.duration_s for b in t.breaks)))
                * (1 - travel_share)
                for t in crew
            }
        )
        skills.append({t.id: t.skills for t in crew})
    capacity = [dict(day) for day in free]

    def able(d: int, stop: Stop) -> list[str]:
        return [
            tid
            for tid, have in skills[d].items()
            if stop.required_skills <= have and stop.pinned_technician in (None, tid)
        ]

    def load(d: int, techs: list[str]) -> float:
        cap = sum(capacity[d][t] for t in techs)
        return 1.0 - sum(free[d][t] for t in techs) / cap if cap > 0 else float("inf")

    order = sorted(
        stops, key=lambda s: (min(due_day.get(s.id, horizon), horizon), s.priority, -s.service_s, s.id)
    )
    day_of: dict[str, int] = {}
    late: set[str] = set()
    for stop in order:
        last = max(0, min(due_day.get(stop.id, horizon - 1), horizon - 1))
        options = [(d, able(d, stop)) for d in range(horizon)]
        today = options[0][1]
        if today and max(free[0][t] for t in today) >= stop.service_s:
            who = max(today, key=lambda t: (free[0][t], t))
            free[0][who] -= stop.service_s
            day_of[stop.id] = 0
            continue
        fitting = [
            (load(d, techs), d, techs)
            for d, techs in options[: last + 1]
            if techs and max(free[d][t] for t in techs) >= stop.service_s
        ]
        if not fitting:
            # Nothing by its due day: the least loaded day it can be done at all (reported late).
            fitting = [(load(d, techs), d, techs) for d, techs in options if techs]
            late.add(stop.id)
            if not fitting:
                day_of[stop.id] = 0  # nobody has the skill on any day: today's plan says so
                continue
        _, d, techs = min(fitting, key=lambda f: (round(f[0], 6), f[1]))
        who = max(techs, key=lambda t: (free[d][t], t))
        free[d][who] -= stop.service_s
        day_of[stop.id] = d
    totals = [
        1.0 - sum(free[d].values()) / sum(capacity[d].values()) if sum(capacity[d].values()) else 0.0
        for d in range(horizon)
    ]
    return DayAssignment(day_of, frozenset(late), tuple(totals))
