"""Plain data in and out of the routing engine: problem, parameters and plan.

Every time is an integer number of seconds since midnight of the planning day, and every
duration is in seconds. Constructors validate their input and raise ``ValueError`` naming the
offending field, so a bad problem fails before any search starts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from routing.travel import TravelTimeSource

DAY_S = 24 * 3600


def _check_int(name: str, value: object, *, minimum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


@dataclass(frozen=True, slots=True)
class Location:
    """A point: WGS84 latitude/longitude in degrees (or planar y/x for test instances)."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        for name, value in (("lat", self.lat), ("lon", self.lon)):
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"Location.{name} must be a finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """An interval [start_s, end_s] in which service may START (waiting before it is allowed)."""

    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        _check_int("TimeWindow.start_s", self.start_s, minimum=0)
        _check_int("TimeWindow.end_s", self.end_s, minimum=0)
        if self.end_s < self.start_s:
            raise ValueError(f"TimeWindow.end_s ({self.end_s}) is before start_s ({self.start_s})")


@dataclass(frozen=True, slots=True)
class Break:
    """A break of ``duration_s`` that must start within [earliest_start_s, latest_start_s]."""

    earliest_start_s: int
    latest_start_s: int
    duration_s: int

    def __post_init__(self) -> None:
        _check_int("Break.earliest_start_s", self.earliest_start_s, minimum=0)
        _check_int("Break.latest_start_s", self.latest_start_s, minimum=0)
        _check_int("Break.duration_s", self.duration_s, minimum=1)
        if self.latest_start_s < self.earliest_start_s:
            raise ValueError(
                f"Break.latest_start_s ({self.latest_start_s}) is before earliest_start_s ({self.earliest_start_s})"
            )


@dataclass(frozen=True, slots=True)
class Technician:
    """One field technician (a vehicle): shift, yard or home, skills, breaks, limits.

    Parameters
    ----------
    id
        Caller's identifier, unique within a problem.
    start, end
        Where the day starts and ends; ``end`` defaults to ``start``.
    shift
        Nominal shift: the route may not start before ``shift.start_s``; it should end by
        ``shift.end_s`` and may run up to ``max_overtime_s`` past it at ``overtime_cost_per_s``
        (in travel seconds per second); overtime, once started, is paid for at least
        ``overtime_min_s`` (a minimum call: work worth less than that never opens overtime).
    skills
        What the technician is qualified for; a stop needs all of its ``required_skills``.
    breaks
        Breaks (lunch) taken somewhere inside their start window.
    max_work_s
        Longest allowed route span (first departure to last arrival), ``None`` for no limit.
    capacity
        Vehicle capacity in the units of ``Stop.demand``; ``None`` for unlimited.
    """

    id: str
    start: Location
    shift: TimeWindow
    end: Location | None = None
    skills: frozenset[str] = frozenset()
    breaks: tuple[Break, ...] = ()
    max_work_s: int | None = None
    max_overtime_s: int = 0
    overtime_cost_per_s: int = 2
    capacity: int | None = None
    overtime_min_s: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Technician.id must be a non-empty string, got {self.id!r}")
        where = f"technician {self.id!r}"
        if not isinstance(self.skills, frozenset):
            raise ValueError(f"{where}: skills must be a frozenset of strings")
        _check_int(f"{where}: max_overtime_s", self.max_overtime_s, minimum=0)
        _check_int(f"{where}: overtime_cost_per_s", self.overtime_cost_per_s, minimum=0)
        _check_int(f"{where}: overtime_min_s", self.overtime_min_s, minimum=0)
        if self.max_work_s is not None:
            _check_int(f"{where}: max_work_s", self.max_work_s, minimum=1)
        if self.capacity is not None:
            _check_int(f"{where}: capacity", self.capacity, minimum=0)
        latest_end = self.shift.end_s + self.max_overtime_s
        for i, brk in enumerate(self.breaks):
            if brk.earliest_start_s < self.shift.start_s or brk.latest_start_s + brk.duration_s > latest_end:
                raise ValueError(
                    f"{where}: breaks[{i}] ({brk.earliest_start_s}-{brk.latest_start_s}+{brk.duration_s}s) "
                    f"does not fit in the shift {self.shift.start_s}-{latest_end}"
                )

    @property
    def end_location(self) -> Location:
        """Where the route ends."""
        return self.end if self.end is not None else self.start


@dataclass(frozen=True, slots=True)
class Stop:
    """One piece of work at a place.

    Parameters
    ----------
    id
        Caller's identifier (an order id), unique within a problem.
    windows
        One or more disjoint windows for the start of service; empty means any time in the shift.
    priority
        0 is the most urgent; higher numbers are dropped first when the day is full.
    pinned_technician
        When set, only this technician may do the stop.
    demand
        Load taken up in the vehicle (0 for field-service work).
    value
        What doing the stop in this plan is worth, in travel seconds: the cost of leaving it out.
        ``None`` takes it from the priority (``SolveParams.drop_penalty_s`` and ``priority_factor``).
        A stop is placed only where it costs less than it is worth (travel, overtime at its price,
        balance), so a value below the price of its own service time in overtime never buys overtime.
    """

    id: str
    location: Location
    service_s: int
    windows: tuple[TimeWindow, ...] = ()
    required_skills: frozenset[str] = frozenset()
    priority: int = 3
    pinned_technician: str | None = None
    demand: int = 0
    value: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Stop.id must be a non-empty string, got {self.id!r}")
        where = f"stop {self.id!r}"
        _check_int(f"{where}: service_s", self.service_s, minimum=0)
        _check_int(f"{where}: priority", self.priority, minimum=0)
        _check_int(f"{where}: demand", self.demand, minimum=0)
        if self.value is not None:
            _check_int(f"{where}: value", self.value, minimum=1)
        if self.priority > MAX_PRIORITY:
            raise ValueError(f"{where}: priority must be <= {MAX_PRIORITY}, got {self.priority}")
        if not isinstance(self.required_skills, frozenset):
            raise ValueError(f"{where}: required_skills must be a frozenset of strings")
        ordered = sorted(self.windows, key=lambda w: w.start_s)
        if list(self.windows) != ordered:
            raise ValueError(f"{where}: windows must be sorted by start_s")
        for a, b in itertools.pairwise(ordered):
            if b.start_s <= a.end_s:
                raise ValueError(f"{where}: windows {a.start_s}-{a.end_s} and {b.start_s}-{b.end_s} overlap")


MAX_PRIORITY = 9


@dataclass(frozen=True, slots=True)
class Problem:
    """Technicians, stops and the locked sequences a plan must keep.

    ``locked`` maps a technician id to stop ids that must stay on that technician in that
    relative order (other stops may be inserted between them, nothing is reordered).
    ``travel`` gives travel times; ``None`` means haversine with the default circuity and speed.
    """

    technicians: tuple[Technician, ...]
    stops: tuple[Stop, ...]
    locked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    travel: TravelTimeSource | None = None  # None: HaversineTravel() with its defaults

    def __post_init__(self) -> None:
        if not self.technicians:
            raise ValueError("Problem.technicians is empty: at least one technician is needed")
        tech_ids = [t.id for t in self.technicians]
        dup = _first_duplicate(tech_ids)
        if dup is not None:
            raise ValueError(f"Problem.technicians: duplicate technician id {dup!r}")
        stop_ids = [s.id for s in self.stops]
        dup = _first_duplicate(stop_ids)
        if dup is not None:
            raise ValueError(f"Problem.stops: duplicate stop id {dup!r}")
        known_techs = set(tech_ids)
        known_stops = set(stop_ids)
        for s in self.stops:
            if s.pinned_technician is not None and s.pinned_technician not in known_techs:
                raise ValueError(
                    f"stop {s.id!r}: pinned_technician {s.pinned_technician!r} is not in the problem"
                )
        seen: dict[str, str] = {}
        for tech_id, seq in self.locked.items():
            if tech_id not in known_techs:
                raise ValueError(f"Problem.locked: technician {tech_id!r} is not in the problem")
            for stop_id in seq:
                if stop_id not in known_stops:
                    raise ValueError(f"Problem.locked[{tech_id!r}]: stop {stop_id!r} is not in the problem")
                if stop_id in seen:
                    raise ValueError(
                        f"Problem.locked: stop {stop_id!r} is locked on both {seen[stop_id]!r} and {tech_id!r}"
                    )
                seen[stop_id] = tech_id

    def technician(self, tech_id: str) -> Technician:
        """The technician with this id."""
        for t in self.technicians:
            if t.id == tech_id:
                return t
        raise KeyError(tech_id)


def _first_duplicate(ids: list[str]) -> str | None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            return i
        seen.add(i)
    return None


@dataclass(frozen=True, slots=True)
class SolveParams:
    """How long and how to search.

    Parameters
    ----------
    time_limit_s
        Wall-clock limit for the search.
    seed
        Seeds every randomised choice; with ``solution_limit`` and ``iteration_limit`` set (or a
        search that stops before the time limit) the same problem and seed give the same plan.
    solution_limit
        Stop after this many improving solutions; makes the result independent of machine speed.
    workers
        Number of processes in the strategy portfolio (1 = in-process, deterministic).
    drop_penalty_s
        Cost of leaving out a stop of the lowest priority, in travel seconds.
    priority_factor
        Each priority level up costs this many times more to leave out, so one stop of priority
        p outweighs ``priority_factor`` stops of priority p + 1.
    iteration_limit
        Stop ruin and recreate after this many iterations (its temperature then falls by
        iteration, not by the clock); with ``solution_limit`` as well, the plan does not depend
        on machine speed.
    first_solution
        An OR-Tools first-solution strategy name to use instead of the portfolio (and instead
        of ruin and recreate).
    metaheuristic
        OR-Tools local-search metaheuristic; ``GREEDY_DESCENT`` stops at the first local optimum.
    balance_cost_per_s
        Workload balance (0 = off): each second a route runs past its even share of the day's work
        (the day's load spread over every technician's shift) costs this many travel seconds, so a
        day that is not full is spread over the crew instead of packed onto the nearest few.
    """

    time_limit_s: float
    seed: int = 0
    solution_limit: int | None = None
    iteration_limit: int | None = None
    workers: int = 1
    drop_penalty_s: int = 100_000
    priority_factor: int = 10
    first_solution: str | None = None
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    balance_cost_per_s: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.time_limit_s, int | float) or not self.time_limit_s > 0:
            raise ValueError(f"SolveParams.time_limit_s must be > 0, got {self.time_limit_s!r}")
        _check_int("SolveParams.seed", self.seed, minimum=0)
        _check_int("SolveParams.workers", self.workers, minimum=1)
        if self.iteration_limit is not None:
            _check_int("SolveParams.iteration_limit", self.iteration_limit, minimum=0)
        _check_int("SolveParams.drop_penalty_s", self.drop_penalty_s, minimum=1)
        _check_int("SolveParams.priority_factor", self.priority_factor, minimum=1)
        _check_int("SolveParams.balance_cost_per_s", self.balance_cost_per_s, minimum=0)
        if self.solution_limit is not None:
            _check_int("SolveParams.solution_limit", self.solution_limit, minimum=1)
        if self.metaheuristic not in METAHEURISTICS:
            raise ValueError(f"SolveParams.metaheuristic must be one of {', '.join(METAHEURISTICS)}")
        if self.first_solution is not None and self.first_solution not in FIRST_SOLUTIONS:
            raise ValueError(f"SolveParams.first_solution must be one of {', '.join(FIRST_SOLUTIONS)}")


METAHEURISTICS = ("GUIDED_LOCAL_SEARCH", "GREEDY_DESCENT", "SIMULATED_ANNEALING", "TABU_SEARCH")
FIRST_SOLUTIONS = (
    "PARALLEL_CHEAPEST_INSERTION",
    "LOCAL_CHEAPEST_INSERTION",
    "SAVINGS",
    "PATH_CHEAPEST_ARC",
    "GLOBAL_CHEAPEST_ARC",
    "SEQUENTIAL_CHEAPEST_INSERTION",
    "CHRISTOFIDES",
    "AUTOMATIC",
)


class UnassignedReason(StrEnum):
    """Why a stop is not in any route."""

    NO_SKILLED_TECHNICIAN = "no_skilled_technician"  # nobody (allowed) has every required skill
    WINDOW_UNREACHABLE = "window_unreachable"  # no skilled technician can reach any window within the shift
    OVER_CAPACITY = "over_capacity"  # demand exceeds every skilled technician's capacity
    SKILL_SHORT = "skill_short"  # every technician with the skill is full while others have time
    NOT_WORTH_OVERTIME = "not_worth_overtime"  # fits only in overtime, which costs more than it is worth
    NOT_WORTH_TRAVEL = "not_worth_travel"  # fits in a shift, but the drive costs more than it is worth
    DAY_FULL = "day_full"  # every allowed technician is full, overtime included


@dataclass(frozen=True, slots=True)
class Visit:
    """One stop on a route with its schedule."""

    stop_id: str
    arrival_s: int
    start_s: int  # start of service; >= arrival_s, the difference is idle (waiting) time
    departure_s: int
    travel_s: int  # travel from the previous place on the route


@dataclass(frozen=True, slots=True)
class BreakSlot:
    """When a technician's break is taken."""

    start_s: int
    duration_s: int


