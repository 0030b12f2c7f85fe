"""What the simulated reader takes on a walk of its loaded route: one read per record, in the record's units,
inside the limits the server sent (so the server has no reason to ask for a reread), with optional faults."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from contracts.codes import UnableCode
from contracts.handheld import RouteRecord
from device_bridge.cli import simulate_handheld_command
from device_bridge.sample import sample_routes, walk_reads

START = dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)


def test_a_walk_reads_every_record_once_inside_its_limits_in_walk_order():
    """Every record is read once, by this device and reader, inside low..high, spread over the walk in sequence."""
    routes = sample_routes(40, seed=3)
    reads = walk_reads("HH-0001", routes, reader_id="RDR1", start=START, duration_s=60, rng=random.Random(1))
    assert [(r.route_id, r.sequence, r.meter_serial) for r in reads] == [
        (r.route_id, r.sequence, r.meter_serial) for r in routes
    ]
    for read, record in zip(reads, routes, strict=True):
        assert read.device_id == "HH-0001" and read.reader_id == "RDR1" and read.skip_code is None
        assert read.reading is not None and record.low_limit is not None and record.high_limit is not None
        assert record.low_limit <= read.reading <= record.high_limit
    times = [r.read_at for r in reads]
    assert times == sorted(times) and times[0] >= START and times[-1] < START + dt.timedelta(seconds=60)


def test_without_limits_a_reading_is_a_modest_use_past_the_previous_read_wrapping_the_dials():
    """A register near rollover has no limits from the server: the reading goes a little past the previous
    read and wraps at 10^dials, as the dials do."""
    near_top = RouteRecord(
        route_id="R1", cycle="01", sequence=10, account="A1", service_point_id="SP1", meter_serial="M1",
        dials=4, previous_read=9_998,
    )  # fmt: skip
    readings = [
        walk_reads("HH-0001", [near_top], reader_id="R", start=START, duration_s=1, rng=random.Random(s))[
            0
        ].reading
        for s in range(30)
    ]
    assert all(r is not None and 0 <= r < 10**4 for r in readings)
    assert any(r is not None and r < 9_998 for r in readings)  # wrapped past 9999


@pytest.mark.parametrize(
    ("hazard", "code"),
    [("dog", UnableCode.DOG), ("locked_gate", UnableCode.LOCKED_GATE), ("", UnableCode.CANT_LOCATE)],
)
def test_skips_carry_the_code_the_hazard_suggests(hazard: str, code: UnableCode):
    """A skipped meter has no reading and a code a reader would use there."""
    record = sample_routes(1, seed=1)[0].model_copy(update={"hazard_note": hazard})
    [read] = walk_reads(
        "HH-0001", [record], reader_id="R", start=START, duration_s=1, rng=random.Random(0), skip_prob=1.0
    )
    assert read.reading is None and read.skip_code is code


def test_a_misread_is_outside_the_limits():
    """The misread fault keys a reading above the high limit (the server should question it)."""
    routes = sample_routes(20, seed=5)
    reads = walk_reads(
        "HH-0001", routes, reader_id="R", start=START, duration_s=1, rng=random.Random(2), misread_prob=1.0
    )
    for read, record in zip(reads, routes, strict=True):
        assert read.reading is not None and record.high_limit is not None
        assert read.reading > record.high_limit or read.reading == 10**record.dials - 1


def test_the_simulator_holds_no_made_up_reads_unless_asked():
    """`simulate-handheld` starts with no synthetic reads (their meters are unknown to a real server) and reads
    the route it is loaded with."""
    import inspect

    params = inspect.signature(simulate_handheld_command).parameters
    assert params["reads"].default == 0 and params["walk"].default is True
