"""Deterministic sample routes and reads for the simulator, the tests and the benchmark."""

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
