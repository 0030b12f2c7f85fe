"""Routing benchmarks: Solomon VRPTW against PyVRP and VROOM, and a utility day with an emergency.

Environment:
    CURBSTOP_BENCH_ROUTING     solomon | utility | all (default all)
    CURBSTOP_BENCH_INSTANCES   comma-separated Solomon names (default: all 56)
    CURBSTOP_BENCH_SECONDS     time budget per instance and solver (default 10)
    CURBSTOP_BENCH_WORKERS     processes for Curbstop's portfolio (default 2, the machine's cores)
    CURBSTOP_VRPTW_DIR         the shared instance folder (default ../shared/benchmarks/vrptw)
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import write_section
from routing.model import Break, Location, Plan, Problem, SolveParams, Stop, Technician, TimeWindow
from routing.replan import TechnicianState, insert_emergency
from routing.solomon import SCALE, SolomonInstance, parse_solomon, to_problem
from routing.solver import solve, travel_matrix

REPO = Path(__file__).resolve().parent.parent


def vrptw_dir() -> Path:
    """The shared VRPTW folder (never copied into the repo)."""
    override = os.environ.get("CURBSTOP_VRPTW_DIR")
    if override:
        return Path(override)
    # ../shared from the repo root; a git worktree sits one level deeper, so look further up too.
    for parent in REPO.parents:
        candidate = parent / "shared" / "benchmarks" / "vrptw"
        if candidate.is_dir():
            return candidate
    return (REPO / ".." / "shared" / "benchmarks" / "vrptw").resolve()


def best_known(folder: Path) -> dict[str, float]:
    """Proven optima: the distance_only, trunc_1dp rows of bks.csv."""
    with (folder / "bks.csv").open() as f:
        return {
            row["instance"]: float(row["distance"])
            for row in csv.DictReader(f)
            if row["objective"] == "distance_only" and row["distance_convention"] == "trunc_1dp"
        }


def dimacs_matrix(instance: SolomonInstance) -> list[list[int]]:
    """floor(10 * euclid) between every pair of nodes (depot first)."""
    pts = [(r[1], r[2]) for r in instance.rows]
    return [[math.floor(SCALE * math.hypot(a[0] - b[0], a[1] - b[1]) + 1e-9) for b in pts] for a in pts]


def check_routes(instance: SolomonInstance, routes: list[list[int]]) -> tuple[float, bool]:
    """Distance (one decimal) of routes given as customer ids, and whether they are feasible."""
    d = dimacs_matrix(instance)
    rows = instance.rows
    seen: list[int] = []
    total = 0
    ok = True
    for route in routes:
        if not route:
            continue
        t = 0
        load = 0
        prev = 0
        for c in route:
            t = max(t + (SCALE * rows[prev][6] if prev else 0) + d[prev][c], SCALE * rows[c][4])
            ok &= t <= SCALE * rows[c][5]
            load += rows[c][3]
            total += d[prev][c]
            prev = c
            seen.append(c)
        total += d[prev][0]
        ok &= t + SCALE * rows[prev][6] + d[prev][0] <= SCALE * rows[0][5]
        ok &= load <= instance.capacity
    ok &= sorted(seen) == list(range(1, len(rows)))
    ok &= sum(1 for r in routes if r) <= instance.vehicles
    return total / SCALE, ok


def run_curbstop(instance: SolomonInstance, seconds: float, workers: int) -> tuple[float, bool]:
    """Curbstop's engine through the product API."""
    plan = solve(to_problem(instance), SolveParams(time_limit_s=seconds, workers=workers, seed=0))
    routes = [[int(v.stop_id) for v in r.visits] for r in plan.routes]
    return check_routes(instance, routes)


