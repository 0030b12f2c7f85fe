"""The OR-Tools model of a Problem; the only module in Curbstop that imports ortools.

Model
-----
* Nodes: one per stop, then a start node and an end node per technician.
* Arc cost: travel seconds. The ``time`` dimension adds service time to travel, allows
  waiting (slack), bounds each stop by its windows (gaps removed with ``RemoveInterval``),
  each route by the shift plus allowed overtime (soft upper bound at the shift end, priced per
  second), and by ``max_work_s`` on the route span. Breaks are fixed-duration intervals.
* Skills, pinned technicians and capacity become each stop's allowed vehicles.
* Every stop is optional through a disjunction whose penalty is its value (``Stop.value``, else
  growing by ``priority_factor`` per priority level), so the least valuable work is dropped first and
  work is done only where it costs less than it is worth; locked stops cost far more.
* The objective (routing/objective.py): travel, overtime at each technician's price (a soft upper
  bound at the shift end), the value of work left out, and optionally balance (a soft upper bound on
  each route's span at its even share of the day). The workers' plans and the construction are
  compared with ``plan_cost``; the unassigned stops are then explained by trying (routing/diagnose.py).
* Locked sequences fix the vehicle and the relative order (a ``rank`` counting dimension).
* Search: when the problem has no locked sequences, each worker improves our construction by ruin
  and recreate (routing/ruin_recreate.py, breaks included) for most of the budget and OR-Tools'
  guided local search polishes the result and checks every constraint; otherwise a first-solution
  heuristic then guided local search. With ``workers > 1`` the workers run in separate processes
  (different seeds, or a portfolio of OR-Tools strategies) and the cheapest plan wins.
"""

from __future__ import annotations

import itertools
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from routing.construct import construct, plan_routes, simulate
from routing.diagnose import diagnose_unassigned, explain, skilled_technicians
from routing.model import (
    BreakSlot,
    Plan,
    Problem,
    Route,
    SolveParams,
    Unassigned,
    UnassignedReason,
    Visit,
)
from routing.objective import balance_targets, plan_cost, priority_penalties, stop_values
from routing.travel import HaversineTravel, TravelTimeSource

# The first worker always starts its guided local search from our construction (routing/construct.py)
# or the caller's plan. Further workers start from OR-Tools' own first solutions (first solution
# strategy, metaheuristic, GLS lambda), rotated by the seed: measured on Solomon instances at 10 s, a
# search from parallel cheapest insertion ends far better than one from the construction on tight
# windows (R101: 0.6% against 4.7% above the optimum) and worse elsewhere, so running both side by side
# beats two copies of either. PATH_CHEAPEST_ARC finds no solution at all on tight windows (R101).
WARM = "CONSTRUCTION"
# Ruin and recreate, where it applies, gets this share of a worker's budget; OR-Tools' guided local
# search polishes its plan for the rest (measured on Solomon instances at 10 s: 0.2% above the optima
# against 4.2% for the OR-Tools portfolio alone).
RUIN_SHARE = 0.9
PORTFOLIO: tuple[tuple[str, str, float], ...] = (
    ("PARALLEL_CHEAPEST_INSERTION", "GUIDED_LOCAL_SEARCH", 0.1),
    ("LOCAL_CHEAPEST_INSERTION", "GUIDED_LOCAL_SEARCH", 0.1),
    ("SAVINGS", "GUIDED_LOCAL_SEARCH", 0.1),
)


@dataclass(frozen=True, slots=True)
class _Strategy:
    first_solution: str
    metaheuristic: str
    gls_lambda: float
    ruin_seed: int | None = None  # run ruin and recreate with this seed before OR-Tools


def travel_matrix(problem: Problem, travel: TravelTimeSource | None = None) -> list[list[int]]:
    """Travel seconds between every node of the model: stops, then each technician's start and end."""
    source = travel if travel is not None else problem.travel or HaversineTravel()
    locations = [s.location for s in problem.stops]
    for t in problem.technicians:
        locations.append(t.start)
        locations.append(t.end_location)
    return source.matrix(locations)