@dataclass(frozen=True, slots=True)
class Route:
    """One technician's day."""

    technician_id: str
    start_s: int  # leaves the start location
    end_s: int  # arrives at the end location
    visits: tuple[Visit, ...]
    breaks: tuple[BreakSlot, ...]
    travel_s: int
    idle_s: int
    overtime_s: int


@dataclass(frozen=True, slots=True)
class Unassigned:
    """A stop left out of the plan and why, as found by trying to put it back.

    ``detail`` says it in words (technician ids; ``routing.diagnose.describe`` words it with other
    names); ``technician_ids`` are the technicians allowed to do it, ``skills`` what it needs,
    ``short_s`` by how much it failed (a window missed by, the overtime it would need, the detour it
    would cost) and ``crew_size`` how many technicians the plan had.
    """

    stop_id: str
    reason: UnassignedReason
    detail: str = ""
    technician_ids: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    short_s: int = 0
    crew_size: int = 0
    window: tuple[int, int] | None = None  # the stop's windows' first start and last end


@dataclass(frozen=True, slots=True)
class Bottleneck:
    """What left work out: a skill too few have (``kind="skill"``) or the crew's hours (``"hours"``)."""

    kind: str
    skills: tuple[str, ...]
    technician_ids: tuple[str, ...]  # who has the skill (all of them are full)
    stops: int  # stops left out for it
    work_s: int  # their service time
    text: str = ""


@dataclass(frozen=True, slots=True)
class IdleCapacity:
    """A technician with time left in the shift, and the skills they could use it for."""

    technician_id: str
    free_s: int
    skills: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """The answer: a route per technician (possibly empty) and the stops left out."""

    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]
    objective: int
    travel_s: int
    status: str
    bottlenecks: tuple[Bottleneck, ...] = ()
    idle: tuple[IdleCapacity, ...] = ()

    def route_of(self, tech_id: str) -> Route:
        """The route of this technician."""
        for r in self.routes:
            if r.technician_id == tech_id:
                return r
        raise KeyError(tech_id)

    def assignment(self) -> dict[str, str]:
        """Stop id -> technician id for every assigned stop."""
        return {v.stop_id: r.technician_id for r in self.routes for v in r.visits}