def run_pyvrp(instance: SolomonInstance, seconds: float) -> tuple[float, bool]:
    """PyVRP with its default parameters, built from the same DIMACS matrix."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    rows = instance.rows
    d = dimacs_matrix(instance)
    m = pyvrp.Model()
    locs = [m.add_location(x=r[1], y=r[2]) for r in rows]
    depot = m.add_depot(locs[0], tw_early=SCALE * rows[0][4], tw_late=SCALE * rows[0][5])
    m.add_vehicle_type(
        num_available=instance.vehicles,
        capacity=instance.capacity,
        start_depot=depot,
        end_depot=depot,
        tw_early=SCALE * rows[0][4],
        tw_late=SCALE * rows[0][5],
    )
    for r, loc in zip(rows[1:], locs[1:], strict=True):
        m.add_client(
            loc, delivery=r[3], service_duration=SCALE * r[6], tw_early=SCALE * r[4], tw_late=SCALE * r[5]
        )
    for i, a in enumerate(locs):
        for j, b in enumerate(locs):
            if i != j:
                m.add_edge(a, b, distance=d[i][j], duration=d[i][j])
    result = m.solve(stop=MaxRuntime(seconds), seed=0, display=False)
    # PyVRP's own accounting (its activity indices are not Solomon ids); feasible means every
    # client visited within windows and capacity.
    best = result.best
    ok = result.is_feasible() and best.num_clients() == len(rows) - 1
    return best.distance() / SCALE, ok


def run_vroom(instance: SolomonInstance, seconds: float) -> tuple[float, bool]:
    """VROOM (pyvroom), exploration level 5, one thread, same time budget as a timeout."""
    import numpy as np
    import vroom

    rows = instance.rows
    problem = vroom.Input()
    problem.set_durations_matrix("car", np.array(dimacs_matrix(instance), dtype=np.uint32))
    for k in range(instance.vehicles):
        problem.add_vehicle(
            vroom.Vehicle(
                k,
                start=0,
                end=0,
                capacity=[instance.capacity],
                time_window=vroom.TimeWindow(SCALE * rows[0][4], SCALE * rows[0][5]),
            )
        )
    for r in rows[1:]:
        problem.add_job(
            vroom.Job(
                r[0],
                location=r[0],
                default_service=SCALE * r[6],
                delivery=vroom.Amount([r[3]]),
                time_windows=[vroom.TimeWindow(SCALE * r[4], SCALE * r[5])],
            )
        )
    sol = problem.solve(exploration_level=5, nb_threads=1, timeout=dt.timedelta(seconds=seconds))
    routes: dict[int, list[int]] = {}
    for _, row in sol.routes.iterrows():
        if row["type"] == "job":
            routes.setdefault(int(row["vehicle_id"]), []).append(int(row["id"]))
    return check_routes(instance, list(routes.values()))


def solomon(seconds: float, workers: int) -> str:
    """Run the three solvers on each instance in turn; markdown table of gaps."""
    folder = vrptw_dir()
    bks = best_known(folder)
    names = sorted(p.stem for p in (folder / "solomon").glob("*.txt"))
    chosen = os.environ.get("CURBSTOP_BENCH_INSTANCES")
    if chosen:
        names = [n.strip() for n in chosen.split(",") if n.strip()]
    solvers: dict[str, Callable[[SolomonInstance, float], tuple[float, bool]]] = {
        f"Curbstop ({workers} processes)": lambda inst, s: run_curbstop(inst, s, workers),
        "Curbstop (1 process)": lambda inst, s: run_curbstop(inst, s, 1),
        "PyVRP": run_pyvrp,
        "VROOM": run_vroom,
    }
    gaps: dict[str, list[float]] = {k: [] for k in solvers}
    solved: dict[str, int] = dict.fromkeys(solvers, 0)
    lines = [
        "| instance | best known | " + " | ".join(f"{k} | gap" for k in solvers) + " |",
        "|---" * (2 + 2 * len(solvers)) + "|",
    ]
    for name in names:
        inst = parse_solomon(folder / "solomon" / f"{name}.txt")
        cells = [name, f"{bks[name]:.1f}"]
        for label, run in solvers.items():
            try:
                dist, ok = run(inst, seconds)
            except Exception as exc:  # a peer crashing must not hide the others' results
                print(f"{name} {label}: {exc!r}", flush=True)
                dist, ok = math.nan, False
            if ok:
                gap = 100 * (dist - bks[name]) / bks[name]
                gaps[label].append(gap)
                solved[label] += 1
                cells += [f"{dist:.1f}", f"{gap:.2f}%"]
            else:
                cells += ["not solved", "-"]
            print(f"{name} {label}: {dist:.1f} feasible={ok}", flush=True)
        lines.append("| " + " | ".join(cells) + " |")
    summary = [
        "| solver | mean gap | solved |",
        "|---|---|---|",
        *(
            f"| {k} | {statistics.fmean(gaps[k]) if gaps[k] else math.nan:.2f}% | {solved[k]} of {len(names)} |"
            for k in solvers
        ),
    ]
    return (
        f"### Solomon VRPTW ({len(names)} instances, {seconds:g} s each, DIMACS trunc_1dp, distance only)\n\n"
        f"Gap = 100 (found - optimum) / optimum against the `distance_only,trunc_1dp` rows of bks.csv; mean over solved "
        f"instances. Curbstop runs its product `solve()` (wall-clock budget {seconds:g} s, construction "
        f"included): each process improves the construction by ruin and recreate (seeds 0, 1, ...) for 90% "
        f"of the budget, then OR-Tools' guided local search polishes and checks the plan; the best process "
        f"wins. It is measured with {workers} processes (both cores) and with 1, so the single-threaded "
        f"comparison is there too. PyVRP (default parameters, seed 0) and VROOM (exploration 5, 1 thread, "
        f"timeout {seconds:g} s) run single-threaded, one after another on the same machine.\n\n"
        + "\n".join(summary)
        + "\n\n"
        + "\n".join(lines)
        + "\n"
    )


# A city of about 20 x 20 km around a yard; order mix as in contracts.codes (kept as plain data:
# routing and its benchmark import nothing of ours).
CENTER = Location(lat=39.75, lon=-104.99)
ORDER_MIX: list[tuple[str, int, frozenset[str], int, float]] = [
    # (kind, priority, skills, service seconds, share)
    ("restore", 1, frozenset({"turn_on_off"}), 900, 0.10),
    ("shut_off", 2, frozenset({"turn_on_off"}), 1200, 0.20),
    ("turn_off", 2, frozenset({"turn_on_off"}), 900, 0.10),
    ("investigation", 3, frozenset({"investigation"}), 1800, 0.10),
    ("reread", 4, frozenset({"read"}), 480, 0.35),
    ("meter_test", 5, frozenset({"meter_test"}), 2700, 0.15),
]


def _random_location(rng: random.Random, radius_km: float = 10.0) -> Location:
    return Location(
        lat=CENTER.lat + rng.uniform(-radius_km, radius_km) / 111.0,
        lon=CENTER.lon + rng.uniform(-radius_km, radius_km) / (111.0 * math.cos(math.radians(CENTER.lat))),
    )


def utility_problem(n_orders: int = 1000, n_techs: int = 40, seed: int = 7) -> Problem:
    """A synthetic utility day: mixed skills, lunch breaks, appointment windows, two yards."""
    rng = random.Random(seed)
    yards = [_random_location(rng, 3.0), _random_location(rng, 3.0)]
    skill_sets = [
        frozenset({"read", "turn_on_off"}),
        frozenset({"read", "turn_on_off", "investigation"}),
        frozenset({"read", "meter_test"}),
        frozenset({"read", "turn_on_off", "meter_test", "investigation", "emergency"}),
    ]
    techs = tuple(
        Technician(
            id=f"t{k:02d}",
            start=yards[k % 2],
            shift=TimeWindow(7 * 3600, 15 * 3600 + 1800),
            skills=skill_sets[k % len(skill_sets)],
            breaks=(Break(11 * 3600, 13 * 3600, 1800),),
            max_work_s=9 * 3600,
            max_overtime_s=3600,
            overtime_cost_per_s=3,
        )
        for k in range(n_techs)
    )
    kinds = [m for m in ORDER_MIX]
    weights = [m[4] for m in ORDER_MIX]
    stops = []
    for i in range(n_orders):
        _kind, priority, skills, service_s, _ = rng.choices(kinds, weights)[0]
        windows: tuple[TimeWindow, ...] = ()
        roll = rng.random()
        if roll < 0.15:  # a two-hour appointment
            start = rng.choice([8, 10, 12, 13]) * 3600
            windows = (TimeWindow(start, start + 2 * 3600),)
        elif roll < 0.20:  # morning or afternoon, customer's choice
            windows = (TimeWindow(8 * 3600, 10 * 3600), TimeWindow(13 * 3600, 15 * 3600))
        stops.append(Stop(f"o{i:04d}", _random_location(rng), service_s, windows, skills, priority))
    return Problem(technicians=techs, stops=tuple(stops))


# What the server's default policy makes each priority worth, in travel seconds (server/orders/policy.toml,
# [dispatch.value]); appointments are worth at least APPOINTMENT_VALUE; overtime is paid at least 30 minutes.
UTILITY_VALUES = {0: 1_000_000, 1: 200_000, 2: 20_000, 3: 10_000, 4: 3_000, 5: 3_000}
APPOINTMENT_VALUE = 200_000
LOW_PRIORITY = 3  # investigations, rereads and meter tests: not worth overtime


def valued(problem: Problem) -> Problem:
    """The same day priced as the server prices it: each order's value, a 30-minute overtime minimum."""
    stops = tuple(
        dataclasses.replace(s, value=max(UTILITY_VALUES[s.priority], APPOINTMENT_VALUE if s.windows else 0))
        for s in problem.stops
    )
    techs = tuple(dataclasses.replace(t, overtime_min_s=1800) for t in problem.technicians)
    return dataclasses.replace(problem, stops=stops, technicians=techs)


