"""Ruin and recreate: the large-neighbourhood search that improves a plan before OR-Tools polishes it.

OR-Tools' guided local search moves one or two stops at a time; on days with tight windows it settles
several per cent above the best plans known. This module runs slack induction by string removals
(SISR, Christiaens and Vanden Berghe, Transportation Science 2020) over the same model:

* **ruin**: pick a random stop, walk its nearest neighbours, and from the routes they are on cut a
  string of consecutive stops (or a string with a kept gap in the middle), a few routes at a time;
* **recreate**: put every unplaced stop back where it adds the least cost (travel, plus overtime at
  the technician's price and the balance term as the route's end moves), in an order drawn by chance
  (random, largest demand, farthest, closest, tightest window), most valuable first, each position
  skipped with a small probability ("blinks") so equal choices do not always win; a stop whose
  cheapest position costs more than its value stays out;
* **accept** by simulated annealing on the objective of ``routing/objective.py`` (travel, overtime,
  balance, and the value of every unplaced stop), the temperature falling geometrically from a few
  average arcs to a small fraction of one.

Feasibility of an insertion is checked in constant time from each route's earliest and latest
service starts (forward and backward passes, several windows per stop allowed), and its effect on the
route's end (so on overtime) from the waiting time after the insertion point: a delay d at an element
moves the end by max(0, d - the waiting after it). The search makes hundreds of thousands of moves in
seconds; the hot loops are compiled with numba.

Breaks are elements of the route like stops, never removed by a ruin: a break is taken where the
technician is, after the stop before it and before driving on (as ``construct.simulate`` times it), so
it has no travel of its own, a start window and a duration; inserting a stop just before a break
moves the break to that stop. Stops move across breaks, which is how a lunch finds its place.

What it models: travel, service, every window of a stop, breaks, capacity, the shift start and the
latest end (shift end plus overtime, capped by ``max_work_s``), the price of overtime, the balance
term, allowed technicians (skills, pins) and each stop's value. What it does not: locked sequences;
the solver calls it only for problems without locks (``supports``) and always hands its result to
OR-Tools, which checks every constraint again, places the breaks in its own model and polishes the plan.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
from numba import njit

from routing.construct import simulate
from routing.diagnose import skilled_technicians
from routing.model import Break, Location, Problem, Stop, Technician, TimeWindow
from routing.travel import HaversineTravel

Pack = tuple[np.ndarray, ...]  # the arrays the compiled functions take (see _Arrays.pack, _State.pack)
NONE = -(1 << 62)  # "no time": no window point satisfies the request
MAX_CARDINALITY = 10  # SISR's L_max: longest string cut from one route
MEAN_REMOVED = 10  # SISR's c-bar: stops removed per ruin, on average
BLINK = 0.01  # probability of skipping an insertion position
NEIGHBOURS = 64  # stops kept in each stop's neighbour list (the ruin walks these)
CHUNK = 64  # iterations per compiled call between looks at the clock
START_ARCS = 4.0  # starting temperature, in average arcs of the first plan
END_ARCS = 0.02  # final temperature, in average arcs


def supports(problem: Problem) -> bool:
    """Whether the ruin-and-recreate model covers ``problem`` (it has no locked sequences)."""
    return not problem.locked


def warm_up() -> None:
    """Compile the search (or load it from numba's cache) on a two-stop problem.

    The solver calls this before it starts worker processes, so they inherit the compiled code;
    ``make setup`` calls it so that the first plan of the day does not wait for the compiler.
    """
    global _warm
    if _warm:
        return
    yard = Location(0.0, 0.0)
    shift = TimeWindow(0, 8 * 3600)
    problem = Problem(
        technicians=(Technician("t", yard, shift, breaks=(Break(3600, 4 * 3600, 1800),)),),
        stops=(
            Stop("a", Location(0.01, 0.0), 600, (TimeWindow(0, 4 * 3600),)),
            Stop("b", Location(0.0, 0.01), 600, demand=1),
        ),
    )
    matrix = HaversineTravel().matrix([*(s.location for s in problem.stops), yard, yard])
    improve(problem, matrix, {"t": ["a", "b"]}, {3: 1}, time_limit_s=60.0, seed=0, iteration_limit=2)
    _warm = True


_warm = False


def improve(
    problem: Problem,
    matrix: Sequence[Sequence[int]],
    routes: Mapping[str, Sequence[str]],
    penalties: Mapping[int, int],
    *,
    time_limit_s: float,
    seed: int,
    iteration_limit: int | None = None,
    targets: Sequence[int] | None = None,
    balance_cost_per_s: int = 0,
) -> dict[str, list[str]]:
    """Improve ``routes`` (technician id -> stop ids) by ruin and recreate; return the best plan found.

    Parameters
    ----------
    problem
        A problem ``supports`` accepts.
    matrix
        Travel seconds between the model's nodes (stops, then each technician's start and end).
    routes
        A feasible starting plan; stops left out of it are tried again in every recreate.
    penalties
        Drop penalty per priority level, in travel seconds, for stops without their own ``value``.
    time_limit_s
        Wall-clock budget.
    seed
        Seeds every random choice.
    iteration_limit
        Stop after this many iterations even if time is left; the temperature then falls by
        iteration, not by the clock, so the same inputs and seed give the same plan.
    targets, balance_cost_per_s
        The balance term: each second a route ends past ``targets[v]`` costs ``balance_cost_per_s``
        (see ``routing.objective.balance_targets``); off when either is missing.

    Returns
    -------
    dict[str, list[str]]
        Technician id -> stop ids in visiting order, at least as good as ``routes``.
    """
    started = time.monotonic()
    if not supports(problem):
        raise ValueError("ruin and recreate does not model locked sequences")
    data = _Arrays(problem, matrix, penalties, targets, balance_cost_per_s)
    current = _load(problem, matrix, data, routes) if data.n else None
    if current is None:  # nothing to place, or the plan does not time out under this model
        return {t.id: list(routes.get(t.id, ())) for t in problem.technicians}
    work, best = current.copy(), current.copy()
    p, s, w, b = data.pack(), current.pack(), work.pack(), best.pack()
    totals = np.array([_cost(p, s)] * 2, dtype=np.int64)  # current, best
    arcs = max(1, int((current.lens > 0).sum() + current.lens.sum()))
    arc = max(1.0, float(current.travel.sum()) / arcs)
    hot, cold = START_ARCS * arc, END_ARCS * arc
    _seed(seed)
    done = 0
    while True:
        elapsed = time.monotonic() - started
        if iteration_limit is not None:
            if done >= iteration_limit or elapsed >= time_limit_s:
                break
            steps = min(CHUNK, iteration_limit - done)
            frac_from, frac_to = done / iteration_limit, (done + steps) / iteration_limit
        else:
            if elapsed >= time_limit_s:
                break
            steps = CHUNK
            frac_from = elapsed / time_limit_s
            frac_to = min(
                1.0, frac_from + (elapsed / max(1, done)) * steps / time_limit_s if done else frac_from
            )
        _iterate(p, s, w, b, totals, steps, hot * (cold / hot) ** frac_from, hot * (cold / hot) ** frac_to)
        done += steps
    stops = problem.stops
    return {
        tech_id: [stops[i].id for i in row if i < data.n]  # breaks stay behind: OR-Tools places its own
        for tech_id, row in zip(data.tech_ids, best.rows(), strict=True)
    }


class _Arrays:
    """The problem as numpy arrays for the compiled loops (``pack`` gives the tuple they take)."""

    def __init__(
        self,
        problem: Problem,
        matrix: Sequence[Sequence[int]],
        penalties: Mapping[int, int],
        targets: Sequence[int] | None = None,
        balance_cost_per_s: int = 0,
    ):
        stops, techs = problem.stops, problem.technicians
        n, n_techs = len(stops), len(techs)
        self.n, self.v = n, n_techs
        self.stop_index = {s.id: i for i, s in enumerate(stops)}
        self.tech_ids = [t.id for t in techs]
        self.dist = np.asarray(matrix, dtype=np.int64)
        # Break elements are numbered after the matrix's nodes: stops, starts and ends, then breaks.
        self.breaks = [(v, b) for v, t in enumerate(techs) for b in t.breaks]
        self.first_break = n + 2 * n_techs
        self.service = np.array(
            [s.service_s for s in stops] + [0] * (2 * n_techs) + [b.duration_s for _, b in self.breaks],
            dtype=np.int64,
        )
        self.demand = np.array([s.demand for s in stops], dtype=np.int64)
        total = int(self.demand.sum())
        self.capacity = np.array([total if t.capacity is None else t.capacity for t in techs], dtype=np.int64)
        self.shift_start = np.array([t.shift.start_s for t in techs], dtype=np.int64)
        latest = []
        for t in techs:
            end = t.shift.end_s + t.max_overtime_s
            if t.max_work_s is not None:
                end = min(end, t.shift.start_s + t.max_work_s)
            latest.append(end)
        self.latest_end = np.array(latest, dtype=np.int64)
        horizon = int(self.latest_end.max(initial=0))
        width = max([len(s.windows) for s in stops] + [1])
        n_elements = self.first_break + len(self.breaks)
        self.win_start = np.zeros((n_elements, width), dtype=np.int64)
        self.win_end = np.full((n_elements, width), horizon, dtype=np.int64)
        self.n_win = np.ones(n_elements, dtype=np.int64)
        for i, s in enumerate(stops):
            if s.windows:
                self.n_win[i] = len(s.windows)
                for j, w in enumerate(s.windows):
                    self.win_start[i, j] = w.start_s
                    self.win_end[i, j] = w.end_s
        for k, (_, b) in enumerate(self.breaks):  # a break's window bounds its start
            self.win_start[self.first_break + k, 0] = b.earliest_start_s
            self.win_end[self.first_break + k, 0] = b.latest_start_s
        self.allowed = np.zeros((n, n_techs), dtype=np.bool_)
        for i, s in enumerate(stops):
            for v in skilled_technicians(problem, s)[0]:
                self.allowed[i, v] = True
        self.eligible = np.asarray(self.allowed.any(axis=1), dtype=np.bool_)
        # Rank 0 is the most valuable level present: recreate inserts by rank first.
        values = [s.value if s.value is not None else penalties[s.priority] for s in stops]
        levels = sorted(set(values), reverse=True)
        rank_of = {value: r for r, value in enumerate(levels)}
        self.rank = np.array([rank_of[value] for value in values], dtype=np.int64)
        self.penalty = np.array(values, dtype=np.int64)
        self.shift_end = np.array([t.shift.end_s for t in techs], dtype=np.int64)
        self.overtime_cost = np.array([t.overtime_cost_per_s for t in techs], dtype=np.int64)
        self.overtime_min = np.array([t.overtime_min_s for t in techs], dtype=np.int64)
        balance = targets is not None and balance_cost_per_s > 0
        self.target = np.array(
            list(targets) if targets is not None and balance else self.latest_end, dtype=np.int64
        )
        self.balance = np.array([balance_cost_per_s if balance else 0], dtype=np.int64)
        # The far/close orders measure from the first technician's start.
        self.from_depot = self.dist[n, :n].astype(np.float64)
        self.last_window_end = self.win_end[np.arange(n), self.n_win[:n] - 1].astype(np.float64)
        sym = self.dist[:n, :n] + self.dist[:n, :n].T
        np.fill_diagonal(sym, -1)  # each stop is first in its own list
        self.neighbours = np.argsort(sym, axis=1, kind="stable")[:, : min(n, NEIGHBOURS)].astype(np.int64)

    def pack(self) -> Pack:
        return (
            self.dist,
            self.service,
            self.demand,
            self.win_start,
            self.win_end,
            self.n_win,
            self.shift_start,
            self.latest_end,
            self.capacity,
            self.allowed,
            self.eligible,
            self.rank,
            self.penalty,
            self.from_depot,
            self.last_window_end,
            self.neighbours,
            self.shift_end,
            self.overtime_cost,
            self.target,
            self.balance,
            self.overtime_min,
        )


class _State:
    """One solution as arrays: routes by row (stops and breaks), where each element is, its earliest and
    latest start, each route's load, travel and earliest end, the waiting after each element, and each
    stop's route."""

    def __init__(self, n: int, n_techs: int, n_breaks: int = 0):
        width = max(1, n + n_breaks)
        self.routes = np.full((n_techs, width), -1, dtype=np.int64)
        self.lens = np.zeros(n_techs, dtype=np.int64)
        self.est = np.zeros((n_techs, width), dtype=np.int64)
        self.lat = np.zeros((n_techs, width), dtype=np.int64)
        self.load = np.zeros(n_techs, dtype=np.int64)
        self.travel = np.zeros(n_techs, dtype=np.int64)
        self.where = np.full(n, -1, dtype=np.int64)  # technician row of each stop, -1 unplaced
        self.locs = np.zeros((n_techs, width), dtype=np.int64)  # matrix node where each element happens
        self.fin = np.zeros(n_techs, dtype=np.int64)  # earliest arrival at the end (shift start if empty)
        # Waiting (earliest start - earliest arrival) at element k and after it; a column more for "none".
        self.wait_after = np.zeros((n_techs, width + 1), dtype=np.int64)

    def pack(self) -> Pack:
        return (
            self.routes,
            self.lens,
            self.est,
            self.lat,
            self.load,
            self.travel,
            self.where,
            self.locs,
            self.fin,
            self.wait_after,
        )

    def copy(self) -> _State:
        other = _State(0, 0)
        for name in ("routes", "lens", "est", "lat", "load", "travel", "where", "locs", "fin", "wait_after"):
            setattr(other, name, getattr(self, name).copy())
        return other

    def rows(self) -> list[list[int]]:
        return [[int(i) for i in self.routes[v, : self.lens[v]]] for v in range(len(self.lens))]


