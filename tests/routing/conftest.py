"""Small planar problems for routing tests: one coordinate unit is one minute of driving."""

from __future__ import annotations

import pytest

from routing import EuclideanTravel, Location, Problem, SolveParams, Stop, Technician, TimeWindow

MIN = 60
HOUR = 3600


def at(x: float, y: float) -> Location:
    """A planar point (x, y)."""
    return Location(lat=y, lon=x)


def tech(tech_id: str, **kwargs: object) -> Technician:
    """A technician at the origin working 08:00-16:00 unless told otherwise."""
    fields: dict[str, object] = {"start": at(0, 0), "shift": TimeWindow(8 * HOUR, 16 * HOUR)}
    fields.update(kwargs)
    return Technician(id=tech_id, **fields)  # type: ignore[arg-type]


def stop(stop_id: str, x: float, y: float, **kwargs: object) -> Stop:
    """A 10-minute stop at (x, y) unless told otherwise."""
    fields: dict[str, object] = {"service_s": 10 * MIN}
    fields.update(kwargs)
    return Stop(id=stop_id, location=at(x, y), **fields)  # type: ignore[arg-type]


def problem(techs: list[Technician], stops: list[Stop], **kwargs: object) -> Problem:
    """A problem on the planar minute grid."""
    return Problem(
        technicians=tuple(techs),
        stops=tuple(stops),
        travel=EuclideanTravel(scale=MIN),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def quick() -> SolveParams:
    """A short deterministic search: stops after fixed numbers of iterations and solutions."""
    return SolveParams(time_limit_s=2.0, seed=1, solution_limit=200, iteration_limit=2000)
