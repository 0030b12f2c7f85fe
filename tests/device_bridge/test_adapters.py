"""Sensus AutoRead and Neptune EZRoute fixed-width adapters."""

from __future__ import annotations

import pytest

from device_bridge.adapters import neptune, sensus
from device_bridge.adapters.fixed_width import LayoutError
from device_bridge.sample import sample_reads, sample_routes

ROUTES = sample_routes(12, seed=3)


def _sensus_routes():
    return [
        r.model_copy(update={"dials": 6, "decimals": 0, "location_note": r.location_note[:15]})
        for r in sample_routes(12, seed=3)
        if r.dials >= 6
    ]


def test_sensus_round_trip_and_record_length():
    """Routes written as Sensus records are 155 characters and read back into the same fields."""
    routes = [r for r in _sensus_routes() if (r.previous_read or 0) < 10**6]
    text = sensus.write_routes(routes)
    assert all(len(line) == 155 for line in text.split("\r\n") if line)
    back = sensus.read_routes(text, route_id=routes[0].route_id, cycle=routes[0].cycle, dials=6)
    keep = [c.name for c in sensus.COLUMNS]
    assert [r.model_dump(include=set(keep)) for r in back] == [
        r.model_dump(include=set(keep)) for r in routes
    ]


def test_sensus_columns_are_where_the_layout_says():
    """Account sits in columns 29-43, meter type in 104, previous read right-aligned in 105-114."""
    line = sensus.write_routes([ROUTES[0]]).rstrip("\r\n")
    assert line[28:43].strip() == ROUTES[0].account
    assert line[103] == ROUTES[0].meter_type[:1]
    assert int(line[104:114]) == ROUTES[0].previous_read
    assert line[145:155].strip() == ROUTES[0].meter_serial


GOOD_LINE = sensus.write_routes([ROUTES[0]]).rstrip("\r\n")


@pytest.mark.parametrize(
    ("name", "line", "where"),
    [
        ("truncated", GOOD_LINE[:150], "is 150 characters; this layout is 155"),
        ("too-long", GOOD_LINE + "X", "is 156 characters"),
        (
            "letters-in-number",
            GOOD_LINE[:104] + "00001234AB" + GOOD_LINE[114:],
            "columns 105-114 (previous_read)",
        ),
        ("non-ascii", GOOD_LINE[:30] + "é" + GOOD_LINE[31:], "column 31 (account)"),
        ("blank-serial", GOOD_LINE[:145] + " " * 10, "columns 146-155 (meter_serial)"),
    ],
)
def test_sensus_bad_record_names_line_and_column(name, line, where):
    """A bad record raises LayoutError naming its line and column."""
    text = GOOD_LINE + "\r\n" + line + "\r\n"
    with pytest.raises(LayoutError) as info:
        sensus.read_routes(text, route_id="R1", cycle="01", dials=7)
    assert info.value.errors[0].startswith("line 2:"), name
    assert where in info.value.errors[0]


def test_a_bad_file_imports_nothing_and_reports_every_error():
    """Two bad lines among good ones: one LayoutError listing both, no records returned."""
    text = "\r\n".join([GOOD_LINE, GOOD_LINE[:10], GOOD_LINE, "x" * 155]) + "\r\n"
    with pytest.raises(LayoutError, match="nothing imported") as info:
        sensus.read_routes(text, route_id="R1", cycle="01", dials=7)
    assert [e.split(":")[0] for e in info.value.errors] == ["line 2", "line 4"]


def test_empty_file_is_no_records():
    """An empty file (or only blank lines) is an empty route, not an error."""
    assert sensus.read_routes("", route_id="R1", cycle="01") == []
    assert neptune.read_routes("\r\n\r\n", cycle="01") == []


def test_writing_a_value_too_wide_is_refused():
    """A meter serial wider than its columns is refused on write, naming the field."""
    wide = ROUTES[0].model_copy(update={"meter_serial": "X" * 11})
    with pytest.raises(LayoutError, match="meter_serial"):
        sensus.write_routes([wide])


def test_neptune_routes_round_trip():
    """EZRoute route records keep route, walk sequence, dials, decimals, direction, limits and meter id."""
    routes = [r for r in ROUTES if r.dials <= 9]
    text = neptune.write_routes(routes, handheld_id="HH0001")
    assert all(len(line) == neptune.RECORD_LENGTH for line in text.split("\r\n") if line)
    back = neptune.read_routes(text, cycle=routes[0].cycle)
    fields = {
        "route_id",
        "sequence",
        "dials",
        "decimals",
        "read_direction",
        "high_limit",
        "low_limit",
        "meter_serial",
    }
    assert [r.model_dump(include=fields) for r in back] == [r.model_dump(include=fields) for r in routes]


def test_neptune_reads_round_trip_to_the_second():
    """EZRoute read records keep reading, skip and trouble codes and the read time (to the second)."""
    reads = [
        r.model_copy(update={"read_at": r.read_at.replace(microsecond=0)})
        for r in sample_reads("HH0001", ROUTES)
    ]
    text = neptune.write_reads(reads)
    back = neptune.read_reads(text, cycle=reads[0].cycle, reader_id=reads[0].reader_id)
    fields = {
        "device_id",
        "meter_serial",
        "reading",
        "read_at",
        "skip_code",
        "trouble_code",
        "account",
        "sequence",
    }
    assert [r.model_dump(include=fields) for r in back] == [r.model_dump(include=fields) for r in reads]


def test_neptune_override_reading_wins_and_mismatched_meter_is_noted():
    """The reading override replaces the reading, and a captured meter id that differs is kept in the note."""
    read = sample_reads("HH0001", ROUTES[:1])[0].model_copy(update={"reading": 100, "skip_code": None})
    line = neptune.write_reads([read]).rstrip("\r\n")
    line = line[:41] + "OTHERMETER   " + line[54:78] + "0000000555" + line[88:]
    back = neptune.read_reads(line, cycle="07", reader_id="R")[0]
    assert back.reading == 555 and "OTHERMETER" in back.note


@pytest.mark.parametrize(
    ("col", "value", "where"),
    [
        (27, "X", "column 27 (read_direction)"),
        (138, "ZZ", "columns 138-139 (skip_code)"),
        (109, "2026133", "columns 109-122"),
    ],
)
def test_neptune_bad_fields_name_their_columns(col, value, where):
    """Unknown direction, unknown code or an impossible date is reported with its columns."""
    read = sample_reads("HH0001", ROUTES[:1])[0]
    line = neptune.write_reads([read]).rstrip("\r\n")
    line = line[: col - 1] + value + line[col - 1 + len(value) :]
    reader = neptune.read_routes if col == 27 else neptune.read_reads
    with pytest.raises(LayoutError) as info:
        if reader is neptune.read_routes:
            neptune.read_routes(line, cycle="07")
        else:
            neptune.read_reads(line, cycle="07", reader_id="R")
    assert where in info.value.errors[0]