def _load(
    problem: Problem, matrix: Sequence[Sequence[int]], data: _Arrays, routes: Mapping[str, Sequence[str]]
) -> _State | None:
    """The state of ``routes``, or None if one of them is infeasible under this model."""
    state = _State(data.n, data.v, len(data.breaks))
    break_ids: dict[int, list[int]] = {}
    for k, (v, _) in enumerate(data.breaks):
        break_ids.setdefault(v, []).append(data.first_break + k)
    for v, tech_id in enumerate(data.tech_ids):
        seq = [data.stop_index[s] for s in routes.get(tech_id, ()) if s in data.stop_index]
        if any(not data.allowed[i, v] for i in seq):
            return None
        row = list(seq)
        if break_ids.get(v):
            # Each break goes where the schedule simulation takes it: after the stops departed before it.
            schedule = simulate(problem.technicians[v], v, seq, problem.stops, matrix)
            if schedule is None or len(schedule.breaks) != len(break_ids[v]):
                return None
            row = []
            pending = list(zip(break_ids[v], schedule.breaks, strict=True))
            for leg in schedule.legs:
                while pending and pending[0][1].start_s < leg.start_s:
                    row.append(pending.pop(0)[0])
                row.append(leg.stop)
            row += [b for b, _ in pending]
        state.routes[v, : len(row)] = row
        state.lens[v] = len(row)
        state.where[seq] = v
    packed, rows = data.pack(), state.pack()
    if not all(_time_route(packed, rows, v) for v in range(data.v)):
        return None
    return state