def solve(
    problem: Problem,
    params: SolveParams,
    *,
    matrix: Sequence[Sequence[int]] | None = None,
    initial_routes: Mapping[str, Sequence[str]] | None = None,
) -> Plan:
    """Plan every technician's route.

    Parameters
    ----------
    problem
        Technicians, stops and locked sequences.
    params
        Time limit, seed and search options.
    matrix
        Travel seconds between the model's nodes (see ``travel_matrix``); computed from
        ``problem.travel`` when omitted.
    initial_routes
        A starting plan (technician id -> stop ids) to improve from, e.g. the plan being re-planned.

    Returns
    -------
    Plan
        A route per technician and every unassigned stop with its reason.
    """
    if matrix is None:
        matrix = travel_matrix(problem)
    n_nodes = len(problem.stops) + 2 * len(problem.technicians)
    if len(matrix) != n_nodes or any(len(row) != n_nodes for row in matrix):
        raise ValueError(f"matrix must be {n_nodes}x{n_nodes} (stops, then start and end of each technician)")
    started = time.monotonic()
    values = stop_values(problem, params)
    constructed: Plan | None = None
    # A caller's plan (re-planning) is where every worker starts; otherwise only the warm one does.
    cold_allowed = initial_routes is None
    ruin = False
    if problem.stops and params.first_solution is None:
        from routing import ruin_recreate

        ruin = ruin_recreate.supports(problem)
        if ruin:
            ruin_recreate.warm_up()  # compile (or load) once here, not in every worker
    if initial_routes is None and problem.stops:
        # OR-Tools' own first-solution heuristics stall on large days with breaks, skills and
        # windows (see routing/construct.py); start its local search from our construction instead,
        # and keep the construction as the floor of what we return.
        built = construct(problem, matrix, values)
        initial_routes = built
        constructed = _constructed_plan(problem, matrix, built)
    targets: list[int] | None = None
    if params.balance_cost_per_s > 0 and problem.stops:
        start_plan = constructed or _constructed_plan(
            problem, matrix, {t: list(seq) for t, seq in (initial_routes or {}).items()}
        )
        left = {u.stop_id for u in start_plan.unassigned}
        targets = balance_targets(
            problem, start_plan.routes, sum(s.service_s for s in problem.stops if s.id in left)
        )
    params = replace(params, time_limit_s=max(0.05, params.time_limit_s - (time.monotonic() - started)))
    strategies = _portfolio(params, cold_allowed=cold_allowed, ruin=ruin)

    def start_of(strategy: _Strategy) -> Mapping[str, Sequence[str]] | None:
        return initial_routes if strategy.first_solution == WARM else None

    def cost(plan: Plan) -> int:
        return plan_cost(problem, plan, values, targets=targets, balance_cost_per_s=params.balance_cost_per_s)

    if params.workers == 1 or len(strategies) == 1:
        one = strategies[0]
        plans = [_solve_one(problem, params, matrix, one, start_of(one), targets)]
    else:
        # Worker processes get the matrix, not the travel source (it may hold an HTTP client).
        portable = replace(problem, travel=None)
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=len(strategies), mp_context=context) as pool:
            futures = [
                pool.submit(_solve_one, portable, params, matrix, s, start_of(s), targets) for s in strategies
            ]
            plans = [f.result() for f in futures]
    # The cheapest plan by the utility's objective (the construction is the floor); ties go to the
    # earlier strategy (deterministic), then to the solver over the construction.
    candidates = [*plans, *([constructed] if constructed is not None else [])]
    best = min(candidates, key=cost)
    best = replace(best, objective=cost(best))
    return explain(problem, matrix, best, values)


def _strict_plan(
    problem: Problem,
    matrix: Sequence[Sequence[int]],
    built: Mapping[str, Sequence[str]],
    status: str,
    values: Sequence[int],
) -> Plan:
    """The routes timed by the construction's strict simulation.

    Ruin and recreate places breaks by its own rule; the odd route whose breaks the simulation cannot
    place (a few in a thousand-stop day) loses its least valuable stop, one at a time, until it fits, so
    the search's plan is always a checked floor whatever OR-Tools makes of it.
    """
    index = {s.id: i for i, s in enumerate(problem.stops)}
    routes: dict[str, list[str]] = {}
    for v, tech in enumerate(problem.technicians):
        seq = [index[s] for s in built.get(tech.id, ()) if s in index]
        while seq and simulate(tech, v, seq, problem.stops, matrix) is None:
            fixes = [
                k for k in range(len(seq)) if simulate(tech, v, seq[:k] + seq[k + 1 :], problem.stops, matrix)
            ]
            pool = fixes or range(len(seq))
            drop = min(pool, key=lambda k: (values[seq[k]], k))
            seq = seq[:drop] + seq[drop + 1 :]
        routes[tech.id] = [problem.stops[i].id for i in seq]
    return replace(_constructed_plan(problem, matrix, routes), status=status)


