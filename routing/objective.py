"""What a plan costs a utility: travel, overtime at its price, work left out at its value, and balance.

Everything is in travel seconds (one second of a technician driving costs 1):

* **travel**: the seconds driven;
* **overtime**: each second a route ends past the shift end costs the technician's ``overtime_cost_per_s``,
  and overtime once started is paid for at least ``overtime_min_s`` (OR-Tools' polish prices only the
  per-second part; the plans are compared with the whole price);
* **work left out**: each unplaced stop costs its ``value`` (``Stop.value``, or by priority from
  ``SolveParams.drop_penalty_s`` and ``priority_factor``), so a stop is done only where doing it costs
  less than it is worth;
* **balance** (``SolveParams.balance_cost_per_s``, off by default): each second a route ends past its
  even share of the day's work costs that much, so a day that is not full is spread over the crew.

The ruin-and-recreate search, the construction and OR-Tools' model all price the same terms; the solver
compares the plans they return with ``plan_cost``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from routing.model import Plan, Problem, Route, SolveParams, Technician

BALANCE_SLACK_S = 15 * 60  # a route may end this long after its even share before balance costs anything


def priority_penalties(problem: Problem, params: SolveParams) -> dict[int, int]:
    """Drop penalty per priority: the least urgent level present pays drop_penalty_s, each level up x factor."""
    levels = sorted({s.priority for s in problem.stops}, reverse=True)
    return {p: params.drop_penalty_s * params.priority_factor**rank for rank, p in enumerate(levels)}


def stop_values(problem: Problem, params: SolveParams) -> list[int]:
    """Each stop's value (the cost of leaving it out), in the order of ``problem.stops``."""
    by_priority = priority_penalties(problem, params)
    return [s.value if s.value is not None else by_priority[s.priority] for s in problem.stops]


def balance_targets(problem: Problem, routes: Sequence[Route], unplaced_service_s: int = 0) -> list[int]:
    """The time each technician's route should end by for an even day: the day's work spread by shift length.

    The day's work is the time the given routes take (first departure to last arrival) plus the service
    time of the work they leave out; each technician's share is that fraction of their shift, plus
    ``BALANCE_SLACK_S``, never past the shift end.
    """
    work = sum(r.end_s - r.start_s for r in routes if r.visits) + unplaced_service_s
    shifts = [t.shift.end_s - t.shift.start_s for t in problem.technicians]
    load = min(1.0, work / max(1, sum(shifts)))
    return [
        min(t.shift.end_s, t.shift.start_s + math.ceil(load * length) + BALANCE_SLACK_S)
        for t, length in zip(problem.technicians, shifts, strict=True)
    ]


def overtime_cost(tech: Technician, end_s: int) -> int:
    """The price of a route of ``tech`` ending at ``end_s``: its overtime, at least ``overtime_min_s`` once started."""
    overtime = end_s - tech.shift.end_s
    return tech.overtime_cost_per_s * max(overtime, tech.overtime_min_s) if overtime > 0 else 0


def overtime_price(problem: Problem, routes: Sequence[Route]) -> int:
    """The price of the routes' overtime, in travel seconds."""
    by_id = {t.id: t for t in problem.technicians}
    return sum(overtime_cost(by_id[r.technician_id], r.end_s) for r in routes if r.visits)


def plan_cost(
    problem: Problem,
    plan: Plan,
    values: Sequence[int],
    *,
    targets: Sequence[int] | None = None,
    balance_cost_per_s: int = 0,
) -> int:
    """Travel + overtime at its price + the value of every stop left out + balance (see the module doc)."""
    index = {s.id: i for i, s in enumerate(problem.stops)}
    cost = sum(r.travel_s for r in plan.routes if r.visits) + overtime_price(problem, plan.routes)
    cost += sum(values[index[u.stop_id]] for u in plan.unassigned if u.stop_id in index)
    if targets is not None and balance_cost_per_s:
        tech_index = {t.id: v for v, t in enumerate(problem.technicians)}
        cost += sum(
            balance_cost_per_s * max(0, r.end_s - targets[tech_index[r.technician_id]])
            for r in plan.routes
            if r.visits
        )
    return cost
