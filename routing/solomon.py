"""Solomon VRPTW instances as routing Problems (DIMACS convention: distances x10, truncated)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from routing.model import Location, Problem, Stop, Technician, TimeWindow
from routing.travel import EuclideanTravel

SCALE = 10  # DIMACS: one decimal, truncated; times and windows scaled alike


@dataclass(frozen=True, slots=True)
class SolomonInstance:
    """A parsed instance: name, fleet size, capacity and the rows ``id x y demand ready due service``."""

    name: str
    vehicles: int
    capacity: int
    rows: tuple[tuple[int, int, int, int, int, int, int], ...]


def parse_solomon(path: Path) -> SolomonInstance:
    """Read a Solomon-format file; raise ValueError naming the line that does not parse."""
    lines = path.read_text().splitlines()
    name = lines[0].strip() if lines else path.stem
    try:
        vehicle_at = next(i for i, line in enumerate(lines) if line.strip().upper() == "VEHICLE")
        customer_at = next(i for i, line in enumerate(lines) if line.strip().upper() == "CUSTOMER")
    except StopIteration:
        raise ValueError(f"{path}: no VEHICLE or CUSTOMER section") from None
    fleet = next(
        line for line in lines[vehicle_at + 1 : customer_at] if line.split() and line.split()[0].isdigit()
    )
    vehicles, capacity = (int(x) for x in fleet.split()[:2])
    rows: list[tuple[int, int, int, int, int, int, int]] = []
    for number, line in enumerate(lines[customer_at + 1 :], start=customer_at + 2):
        parts = line.split()
        if not parts or not parts[0].isdigit():
            continue
        if len(parts) != 7:
            raise ValueError(f"{path}:{number}: expected 7 numbers, got {len(parts)}")
        a, b, c, d, e, f, g = (int(float(x)) for x in parts)
        rows.append((a, b, c, d, e, f, g))
    if len(rows) < 2:
        raise ValueError(f"{path}: fewer than two nodes (depot and a customer)")
    return SolomonInstance(name, vehicles, capacity, tuple(rows))


def to_problem(instance: SolomonInstance) -> Problem:
    """The instance as a Problem: K identical technicians at the depot, every customer a stop."""
    depot = instance.rows[0]
    depot_at = Location(lat=float(depot[2]), lon=float(depot[1]))
    horizon = TimeWindow(SCALE * depot[4], SCALE * depot[5])
    techs = tuple(
        Technician(id=f"v{k}", start=depot_at, shift=horizon, capacity=instance.capacity)
        for k in range(instance.vehicles)
    )
    stops = tuple(
        Stop(
            id=str(row[0]),
            location=Location(lat=float(row[2]), lon=float(row[1])),
            service_s=SCALE * row[6],
            windows=(TimeWindow(SCALE * row[4], SCALE * row[5]),),
            demand=row[3],
        )
        for row in instance.rows[1:]
    )
    return Problem(technicians=techs, stops=stops, travel=EuclideanTravel(scale=SCALE))
