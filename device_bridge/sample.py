"""Sample routes and reads: synthetic ones for tests and the benchmark, and a walk of a loaded route.

`sample_routes` / `sample_reads` make up meters (serials no real server knows). `walk_reads` is what the
simulator does between docks: one read or skip per route record it was loaded with, a reading inside the
record's low/high limits (in the record's own register digits), with optional reader faults.
"""

from __future__ import annotations

import datetime as dt
import random

from contracts.codes import ReadCode, UnableCode, VolumeUnit
from contracts.handheld import ReadDirection, ReadMethod, ReadRecord, RouteRecord

_STREETS = ["Elm St", "Oak Ave", "Maple Dr", "Cedar Ln", "Birch Rd", "Pine Ct", "Willow Way", "Ash Blvd"]
_NAMES = ["GARCIA M", "SMITH J", "NGUYEN T", "JOHNSON A", "BROWN K", "LOPEZ R", "MILLER D", "DAVIS P"]
_LOCATIONS = ["", "left of drive", "in sidewalk", "behind gate", "under bush near porch", "alley side"]
_HAZARDS = ["", "", "", "dog", "box lid broken", "bees in box"]


def sample_routes(n: int, *, route_id: str = "R014", cycle: str = "07", seed: int = 1) -> list[RouteRecord]:
    """`n` route records of one book, walk sequence 10, 20, 30, ..."""
    rng = random.Random(seed)
    out: list[RouteRecord] = []
    for i in range(n):
        dials = rng.choice([4, 5, 6, 6, 7])
        decimals = rng.choice([0, 0, 1]) if dials > 4 else 0
        prev = rng.randrange(10 ** (dials - 1))
        usage = rng.randrange(50, 400)
        endpoint = f"{rng.randrange(10**9):010d}" if rng.random() < 0.6 else ""
        out.append(
            RouteRecord(
                route_id=route_id,
                cycle=cycle,
                sequence=(i + 1) * 10,
                account=f"{100000 + i * 7:010d}",
                service_point_id=f"SP{200000 + i}",
                customer_name=rng.choice(_NAMES),
                address=f"{100 + i * 2} {rng.choice(_STREETS)}",
                meter_serial=f"M{30000000 + i * 13}",
                endpoint_id=endpoint,
                endpoint_type="M" if endpoint else "",
                meter_type="W",
                register_number=1,
                dials=dials,
                decimals=decimals,
                multiplier=rng.choice([1, 1, 1, 10]),
                unit=rng.choice([VolumeUnit.GALLON, VolumeUnit.CUBIC_FOOT]),
                read_direction=ReadDirection.LEFT_TO_RIGHT,
                previous_read=prev,
                low_limit=prev,
                high_limit=min(10**dials - 1, prev + usage * 3),
                location_note=rng.choice(_LOCATIONS),
                hazard_note=rng.choice(_HAZARDS),
            )
        )
    return out


def sample_reads(
    device_id: str,
    routes: list[RouteRecord],
    *,
    reader_id: str = "RDR7",
    start: dt.datetime | None = None,
    seed: int = 2,
) -> list[ReadRecord]:
    """One read (or skip) per route record, a minute or so apart, as a reader would take them."""
    rng = random.Random(seed)
    t = start or dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
    out: list[ReadRecord] = []
    for r in routes:
        t += dt.timedelta(seconds=rng.randrange(20, 120), microseconds=rng.randrange(1_000_000))
        skipped = rng.random() < 0.05
        base = r.previous_read or 0
        reading = None if skipped else min(10**r.dials - 1, base + rng.randrange(0, 300))
        out.append(
            ReadRecord(
                device_id=device_id,
                reader_id=reader_id,
                route_id=r.route_id,
                cycle=r.cycle,
                sequence=r.sequence,
                account=r.account,
                service_point_id=r.service_point_id,
                meter_serial=r.meter_serial,
                register_number=r.register_number,
                reading=reading,
                read_at=t,
                read_method=ReadMethod.RADIO if r.endpoint_id else ReadMethod.KEYED,
                skip_code=UnableCode.DOG if skipped else None,
                trouble_code=ReadCode.LEAK_SUSPECTED if rng.random() < 0.03 else ReadCode.NONE,
                note="",
                leak=rng.random() < 0.02,
                latitude=round(39.7 + rng.random() / 100, 6),
                longitude=round(-104.9 - rng.random() / 100, 6),
                gps_accuracy_m=round(rng.uniform(2, 15), 1),
            )
        )
    return out


