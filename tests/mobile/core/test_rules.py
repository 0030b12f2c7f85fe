"""Pure rules of the field app: readings, meter tests, forms, projection (no screen, no store)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from contracts.codes import OrderType
from contracts.couch import MeterFacts
from contracts.forms import MeterTestFields, RereadFields
from mobile.core.demo import demo_orders
from mobile.core.detail import _meter_view
from mobile.core.forms import FormInvalid, MeterTestForm, Photo, RereadForm, ServiceForm, UnableForm
from mobile.core.geo import Projection, format_distance, haversine_m
from mobile.core.meter_test import NEW_METER_LIMITS, FlowPoint, accuracy_pct, evaluate, normalise_size
from mobile.core.reading import check_reading, expected_range, parse_reading

METER = MeterFacts.model_validate(
    {"meter_id": "M1", "dials": 4, "last_read": 1200, "expected_low": 1250, "expected_high": 1600}
)
PHOTO = Photo("register-1.png", b"\x89PNG", "image/png", dt.datetime(2026, 3, 10, tzinfo=dt.UTC))


def order_of(order_type: OrderType):  # type: ignore[no-untyped-def]
    """The first demo order of a type."""
    return next(o for o in demo_orders(14) if o.order_type is order_type)


@pytest.mark.parametrize(
    ("text", "dials", "value", "error"),
    [
        ("1234", 4, 1234.0, ""),
        ("0012", 4, 12.0, ""),
        ("12,345", 6, 12345.0, ""),
        ("12345", 4, None, "at most 4 digits"),
        ("12a4", 4, None, "digits only"),
        ("", 4, None, "Enter the reading"),
        ("-5", None, None, "digits only"),
        ("12.5", 4, None, "shows no decimals"),
    ],
)
def test_parse_reading_respects_dials(text: str, dials: int | None, value: float | None, error: str) -> None:
    """A reading is whole digits and never has more digits than the register has dials."""
    got, message = parse_reading(text, dials)
    assert got == value
    assert error in message


@pytest.mark.parametrize(
    ("text", "value", "error"),
    [
        ("1234.5", 1234.5, ""),
        ("01234.5", 1234.5, ""),
        ("1234", 1234.0, ""),
        (".5", 0.5, ""),
        ("1234.56", None, "1 decimal place"),
        ("123456.7", None, "at most 5 digits before the point"),
        ("12.3.4", None, "digits and one decimal point"),
    ],
)
def test_readings_are_typed_as_the_register_shows_them(text: str, value: float | None, error: str) -> None:
    """On a 6-dial register with 1 decimal the rep types 1234.5 for 01234.5, the value the server stores
    (before, only whole digits were accepted, so a tablet read was 10 times a hand-held's)."""
    got, message = parse_reading(text, 6, 1)
    assert got == value
    assert error in message


def test_last_reads_and_range_are_shown_in_the_units_typed() -> None:
    """The detail view shows last reads and the expected range with the register's decimals and unit,
    the same numbers a rep types."""
    meter = MeterFacts.model_validate(
        {
            "meter_id": "9",
            "dials": 6,
            "decimals": 1,
            "unit": "ccf",
            "expected_low": 1236.0,
            "expected_high": 1250.5,
            "last_reads": [{"value": 1234.5, "read_at": "2026-10-05T16:00:00Z"}],
        }
    )
    view = _meter_view(meter, ZoneInfo("America/Los_Angeles"))
    assert view.last_reads == ["1,234.5 ccf 2026-10-05"]
    assert view.expected == "1,236.0 - 1,250.5 ccf"
    assert check_reading("1240.2", "", meter).accepted
    assert "above the expected range" in check_reading("12402", "", meter).confirmation_error


def test_out_of_range_reading_needs_identical_reentry() -> None:
    """In range is accepted at once; out of range needs the same value typed again."""
    assert check_reading("1300", "", METER).accepted
    first = check_reading("1900", "", METER)
    assert not first.accepted and "above the expected range (1,250 - 1,600 gal)" in first.confirmation_error
    assert "differ" in check_reading("1900", "1090", METER).confirmation_error
    confirmed = check_reading("1900", "1900", METER)
    assert confirmed.accepted and confirmed.needs_confirmation
    assert "below" in check_reading("1000", "", METER).confirmation_error


def test_expected_range_falls_back_to_last_read() -> None:
    """Without a server range a read is expected at least at the last read."""
    meter = MeterFacts(meter_id="M2", last_read=500)
    assert expected_range(meter).label() == "at least 500 gal"
    assert expected_range(MeterFacts(meter_id="M3")).label() == "no expected range"


@pytest.mark.parametrize(
    ("size", "key"),
    [
        ("5/8x3/4", '5/8"'),
        ("3/4", '3/4"'),
        ("1", '1"'),
        ("1-1/2", '1 1/2"'),
        ('2"', '2"'),
        ("6", None),
        (None, None),
    ],
)
def test_meter_sizes_map_to_the_domain_table(size: str | None, key: str | None) -> None:
    """Nominal sizes as billing systems write them find their row of the test-flow table."""
    assert normalise_size(size) == key


def test_meter_test_limits_by_point() -> None:
    """90-101.5% at minimum flow, 98.5-101.5% elsewhere (in service); new meters 95% at minimum flow."""
    volumes = {FlowPoint.LOW: (9.1, 10.0), FlowPoint.INTERMEDIATE: (9.9, 10.0), FlowPoint.HIGH: (10.1, 10.0)}
    outcome = evaluate(volumes, "5/8x3/4")
    assert outcome.passed and outcome.recommendation == "keep"
    assert [p.flow_gpm for p in outcome.points] == [0.25, 2, 15]
    assert outcome.billing_accuracy_pct == pytest.approx(100.0)
    assert not evaluate(volumes, "5/8x3/4", NEW_METER_LIMITS).passed
    assert accuracy_pct(10.15, 10) == pytest.approx(101.5)
    with pytest.raises(ValueError, match="reference volume must be positive"):
        accuracy_pct(1, 0)


def test_meter_test_form_messages_and_payload() -> None:
    """Each missing volume is named; keeping a failed meter needs a note; the payload carries every point."""
    form = MeterTestForm(order=order_of(OrderType.METER_TEST))
    errors = form.errors()
    assert errors["meter_volume.low"] == "Enter the meter volume at low flow"
    form.meter_volume = {FlowPoint.LOW: "9.5", FlowPoint.INTERMEDIATE: "9.0", FlowPoint.HIGH: "10"}
    form.reference_volume = {FlowPoint.LOW: "10", FlowPoint.INTERMEDIATE: "10", FlowPoint.HIGH: "0"}
    assert "more than 0" in form.errors()["reference_volume.high"]
    form.reference_volume[FlowPoint.HIGH] = "10"
    form.recommendation = "keep"
    assert "explain" in form.errors()["notes"]
    form.notes = "Replacement on order; customer agreed"
    payload = form.payload()
    assert isinstance(payload.fields, MeterTestFields)
    assert payload.fields.passed is False and payload.fields.recommendation == "keep"
    assert [p.point for p in payload.fields.points] == ["low", "intermediate", "high"]


def test_reread_form_builds_reading_and_requires_photo() -> None:
    """A reread without a photo is refused with a message; with one it carries the reading."""
    order = order_of(OrderType.REREAD)
    low = order.meters[0].expected_low
    assert low is not None
    form = RereadForm(order=order, reading=str(int(low) + 1))
    with pytest.raises(FormInvalid) as caught:
        form.payload()
    assert caught.value.errors == {"photos": "Take a photo of the register"}
    form.photos.append(PHOTO)
    payload = form.payload()
    assert payload.readings[0][1] == int(low) + 1
    assert payload.fields == RereadFields(reading_confirmed_out_of_range=False)


def test_service_form_rules_per_type() -> None:
    """Shut-off: closed, seal, door hanger; turn-on left closed needs an explanation."""
    shut = ServiceForm(order=order_of(OrderType.SHUT_OFF_NONPAY))
    errors = shut.errors()
    assert set(errors) >= {"reading", "curb_stop_position", "seal_number", "door_hanger_left"}
    turn_on = ServiceForm(order=order_of(OrderType.TURN_ON), curb_stop_position="closed", reading="")
    turn_on.reading = str(int(turn_on.order.meters[0].expected_low or 0) + 5)
    assert "explain why" in turn_on.errors()["notes"]
    turn_on.notes = "Customer asked to wait for the plumber"
    assert turn_on.errors() == {}


def test_unable_form_needs_code_and_note() -> None:
    """The code must be one of UnableCode; the note at least five characters."""
    form = UnableForm(order=order_of(OrderType.REREAD), code="martians", notes="hm")
    assert set(form.errors()) == {"code", "notes"}
    form.code, form.notes = "locked_gate", "Gate locked, no answer"
    assert form.payload().unable_code == "locked_gate"


def test_projection_keeps_points_inside_and_aspect() -> None:
    """Every stop lands inside the drawing area; a degree of longitude is shortened by cos(latitude)."""
    points = [(45.0, -90.0), (45.1, -89.8), (44.95, -89.9)]
    projection = Projection.fit(points, 800, 600, margin_px=20)
    for lat, lon in points:
        x, y = projection.to_px(lat, lon)
        assert 19.9 <= x <= 780.1 and 19.9 <= y <= 580.1
    assert projection.lon_factor == pytest.approx(0.7071, abs=0.01)
    assert haversine_m(45, -90, 46, -90) == pytest.approx(111_195, rel=1e-3)
    assert (
        format_distance(950) == "950 m" and format_distance(2430) == "2.4 km" and format_distance(None) == ""
    )