def overtime_audit(problem: Problem, plan: Plan) -> tuple[int, int, int]:
    """(overtime s in all, overtime s on routes whose work is all low priority without appointments,
    overtime routes where a colleague with an hour free has the skills for one of its stops)."""
    stops = {s.id: s for s in problem.stops}
    free = {
        r.technician_id: (
            problem.technician(r.technician_id).shift.end_s
            - problem.technician(r.technician_id).shift.start_s
        )
        - (r.end_s - r.start_s if r.visits else 0)
        for r in plan.routes
    }
    total = low = while_free = 0
    for r in plan.routes:
        if r.overtime_s <= 0:
            continue
        total += r.overtime_s
        work = [stops[v.stop_id] for v in r.visits]
        if all(s.priority >= LOW_PRIORITY and not s.windows for s in work):
            low += r.overtime_s
        colleagues = [t for t in problem.technicians if t.id != r.technician_id and free[t.id] >= 3600]
        if any(s.required_skills <= t.skills for s in work for t in colleagues):
            while_free += 1
    return total, low, while_free


def utility(seconds: float, workers: int) -> str:
    """Plan a 1,000-order day in 60 s, then insert an emergency at 10:30; plan it again priced by value."""
    problem = utility_problem()
    t0 = time.monotonic()
    matrix = travel_matrix(problem)
    plan = solve(
        problem,
        SolveParams(time_limit_s=max(1.0, seconds - (time.monotonic() - t0)), workers=workers),
        matrix=matrix,
    )
    plan_s = time.monotonic() - t0
    assigned = sum(len(r.visits) for r in plan.routes)
    ok, problems = verify_plan(problem, plan)
    now_s = 10 * 3600 + 1800
    states: dict[str, TechnicianState] = {}
    for route in plan.routes:
        done = [v for v in route.visits if v.start_s <= now_s]
        if done:
            last = done[-1]
            stop = next(s for s in problem.stops if s.id == last.stop_id)
            states[route.technician_id] = TechnicianState(
                route.technician_id,
                stop.location,
                max(now_s, last.departure_s),
                tuple(v.stop_id for v in done),
            )
    emergency = Stop(
        "emergency-1",
        _random_location(random.Random(99)),
        2700,
        (TimeWindow(now_s, now_s + 2 * 3600),),
        frozenset({"emergency"}),
        0,
    )
    t1 = time.monotonic()
    result = insert_emergency(
        problem, plan, states, now_s, emergency, SolveParams(time_limit_s=1.5, metaheuristic="GREEDY_DESCENT")
    )
    insert_s = time.monotonic() - t1
    moved = 0
    bumped = 0
    for route in plan.routes:
        before = [v.stop_id for v in route.visits]
        after = [
            v.stop_id for v in result.plan.route_of(route.technician_id).visits if v.stop_id != emergency.id
        ]
        kept = [s for s in before if s in set(after)]
        moved += kept != [s for s in after if s in set(before)]
        bumped += (
            len([s for s in before if s not in set(after)])
            if route.technician_id == result.technician_id
            else 0
        )
    reasons: dict[str, int] = {}
    for u in plan.unassigned:
        reasons[u.reason.value] = reasons.get(u.reason.value, 0) + 1
    overtime, low, while_free = overtime_audit(problem, plan)
    priced = valued(problem)
    t2 = time.monotonic()
    by_value = solve(
        priced,
        SolveParams(time_limit_s=max(1.0, seconds - (time.monotonic() - t2)), workers=workers),
        matrix=matrix,
    )
    value_s = time.monotonic() - t2
    v_ok, v_problems = verify_plan(priced, by_value)
    v_overtime, v_low, v_while_free = overtime_audit(priced, by_value)
    v_reasons: dict[str, int] = {}
    for u in by_value.unassigned:
        v_reasons[u.reason.value] = v_reasons.get(u.reason.value, 0) + 1
    left_priority: dict[int, int] = {}
    for u in by_value.unassigned:
        p = next(s.priority for s in priced.stops if s.id == u.stop_id)
        left_priority[p] = left_priority.get(p, 0) + 1
    return (
        "### Utility day (1,000 orders, 40 technicians, haversine travel)\n\n"
        "Synthetic city of 20 x 20 km, two yards, four skill profiles, a 30-minute lunch between 11:00 and 13:00, "
        "20% of orders with appointment windows (some with two windows), shifts 07:00-15:30 plus up to 1 h overtime.\n\n"
        "| measure | value |\n|---|---|\n"
        f"| plan time (travel matrix + solve, budget {seconds:g} s, {workers} processes) | {plan_s:.1f} s |\n"
        f"| orders assigned | {assigned} of {len(problem.stops)} |\n"
        f"| unassigned by reason | {', '.join(f'{k}: {v}' for k, v in sorted(reasons.items())) or 'none'} |\n"
        f"| plan verified (skills, windows, breaks, shift) | {'yes' if ok else 'NO: ' + '; '.join(problems[:3])} |\n"
        f"| total travel | {plan.travel_s / 3600:.1f} h |\n"
        f"| emergency insertion at 10:30 (re-plan, remaining sequences locked) | {insert_s:.2f} s |\n"
        f"| emergency assigned to | {result.technician_id or 'nobody'} |\n"
        f"| technicians whose remaining order changed | {moved} |\n"
        f"| remaining stops left out to make room for it (least urgent first) | {bumped} |\n"
        f"| capacity check: service hours offered / technician hours (shift + overtime) | "
        f"{sum(s.service_s for s in problem.stops) / 3600:.0f} h / "
        f"{sum(t.shift.end_s - t.shift.start_s + t.max_overtime_s for t in problem.technicians) / 3600:.0f} h, before travel |\n"
        f"| overtime in all / on routes of only low-priority work / routes in overtime while a skilled colleague had 1 h free | "
        f"{overtime / 3600:.1f} h / {low / 3600:.1f} h / {while_free} |\n\n"
        "The same day priced as the server prices it (each order's value by priority, appointments worth "
        "at least a restore, investigations, rereads and meter tests worth less than the 30-minute overtime "
        "minimum at 3 travel-seconds a second):\n\n"
        "| measure | value |\n|---|---|\n"
        f"| plan time (budget {seconds:g} s, {workers} processes; matrix reused) | {value_s:.1f} s |\n"
        f"| orders assigned | {sum(len(r.visits) for r in by_value.routes)} of {len(priced.stops)} |\n"
        f"| left out by priority (0 most urgent) | {', '.join(f'{k}: {v}' for k, v in sorted(left_priority.items())) or 'none'} |\n"
        f"| unassigned by reason | {', '.join(f'{k}: {v}' for k, v in sorted(v_reasons.items())) or 'none'} |\n"
        f"| plan verified (skills, windows, breaks, shift) | {'yes' if v_ok else 'NO: ' + '; '.join(v_problems[:3])} |\n"
        f"| total travel | {by_value.travel_s / 3600:.1f} h |\n"
        f"| overtime in all / on routes of only low-priority work (must be 0) / routes in overtime while a skilled colleague had 1 h free | "
        f"{v_overtime / 3600:.1f} h / {v_low / 3600:.1f} h / {v_while_free} |\n"
    )