def _constructed_plan(problem: Problem, matrix: Sequence[Sequence[int]], built: dict[str, list[str]]) -> Plan:
    routes = tuple(plan_routes(problem, matrix, built))
    placed = {v.stop_id for r in routes for v in r.visits}
    unassigned = tuple(
        Unassigned(s.id, diagnose_unassigned(problem, s, matrix, i))
        for i, s in enumerate(problem.stops)
        if s.id not in placed
    )
    travel = sum(r.travel_s for r in routes)
    return Plan(routes, unassigned, travel, travel, "construction")


def _portfolio(params: SolveParams, *, cold_allowed: bool, ruin: bool = False) -> list[_Strategy]:
    """One strategy per worker.

    Ruin and recreate from the warm start with a different seed per worker where it applies; else
    the warm start first, then OR-Tools' first solutions rotated by the seed.
    """
    if params.first_solution is not None:
        return [_Strategy(params.first_solution, params.metaheuristic, 0.1)]
    if ruin:
        return [
            _Strategy(WARM, params.metaheuristic, 0.1, ruin_seed=params.seed + w)
            for w in range(max(1, params.workers))
        ]
    if not cold_allowed:
        # Every worker from the caller's plan; a different GLS lambda each, so that they differ.
        return [_Strategy(WARM, params.metaheuristic, 0.1 * (1 + w)) for w in range(max(1, params.workers))]
    warm = _Strategy(WARM, params.metaheuristic, 0.1)
    offset = params.seed % len(PORTFOLIO)
    rotated = PORTFOLIO[offset:] + PORTFOLIO[:offset]
    cold = [_Strategy(fs, params.metaheuristic, lam) for fs, _, lam in rotated]
    return [warm, *cold][: max(1, params.workers)]


def _penalties(problem: Problem, params: SolveParams) -> dict[int, int]:
    """Drop penalty per priority (see ``routing.objective.priority_penalties``)."""
    return priority_penalties(problem, params)