# ---------------------------------------------------------------------------------------------------
# Compiled core. P is _Arrays.pack(), S/W are _State.pack() of the current and working solution.


@njit(cache=True)
def _seed(seed: int) -> None:
    np.random.seed(seed)


@njit(cache=True)
def _first_start(ws: np.ndarray, we: np.ndarray, nw: np.ndarray, u: int, arrival: int) -> int:
    """Earliest service start at ``u`` for an arrival at ``arrival`` (waiting allowed), or NONE."""
    for k in range(nw[u]):
        if arrival <= we[u, k]:
            return int(max(arrival, ws[u, k]))
    return NONE


@njit(cache=True)
def _latest_start(ws: np.ndarray, we: np.ndarray, nw: np.ndarray, u: int, bound: int) -> int:
    """Latest service start at ``u`` no later than ``bound``, or NONE."""
    for k in range(nw[u] - 1, -1, -1):
        if bound >= ws[u, k]:
            return int(min(bound, we[u, k]))
    return NONE


@njit(cache=True)
def _time_route(P: Pack, S: Pack, v: int) -> bool:
    """Recompute row ``v``'s element places and starts, load and travel; False if it is infeasible."""
    dist, service, demand, ws, we, nw, shift_start, latest_end, capacity = P[:9]
    routes, lens, est, lat, load, travel = S[:6]
    locs, fin, wait_after = S[7], S[8], S[9]
    n = demand.shape[0]
    n_nodes = dist.shape[0]  # elements numbered from here on are breaks
    length = lens[v]
    here = n + 2 * v
    t = shift_start[v]
    total = 0
    weight = 0
    visits = 0
    for k in range(length):
        e = routes[v, k]
        if e >= n_nodes:  # a break: taken where the technician is, no travel
            locs[v, k] = here
            arrival = t
        else:
            locs[v, k] = e
            arrival = t + dist[here, e]
            total += dist[here, e]
            weight += demand[e]
            visits += 1
            here = e
        s = _first_start(ws, we, nw, e, arrival)
        if s == NONE:
            return False
        est[v, k] = s
        wait_after[v, k] = s - arrival
        t = s + service[e]
    end = n + 2 * v + 1
    if visits > 0:
        total += dist[here, end]
    if t + dist[here, end] > latest_end[v] or weight > capacity[v]:
        return False
    bound = latest_end[v]
    nxt = end
    for k in range(length - 1, -1, -1):
        e = routes[v, k]
        leg = dist[locs[v, k], nxt] if locs[v, k] != nxt else 0
        s = _latest_start(ws, we, nw, e, bound - leg - service[e])
        if s == NONE or s < est[v, k]:
            return False
        lat[v, k] = s
        bound = s
        nxt = locs[v, k]
    load[v] = weight
    travel[v] = total
    fin[v] = t + dist[here, end] if visits > 0 else shift_start[v]
    wait_after[v, length] = 0
    for k in range(length - 1, -1, -1):
        wait_after[v, k] += wait_after[v, k + 1]
    return True


