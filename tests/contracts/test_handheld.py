"""Hand-held route and read records: validation, idempotency keys, JSON Lines batches."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from contracts.handheld import (
    HandheldUpload,
    ReadRecord,
    RecordLineError,
    RouteRecord,
    decode_reads,
    decode_routes,
    encode_lines,
    read_idempotency_key,
)
from device_bridge.sample import sample_reads, sample_routes

ROUTE = sample_routes(1)[0]
READ = sample_reads("HH1", [ROUTE])[0]


def test_batches_round_trip_through_json_lines():
    """Routes and reads encoded as JSON Lines decode to equal records."""
    routes = sample_routes(30)
    reads = sample_reads("HH1", routes)
    assert decode_routes(encode_lines(routes)) == routes
    assert decode_reads(encode_lines(reads)) == reads


def test_idempotency_key_is_per_device_meter_register_and_time():
    """The key changes with device, meter, register or time, and not with the reading."""
    base = READ.idempotency_key
    assert READ.model_copy(update={"reading": 1}).idempotency_key == base
    assert read_idempotency_key("HH2", READ.meter_serial, 1, READ.read_at) != base
    assert read_idempotency_key("HH1", READ.meter_serial, 2, READ.read_at) != base
    assert (
        read_idempotency_key("HH1", READ.meter_serial, 1, READ.read_at + dt.timedelta(microseconds=1)) != base
    )


def test_same_instant_in_another_zone_has_the_same_key():
    """read_at is normalised to UTC, so the same instant written with an offset gives the same key."""
    shifted = READ.read_at.astimezone(dt.timezone(dt.timedelta(hours=-7)))
    again = ReadRecord.model_validate({**READ.model_dump(exclude={"idempotency_key"}), "read_at": shifted})
    assert again.idempotency_key == READ.idempotency_key


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"decimals": 6, "dials": 6}, "fewer than dials"),
        ({"previous_read": 10**6, "dials": 6}, "does not fit"),
        ({"low_limit": 9, "high_limit": 3}, "above high_limit"),
        ({"meter_serial": ""}, "at least 1"),
    ],
)
def test_route_record_rejects_impossible_registers(update, message):
    """A route record whose readings or limits cannot be on the register is refused, saying why."""
    data = {**ROUTE.model_dump(), "previous_read": 5, "low_limit": 1, "high_limit": 9, **update}
    with pytest.raises(ValidationError, match=message):
        RouteRecord.model_validate(data)


def test_read_needs_a_reading_or_a_skip_and_an_aware_time():
    """No reading and no skip code is refused; so is a naive read time."""
    with pytest.raises(ValidationError, match="reading or a skip_code"):
        ReadRecord.model_validate({**READ.model_dump(), "reading": None, "skip_code": None})
    with pytest.raises(ValidationError, match="time zone"):
        ReadRecord.model_validate({**READ.model_dump(), "read_at": dt.datetime(2026, 1, 1)})


def test_bad_lines_are_all_named_and_nothing_returned():
    """A batch with bad lines raises once, naming every bad line number."""
    good = encode_lines([ROUTE])
    batch = good + b'{"route_id": "R1"}\n' + good + b"not json\n"
    with pytest.raises(RecordLineError) as info:
        decode_routes(batch)
    assert [e.split(":")[0] for e in info.value.errors] == ["line 2", "line 4"]


def test_upload_body_rejects_reads_from_another_device():
    """The upload body's reads must all come from the device named in it."""
    with pytest.raises(ValidationError, match="is not 'HH9'"):
        HandheldUpload(device_id="HH9", reads=[READ])


def test_upload_body_accepts_the_derived_key_it_serialises():
    """A body dumped to JSON (with idempotency keys) validates back into the same upload."""
    body = HandheldUpload(device_id="HH1", reads=[READ])
    assert HandheldUpload.model_validate_json(body.model_dump_json()) == body