def _solve_one(
    problem: Problem,
    params: SolveParams,
    matrix: Sequence[Sequence[int]],
    strategy: _Strategy,
    initial_routes: Mapping[str, Sequence[str]] | None,
    targets: Sequence[int] | None = None,
) -> Plan:
    started = time.monotonic()
    values = stop_values(problem, params)
    searched: Plan | None = None  # ruin and recreate's own plan, timed strictly
    if strategy.ruin_seed is not None and initial_routes is not None:
        from routing import ruin_recreate

        initial_routes = ruin_recreate.improve(
            problem,
            matrix,
            initial_routes,
            _penalties(problem, params),
            time_limit_s=RUIN_SHARE * params.time_limit_s,
            seed=strategy.ruin_seed,
            iteration_limit=params.iteration_limit,
            targets=targets,
            balance_cost_per_s=params.balance_cost_per_s,
        )
        searched = _strict_plan(problem, matrix, initial_routes, "ruin_recreate", values)
        # OR-Tools starts from the checked routes: its model rejects a start whose breaks cannot be placed.
        initial_routes = {r.technician_id: [v.stop_id for v in r.visits] for r in searched.routes}
    stops = problem.stops
    techs = problem.technicians
    n_stops = len(stops)
    n_techs = len(techs)
    starts = [n_stops + 2 * v for v in range(n_techs)]
    ends = [n_stops + 2 * v + 1 for v in range(n_techs)]
    manager = pywrapcp.RoutingIndexManager(n_stops + 2 * n_techs, n_techs, starts, ends)
    model = pywrapcp.RoutingModel(manager)
    solver = model.solver()

    service = [s.service_s for s in stops] + [0] * (2 * n_techs)
    travel = [list(row) for row in matrix]
    cost_cb = model.RegisterTransitMatrix(travel)
    model.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    time_matrix = [[service[i] + t for t in row] for i, row in enumerate(travel)]
    time_cb = model.RegisterTransitMatrix(time_matrix)

    horizon = max(
        [t.shift.end_s + t.max_overtime_s for t in techs] + [w.end_s for s in stops for w in s.windows]
    )
    model.AddDimension(time_cb, horizon, horizon, False, "time")
    tdim = model.GetDimensionOrDie("time")

    for v, tech in enumerate(techs):
        latest_end = tech.shift.end_s + tech.max_overtime_s
        tdim.CumulVar(model.Start(v)).SetRange(tech.shift.start_s, latest_end)
        tdim.CumulVar(model.End(v)).SetRange(tech.shift.start_s, latest_end)
        if tech.max_overtime_s > 0 and tech.overtime_cost_per_s > 0:
            tdim.SetCumulVarSoftUpperBound(model.End(v), tech.shift.end_s, tech.overtime_cost_per_s)
        if tech.max_work_s is not None:
            tdim.SetSpanUpperBoundForVehicle(tech.max_work_s, v)
        if targets is not None and params.balance_cost_per_s > 0:
            share = pywrapcp.BoundCost(max(0, targets[v] - tech.shift.start_s), params.balance_cost_per_s)
            tdim.SetSoftSpanUpperBoundForVehicle(share, v)

    if any(s.demand for s in stops):
        demand_cb = model.RegisterUnaryTransitVector([s.demand for s in stops] + [0] * (2 * n_techs))
        total = sum(s.demand for s in stops)
        capacities = [t.capacity if t.capacity is not None else total for t in techs]
        model.AddDimensionWithVehicleCapacity(demand_cb, 0, capacities, True, "load")

    locked_penalty = 10 * max(values, default=params.drop_penalty_s)
    locked_on = {stop_id: tech_id for tech_id, seq in problem.locked.items() for stop_id in seq}
    tech_index = {t.id: v for v, t in enumerate(techs)}
    excluded: dict[str, UnassignedReason] = {}
    for i, stop in enumerate(stops):
        index = manager.NodeToIndex(i)
        if stop.id in locked_on:
            allowed = [tech_index[locked_on[stop.id]]]
        else:
            allowed, reason = skilled_technicians(problem, stop)
            if not allowed:
                excluded[stop.id] = reason
                model.AddDisjunction([index], 0)
                model.VehicleVar(index).SetValue(-1)
                continue
        if len(allowed) < n_techs:
            # -1 keeps the stop droppable (its disjunction); SetAllowedVehiclesForIndex does not
            # accept a Python list in this ortools build.
            model.VehicleVar(index).SetValues([-1, *allowed])
        cumul = tdim.CumulVar(index)
        if stop.windows:
            cumul.SetRange(stop.windows[0].start_s, stop.windows[-1].end_s)
            for earlier, later in itertools.pairwise(stop.windows):
                cumul.RemoveInterval(earlier.end_s + 1, later.start_s - 1)
        penalty = locked_penalty if stop.id in locked_on else values[i]
        model.AddDisjunction([index], penalty)

    if problem.locked:
        model.AddConstantDimension(1, n_stops + 2, True, "rank")
        rank = model.GetDimensionOrDie("rank")
        stop_node = {s.id: i for i, s in enumerate(stops)}
        for seq in problem.locked.values():
            for a, b in itertools.pairwise(seq):
                ia = manager.NodeToIndex(stop_node[a])
                ib = manager.NodeToIndex(stop_node[b])
                # Only binds when both are performed: an inactive node's cumul is free.
                solver.Add(rank.CumulVar(ia) < rank.CumulVar(ib))

    node_visit_transits = [service[manager.IndexToNode(index)] for index in range(model.Size())]
    break_vars: list[list[pywrapcp.IntervalVar]] = []
    for v, tech in enumerate(techs):
        intervals = [
            solver.FixedDurationIntervalVar(
                b.earliest_start_s, b.latest_start_s, b.duration_s, False, f"break:{v}:{k}"
            )
            for k, b in enumerate(tech.breaks)
        ]
        break_vars.append(intervals)
        if intervals:
            tdim.SetBreakIntervalsOfVehicle(intervals, v, node_visit_transits)

    for v in range(n_techs):
        model.AddVariableMinimizedByFinalizer(tdim.CumulVar(model.End(v)))
        model.AddVariableMaximizedByFinalizer(tdim.CumulVar(model.Start(v)))

    search = pywrapcp.DefaultRoutingSearchParameters()
    first = "PARALLEL_CHEAPEST_INSERTION" if strategy.first_solution == WARM else strategy.first_solution
    search.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, first)
    search.local_search_metaheuristic = getattr(
        routing_enums_pb2.LocalSearchMetaheuristic, strategy.metaheuristic
    )
    search.guided_local_search_lambda_coefficient = strategy.gls_lambda
    if params.solution_limit is not None:
        search.solution_limit = params.solution_limit
    remaining_ms = max(50, int(1000 * params.time_limit_s - 1000 * (time.monotonic() - started)))
    search.time_limit.FromMilliseconds(remaining_ms)

    solution = None
    if initial_routes:
        model.CloseModelWithParameters(search)
        stop_node = {s.id: i for i, s in enumerate(stops)}
        routes = [
            [manager.NodeToIndex(stop_node[sid]) for sid in initial_routes.get(t.id, ()) if sid in stop_node]
            for t in techs
        ]
        initial = model.ReadAssignmentFromRoutes(routes, True)
        if initial is not None:
            solution = model.SolveFromAssignmentWithParameters(initial, search)
    if solution is None:
        solution = model.SolveWithParameters(search)
    status = _status_name(model.status())
    if solution is None:
        unassigned = tuple(
            Unassigned(s.id, excluded.get(s.id) or diagnose_unassigned(problem, s, matrix, s_index))
            for s_index, s in enumerate(stops)
        )
        if searched is not None:  # OR-Tools found nothing in its share of the time: the search's plan
            return searched
        empty = tuple(Route(t.id, t.shift.start_s, t.shift.start_s, (), (), 0, 0, 0) for t in techs)
        return Plan(empty, unassigned, 0, 0, status)
    polished = _extract(problem, matrix, manager, model, solution, tdim, break_vars, excluded, status)
    if searched is None:
        return polished
    # OR-Tools prices overtime per second only (no minimum); keep the search's plan when the whole
    # price says it is cheaper.
    return min(
        (polished, searched),
        key=lambda p: plan_cost(
            problem, p, values, targets=targets, balance_cost_per_s=params.balance_cost_per_s
        ),
    )