@njit(cache=True)
def _copy_rows(src: Pack, dst: Pack, touched: np.ndarray) -> None:
    """Make the ``touched`` rows of ``dst`` equal to those of ``src`` (stop locations included)."""
    s_routes, s_lens, s_est, s_lat, s_load, s_travel, _, s_locs, s_fin, s_wait = src
    d_routes, d_lens, d_est, d_lat, d_load, d_travel, d_where, d_locs, d_fin, d_wait = dst
    n = d_where.shape[0]
    for v in range(touched.shape[0]):
        if touched[v]:
            for k in range(d_lens[v]):
                if d_routes[v, k] < n:
                    d_where[d_routes[v, k]] = -1
    for v in range(touched.shape[0]):
        if touched[v]:
            length = s_lens[v]
            d_routes[v, :length] = s_routes[v, :length]
            d_est[v, :length] = s_est[v, :length]
            d_lat[v, :length] = s_lat[v, :length]
            d_locs[v, :length] = s_locs[v, :length]
            d_wait[v, : length + 1] = s_wait[v, : length + 1]
            d_fin[v] = s_fin[v]
            d_lens[v] = length
            d_load[v] = s_load[v]
            d_travel[v] = s_travel[v]
            for k in range(length):
                if s_routes[v, k] < n:
                    d_where[s_routes[v, k]] = v