_SKIPS_FOR_HAZARD = {
    "dog": UnableCode.DOG,
    "locked_gate": UnableCode.LOCKED_GATE,
    "meter_under_vehicle": UnableCode.VEHICLE_OVER_METER,
}


def plausible_reading(route: RouteRecord, rng: random.Random) -> int:
    """A reading a meter on this record would show: inside its low/high limits, or a little past the previous read."""
    top: int = 10**route.dials
    if route.low_limit is not None and route.high_limit is not None:
        low, high = route.low_limit, route.high_limit
        # The middle half of the range: the meter's usual use, clear of the edges of the limits.
        return min(top - 1, low + round((high - low) * rng.uniform(0.25, 0.75)))
    if route.previous_read is None:
        return rng.randrange(top // 2)
    # No limits (too little history, or a register near rollover): a modest use, wrapping like the dials.
    return (route.previous_read + rng.randrange(1, max(2, top // 200))) % top


def misread(route: RouteRecord, rng: random.Random) -> int:
    """A reading keyed wrong: well above the record's high limit (or the previous read), still on the dials."""
    top: int = 10**route.dials
    anchor = route.high_limit if route.high_limit is not None else (route.previous_read or 0)
    span = (
        route.high_limit - route.low_limit
        if route.high_limit is not None and route.low_limit is not None
        else top // 100
    )
    return min(top - 1, anchor + max(1, span) * rng.randint(3, 6))


def walk_reads(
    device_id: str,
    routes: list[RouteRecord],
    *,
    reader_id: str,
    start: dt.datetime,
    duration_s: float,
    rng: random.Random,
    skip_prob: float = 0.0,
    misread_prob: float = 0.0,
) -> list[ReadRecord]:
    """A reader walking `routes` in sequence from `start` for `duration_s`: one read or skip per record.

    Parameters
    ----------
    device_id, reader_id
        Written on every read.
    start
        UTC time of the first read; the others follow evenly over `duration_s`, in walk order.
    skip_prob
        Probability a meter is skipped; the code follows the record's hazard note (dog, locked gate) or
        is "can't locate".
    misread_prob
        Probability a reading is keyed outside the record's limits (the server should ask for a reread).
    """
    ordered = sorted(routes, key=lambda r: (r.route_id, r.sequence))
    step = dt.timedelta(seconds=duration_s / max(1, len(ordered)))
    out: list[ReadRecord] = []
    for i, r in enumerate(ordered):
        at = start + step * i + dt.timedelta(microseconds=rng.randrange(1000))
        skip: UnableCode | None = None
        if rng.random() < skip_prob:
            hazard = r.hazard_note.split(",")[0].strip()
            skip = _SKIPS_FOR_HAZARD.get(hazard, UnableCode.CANT_LOCATE)
        reading = (
            None if skip else (misread(r, rng) if rng.random() < misread_prob else plausible_reading(r, rng))
        )
        out.append(
            ReadRecord(
                device_id=device_id,
                reader_id=reader_id,
                route_id=r.route_id,
                cycle=r.cycle,
                sequence=r.sequence,
                account=r.account,
                service_point_id=r.service_point_id,
                meter_serial=r.meter_serial,
                register_number=r.register_number,
                reading=reading,
                read_at=at,
                read_method=ReadMethod.RADIO if r.endpoint_id and reading is not None else ReadMethod.KEYED,
                skip_code=skip,
            )
        )
    return out