def verify_plan(problem: Problem, plan: Plan) -> tuple[bool, list[str]]:
    """Independent check of a plan against skills, windows, breaks and shifts."""
    stops = {s.id: s for s in problem.stops}
    issues: list[str] = []
    for route in plan.routes:
        tech = problem.technician(route.technician_id)
        for v in route.visits:
            s = stops[v.stop_id]
            if not s.required_skills <= tech.skills:
                issues.append(f"{s.id} on unskilled {tech.id}")
            if s.windows and not any(w.start_s <= v.start_s <= w.end_s for w in s.windows):
                issues.append(f"{s.id} outside its windows")
            for b in route.breaks:
                if b.start_s < v.departure_s and v.start_s < b.start_s + b.duration_s:
                    issues.append(f"{s.id} overlaps the break of {tech.id}")
        if route.visits and route.end_s > tech.shift.end_s + tech.max_overtime_s:
            issues.append(f"{tech.id} ends after shift plus overtime")
        if len(route.breaks) != len(tech.breaks):
            issues.append(f"{tech.id} has {len(route.breaks)} breaks, expected {len(tech.breaks)}")
    return not issues, issues


def main() -> None:
    """Run the selected parts and write docs/benchmarks.md sections."""
    which = os.environ.get("CURBSTOP_BENCH_ROUTING", "all")
    seconds = float(os.environ.get("CURBSTOP_BENCH_SECONDS", "10"))
    workers = int(os.environ.get("CURBSTOP_BENCH_WORKERS", "2"))
    if which in ("utility", "all"):
        body = utility(60.0, workers)
        print(body, flush=True)
        write_section("routing_utility", "Routing: utility day", body)
    if which in ("solomon", "all"):
        body = solomon(seconds, workers)
        print(body, flush=True)
        write_section("routing", "Routing: Solomon VRPTW", body)