@njit(cache=True)
def _time_cost(P: Pack, v: int, end: int) -> int:
    """The price of route ``v`` ending at ``end``: overtime (at least its minimum once started), and the
    balance term past its target."""
    shift_end, overtime_cost, target, balance, overtime_min = P[16], P[17], P[18], P[19], P[20]
    overtime = end - shift_end[v]
    price = overtime_cost[v] * max(overtime, overtime_min[v]) if overtime > 0 else 0
    return int(price + balance[0] * max(0, end - target[v]))


@njit(cache=True)
def _cost(P: Pack, S: Pack) -> int:
    """Travel, overtime and balance, plus the value of every unplaced stop that some technician may do."""
    eligible, penalty = P[10], P[12]
    travel, where, fin = S[5], S[6], S[8]
    total = travel.sum()
    for v in range(fin.shape[0]):
        total += _time_cost(P, v, fin[v])
    for u in range(where.shape[0]):
        if where[u] < 0 and eligible[u]:
            total += penalty[u]
    return int(total)


@njit(cache=True)
def _ruin(P: Pack, W: Pack, touched: np.ndarray) -> None:
    """Cut strings from routes near a random stop (SISR's adjacent string removal)."""
    neighbours = P[15]
    routes, lens, where = W[0], W[1], W[6]
    n = where.shape[0]
    used = 0
    placed = 0
    for v in range(lens.shape[0]):
        stops_on = 0
        for k in range(lens[v]):
            if routes[v, k] < n:
                stops_on += 1
        if stops_on > 0:
            used += 1
            placed += stops_on
    if used == 0:
        return
    ls_max = min(float(MAX_CARDINALITY), placed / used)
    ks_max = 4.0 * MEAN_REMOVED / (1.0 + ls_max) - 1.0
    ks = int(np.random.uniform(1.0, ks_max + 1.0))
    centre = np.random.randint(0, n)
    ruined = 0
    for j in range(neighbours.shape[1]):
        if ruined >= ks:
            break
        c = neighbours[centre, j]
        v = where[c]
        if v < 0 or touched[v]:
            continue
        length = lens[v]
        lt = int(np.random.uniform(1.0, min(float(length), ls_max) + 1.0))
        pos = 0
        while routes[v, pos] != c:
            pos += 1
        keep_from, keep_to = 0, 0  # kept stops inside the cut span (split string)
        span = lt
        if lt < length and np.random.random() < 0.5:
            m = 1
            while lt + m < length and np.random.random() < 0.5:
                m += 1
            span = lt + m
            keep_from = np.random.randint(0, lt + 1)
            keep_to = keep_from + m
        first = np.random.randint(max(0, pos - span + 1), min(pos, length - span) + 1)
        out = 0
        for k in range(length):
            offset = k - first
            cut = 0 <= offset < span and not (keep_from <= offset < keep_to) and routes[v, k] < n
            if cut:
                where[routes[v, k]] = -1
            else:
                routes[v, out] = routes[v, k]
                out += 1
        lens[v] = out
        touched[v] = True
        ruined += 1


