"""The CouchDB document contracts: ids, who writes what, validation of outcomes, round trips."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from contracts.codes import OrderStatus, OrderType, Priority, UnableCode
from contracts.couch import (
    EventDoc,
    LastRead,
    MeterFacts,
    OrderDoc,
    ResultDoc,
    TimeWindow,
    order_doc_id,
    tablet_writes,
)

AT = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def make_order() -> OrderDoc:
    """A small dispatched order."""
    return OrderDoc(
        order_id="o-17",
        order_type=OrderType.REREAD,
        status=OrderStatus.DISPATCHED,
        priority=Priority.REREAD,
        csfr_id="csfr-7",
        window=TimeWindow(start_at=AT, end_at=AT + dt.timedelta(hours=2)),
        hazards=["dog"],
        version=3,
    )


def test_order_round_trips_through_couch_json():
    """An order becomes `order:<id>` JSON and parses back equal, ignoring CouchDB's own fields."""
    order = make_order()
    doc = order.to_couch()
    assert doc["_id"] == order_doc_id("o-17") == "order:o-17"
    assert OrderDoc.from_couch({**doc, "_rev": "1-abc", "_conflicts": ["1-def"]}) == order


def test_result_requires_code_exactly_when_unable():
    """unable_to_complete needs an UnableCode; completed must not carry one."""
    base = {
        "result_id": "u1",
        "order_id": "o-17",
        "csfr_id": "csfr-7",
        "device_id": "t-7",
        "completed_at": AT,
    }
    with pytest.raises(ValidationError, match="unable_code is required"):
        ResultDoc(outcome="unable_to_complete", **base)
    with pytest.raises(ValidationError, match="must be empty"):
        ResultDoc(outcome="completed", unable_code=UnableCode.DOG, **base)
    result = ResultDoc(outcome="unable_to_complete", unable_code=UnableCode.LOCKED_GATE, **base)
    assert result.doc_id() == "result:o-17:u1" and tablet_writes(result.doc_id())


def test_event_ids_and_writers():
    """Events are `event:<uuid>` and tablet-written; orders and design documents are not."""
    event = EventDoc(event_id="e1", order_id="o-17", kind="on_site", at=AT, csfr_id="csfr-7", device_id="t-7")
    assert event.to_couch()["_id"] == "event:e1" and tablet_writes("event:e1")
    assert not tablet_writes("order:o-17") and not tablet_writes("_design/rules")


def test_time_window_must_be_ordered():
    """A window that ends before it starts is rejected with both times in the message."""
    with pytest.raises(ValidationError, match="before it starts"):
        TimeWindow(start_at=AT, end_at=AT - dt.timedelta(minutes=1))


def test_meter_facts_declare_limits_decimals_and_last_reads():
    """What crosses to the tablet about a meter is typed: limits, decimals, multiplier and last reads
    parse into fields (they travelled untyped through extra="allow" before); unknown keys are not kept."""
    facts = MeterFacts.model_validate(
        {
            "meter_id": "7",
            "dials": 6,
            "decimals": 1,
            "multiplier": 10,
            "unit": "cf",
            "expected_low": 1234.5,
            "expected_high": 1300.0,
            "last_reads": [{"value": 1230.1, "read_at": "2026-10-05T16:00:00Z"}],
            "surprise": "dropped",
        }
    )
    assert (facts.decimals, facts.multiplier, facts.expected_low, facts.expected_high) == (
        1,
        10,
        1234.5,
        1300.0,
    )
    assert facts.last_reads == [LastRead(value=1230.1, read_at=dt.datetime(2026, 10, 5, 16, tzinfo=dt.UTC))]
    assert not facts.model_extra
    round_trip = MeterFacts.model_validate(facts.model_dump(mode="json"))
    assert round_trip == facts


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"dials": 4, "decimals": 4}, "must be fewer than dials"),
        ({"expected_low": 20, "expected_high": 10}, "above expected_high"),
        ({"expected_low": -1}, "greater than or equal to 0"),
    ],
)
def test_meter_facts_refuse_inconsistent_registers_and_limits(update, message):
    """A register with no whole dials, or limits the wrong way round, are refused with the reason."""
    with pytest.raises(ValidationError, match=message):
        MeterFacts.model_validate({"meter_id": "7", **update})
