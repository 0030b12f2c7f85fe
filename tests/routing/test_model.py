"""Validated constructors: bad input fails early with a message naming the field."""

from __future__ import annotations

import pytest

from routing import Break, Location, Problem, SolveParams, Stop, TimeWindow
from tests.routing.conftest import HOUR, at, stop, tech


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Location(lat=float("nan"), lon=0.0), "Location.lat must be a finite number"),
        (lambda: TimeWindow(10, 5), r"TimeWindow.end_s \(5\) is before start_s \(10\)"),
        (lambda: TimeWindow(-1, 5), "TimeWindow.start_s must be >= 0"),
        (lambda: Break(100, 50, 10), "Break.latest_start_s"),
        (lambda: Break(0, 50, 0), "Break.duration_s must be >= 1"),
        (lambda: stop("a", 1, 1, service_s=-5), "stop 'a': service_s must be >= 0"),
        (lambda: stop("a", 1, 1, priority=12), "stop 'a': priority must be <= 9"),
        (
            lambda: stop("a", 1, 1, windows=(TimeWindow(0, 100), TimeWindow(50, 200))),
            "stop 'a': windows 0-100 and 50-200 overlap",
        ),
        (lambda: stop("", 1, 1), "Stop.id must be a non-empty string"),
        (
            lambda: tech("t", breaks=(Break(20 * HOUR, 21 * HOUR, 1800),)),
            r"technician 't': breaks\[0\] .* does not fit in the shift",
        ),
        (lambda: tech("t", max_work_s=0), "technician 't': max_work_s must be >= 1"),
        (lambda: SolveParams(time_limit_s=0), "SolveParams.time_limit_s must be > 0"),
        (lambda: SolveParams(time_limit_s=1, workers=0), "SolveParams.workers must be >= 1"),
        (
            lambda: SolveParams(time_limit_s=1, metaheuristic="MAGIC"),
            "SolveParams.metaheuristic must be one of",
        ),
    ],
)
def test_constructor_rejects_bad_field(make: object, message: str) -> None:
    """Each constructor raises ValueError whose message names the offending field."""
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_problem_rejects_inconsistent_references() -> None:
    """Duplicate ids, unknown pinned technicians and unknown locked stops are refused."""
    t = tech("t1")
    with pytest.raises(ValueError, match="duplicate technician id 't1'"):
        Problem(technicians=(t, t), stops=())
    with pytest.raises(ValueError, match="duplicate stop id 'a'"):
        Problem(technicians=(t,), stops=(stop("a", 1, 1), stop("a", 2, 2)))
    with pytest.raises(ValueError, match="pinned_technician 'ghost' is not in the problem"):
        Problem(technicians=(t,), stops=(stop("a", 1, 1, pinned_technician="ghost"),))
    with pytest.raises(ValueError, match=r"Problem.locked\['t1'\]: stop 'zz' is not in the problem"):
        Problem(technicians=(t,), stops=(stop("a", 1, 1),), locked={"t1": ("zz",)})
    with pytest.raises(ValueError, match="at least one technician"):
        Problem(technicians=(), stops=(Stop("a", at(0, 0), 60),))