@njit(cache=True)
def _best_insertion(P: Pack, W: Pack, u: int) -> tuple[int, int, int]:
    """Cheapest feasible (technician row, position, added cost) for stop ``u``, skipping blinked positions.

    Inserted just before a break, ``u`` takes the break with it: the break then happens at ``u`` and
    the travel to the next stop starts from ``u``, so the check walks through the breaks that follow.
    The added cost is the added travel plus the change in overtime and balance cost: the delay at the
    next element, less the waiting after it, is how much later the route ends.
    """
    dist, service, demand, ws, we, nw, shift_start, latest_end, capacity, allowed = P[:10]
    routes, lens, est, lat, load = W[:5]
    locs, fin, wait_after = W[7], W[8], W[9]
    n = demand.shape[0]
    n_nodes = dist.shape[0]
    last_end = we[u, nw[u] - 1]
    best = np.int64(1) << 62
    best_v, best_k = -1, -1
    for v in range(lens.shape[0]):
        if not allowed[u, v] or load[v] + demand[u] > capacity[v]:
            continue
        length = lens[v]
        here = n + 2 * v
        departure = shift_start[v]
        for k in range(length + 1):
            arrival = departure + dist[here, u]
            if arrival > last_end:
                break  # later positions only arrive later
            j = k  # the next stop (or the end) after the breaks that follow position k
            while j < length and routes[v, j] >= n_nodes:
                j += 1
            if j < length:
                nxt = routes[v, j]
                nxt_latest = lat[v, j]
            else:
                nxt = n + 2 * v + 1
                nxt_latest = latest_end[v]
            delta = dist[here, u] + dist[u, nxt] - dist[here, nxt]
            if delta < best and np.random.random() >= BLINK:
                s = _first_start(ws, we, nw, u, arrival)
                if s != NONE:
                    t = s + service[u]
                    for b in range(k, j):
                        s = _first_start(ws, we, nw, routes[v, b], t)
                        if s == NONE:
                            break
                        t = s + service[routes[v, b]]
                    if s != NONE and t + dist[u, nxt] <= nxt_latest:
                        arrive = t + dist[u, nxt]
                        if j < length:
                            push = _first_start(ws, we, nw, nxt, arrive) - est[v, j] - wait_after[v, j + 1]
                        else:
                            push = arrive - fin[v]
                        end = fin[v] + max(0, push)
                        added = delta + _time_cost(P, v, end) - _time_cost(P, v, fin[v])
                        if added < best:
                            best, best_v, best_k = added, v, k
            if k < length:
                departure = est[v, k] + service[routes[v, k]]
                here = locs[v, k]
    return best_v, best_k, int(best)