def _status_name(code: int) -> str:
    names = {
        0: "not_solved",
        1: "success",
        2: "partial_success",
        3: "fail",
        4: "fail_timeout",
        5: "invalid",
        6: "infeasible",
        7: "optimal",
    }
    return names.get(code, f"status_{code}")


def _extract(
    problem: Problem,
    matrix: Sequence[Sequence[int]],
    manager: pywrapcp.RoutingIndexManager,
    model: pywrapcp.RoutingModel,
    solution: pywrapcp.Assignment,
    tdim: pywrapcp.RoutingDimension,
    break_vars: list[list[pywrapcp.IntervalVar]],
    excluded: Mapping[str, UnassignedReason],
    status: str,
) -> Plan:
    stops = problem.stops
    routes: list[Route] = []
    visited: set[int] = set()
    break_starts: dict[str, int] = {}
    intervals = solution.IntervalVarContainer()
    for k in range(intervals.Size()):
        element = intervals.Element(k)
        if element.PerformedValue():
            break_starts[element.Var().Name()] = element.StartValue()
    total_travel = 0
    for v, tech in enumerate(problem.technicians):
        brks = tuple(
            BreakSlot(break_starts[iv.Name()], b.duration_s)
            for iv, b in zip(break_vars[v], tech.breaks, strict=True)
            if iv.Name() in break_starts
        )
        index = model.Start(v)
        start_s = solution.Value(tdim.CumulVar(index))
        prev_node = manager.IndexToNode(index)
        prev_departure = start_s
        visits: list[Visit] = []
        travel_sum = 0
        idle_sum = 0
        index = solution.Value(model.NextVar(index))
        while True:
            node = manager.IndexToNode(index)
            leg = int(matrix[prev_node][node])
            begin = solution.Value(tdim.CumulVar(index))
            pause = sum(b.duration_s for b in brks if prev_departure <= b.start_s < begin)
            arrival = min(begin, prev_departure + leg + pause)
            travel_sum += leg
            idle_sum += begin - arrival
            if model.IsEnd(index):
                end_s = begin
                break
            visited.add(node)
            departure = begin + stops[node].service_s
            visits.append(Visit(stops[node].id, arrival, begin, departure, leg))
            prev_node, prev_departure = node, departure
            index = solution.Value(model.NextVar(index))
        if not visits:
            travel_sum = 0
            idle_sum = 0
            end_s = start_s
        overtime = max(0, end_s - tech.shift.end_s)
        total_travel += travel_sum
        routes.append(Route(tech.id, start_s, end_s, tuple(visits), brks, travel_sum, idle_sum, overtime))
    unassigned = tuple(
        Unassigned(s.id, excluded.get(s.id) or diagnose_unassigned(problem, s, matrix, i))
        for i, s in enumerate(stops)
        if i not in visited
    )
    return Plan(tuple(routes), unassigned, solution.ObjectiveValue(), total_travel, status)