@njit(cache=True)
def _recreate(P: Pack, W: Pack, touched: np.ndarray) -> None:
    """Insert every unplaced stop where it adds least cost (if less than its value), in a random order."""
    demand, eligible, rank, penalty, from_depot, last_window_end = P[2], P[10], P[11], P[12], P[13], P[14]
    routes, lens, where = W[0], W[1], W[6]
    todo = np.nonzero((where < 0) & eligible)[0]
    count = todo.shape[0]
    if count == 0:
        return
    key = np.empty(count, dtype=np.float64)
    order = np.random.randint(0, 12)  # weights 4 random, 4 demand, 2 far, 1 close, 1 tight window
    for j in range(count):
        u = todo[j]
        noise = np.random.random()
        if order < 4:
            second = noise
        elif order < 8:
            second = -float(demand[u]) + noise * 0.5
        elif order < 10:
            second = -from_depot[u] + noise * 0.5
        elif order < 11:
            second = from_depot[u] + noise * 0.5
        else:
            second = last_window_end[u] + noise * 0.5
        key[j] = rank[u] * 1e12 + second
    for j in np.argsort(key):
        u = todo[j]
        v, k, added = _best_insertion(P, W, u)
        if v < 0 or added >= penalty[u]:
            continue
        length = lens[v]
        for m in range(length, k, -1):
            routes[v, m] = routes[v, m - 1]
        routes[v, k] = u
        lens[v] = length + 1
        where[u] = v
        touched[v] = True
        _time_route(P, W, v)


@njit(cache=True)
def _iterate(
    P: Pack, S: Pack, W: Pack, B: Pack, totals: np.ndarray, steps: int, temp_from: float, temp_to: float
) -> None:
    """``steps`` ruin-and-recreate iterations with annealing from ``temp_from`` to ``temp_to``."""
    n_techs = S[1].shape[0]
    touched = np.zeros(n_techs, dtype=np.bool_)
    everything = np.ones(n_techs, dtype=np.bool_)
    for step in range(steps):
        temperature = temp_from * (temp_to / temp_from) ** (step / max(1, steps))
        touched[:] = False
        _ruin(P, W, touched)
        # Removing stops can break a window when travel times break the triangle inequality.
        feasible = True
        for v in range(n_techs):
            if touched[v] and not _time_route(P, W, v):
                feasible = False
        if feasible:
            _recreate(P, W, touched)
            cost = _cost(P, W)
            if cost < totals[0] - temperature * np.log(np.random.random()):
                _copy_rows(W, S, touched)
                totals[0] = cost
                if cost < totals[1]:
                    totals[1] = cost
                    _copy_rows(S, B, everything)
                continue
        _copy_rows(S, W, touched)
