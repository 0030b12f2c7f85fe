"""contracts.forms: each completion form's result fields, typed, and the check a result must pass."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contracts.codes import OrderType
from contracts.couch import ResultDoc
from contracts.forms import (
    FORM_FOR_TYPE,
    FormKind,
    FormMismatch,
    InvestigationFields,
    MeterTestFields,
    check_result,
    form_for,
)

NOW = dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)


def meter_test_fields() -> dict[str, Any]:
    """A passed 5/8" test as the tablet writes it."""
    points = [
        ("low", 0.25, 95.0, 90.0),
        ("intermediate", 2.0, 99.0, 98.5),
        ("high", 15.0, 100.0, 98.5),
    ]
    return {
        "form": "meter_test",
        "meter_id": "12",
        "meter_size": "5/8",
        "points": [
            {
                "point": name,
                "flow_gpm": gpm,
                "meter_volume": acc / 10,
                "reference_volume": 10.0,
                "accuracy_pct": acc,
                "min_pct": low,
                "max_pct": 101.5,
                "passed": True,
            }
            for name, gpm, acc, low in points
        ],
        "passed": True,
        "billing_accuracy_pct": 99.5,
        "recommendation": "keep",
        "gps": {"lat": 38.5, "lon": -121.4},
    }


def result(fields: dict[str, Any], *, outcome: str = "completed", readings: int = 0, **kw: Any) -> ResultDoc:
    """A result document with these fields."""
    return ResultDoc(
        result_id="r1",
        order_id="1",
        outcome=outcome,  # type: ignore[arg-type]
        readings=[{"meter_id": "12", "value": 1234.0, "read_at": NOW}] * readings,  # type: ignore[list-item]
        fields=fields,
        csfr_id="T05",
        device_id="tab",
        completed_at=NOW,
        **kw,
    )


def mismatch(order_type: OrderType, doc: ResultDoc) -> FormMismatch:
    with pytest.raises(FormMismatch) as caught:
        check_result(order_type=order_type, result=doc)
    return caught.value


def test_every_order_type_has_a_form() -> None:
    """Each order type names its completion form; an unable-to-complete result carries the unable form."""
    assert set(FORM_FOR_TYPE) == set(OrderType)
    assert form_for(OrderType.METER_TEST, "unable_to_complete") is FormKind.UNABLE


def test_a_meter_test_result_is_typed() -> None:
    """A complete meter test parses into three typed points and the verdict."""
    typed = check_result(order_type=OrderType.METER_TEST, result=result(meter_test_fields()))
    assert isinstance(typed, MeterTestFields)
    assert typed.point("intermediate").accuracy_pct == 99.0 and typed.passed and typed.gps is not None


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda f: f["points"][1].pop("meter_volume"), "points[1].meter_volume", "missing"),
        (lambda f: f["points"].pop(2), "points", "at least 3"),
        (
            lambda f: f["points"][0].update(point="medium"),
            "points[0].point",
            "'low', 'intermediate' or 'high'",
        ),
        (lambda f: f["points"][2].update(point="low"), "points", "missing: high"),
        (lambda f: f.update(passed=False), "fields", "passed must be true exactly when every point passed"),
        (lambda f: f.pop("passed"), "passed", "missing"),
        (lambda f: f.update(accuracy=99), "accuracy", "not a field of the meter_test form"),
        (lambda f: f["points"][0].update(passed=False), "points[0]", "passed is False but 95% is inside"),
        (lambda f: f.update(form="reread"), "form", "needs the meter_test form"),
    ],
)
def test_a_meter_test_that_does_not_fit_names_the_field(edit: Any, field: str, message: str) -> None:
    """A missing flow-point volume, a missing point, an unknown key, a verdict that contradicts its numbers,
    or another form: each is refused naming the field."""
    fields = meter_test_fields()
    edit(fields)
    caught = mismatch(OrderType.METER_TEST, result(fields))
    assert caught.field == field and message in caught.message
    assert str(caught).startswith(f"meter_test form: {field}: ")


def test_service_changes_need_position_seal_and_reading() -> None:
    """A shut-off needs the reading, the curb stop closed (or a note) and the seal number; a notice delivery
    needs none of them."""
    cut = {"form": "service", "curb_stop_position": "closed", "seal_number": "S-1", "door_hanger_left": True}
    assert check_result(order_type=OrderType.SHUT_OFF_NONPAY, result=result(cut, readings=1))
    assert mismatch(OrderType.SHUT_OFF_NONPAY, result(cut)).field == "readings"
    no_seal = {k: v for k, v in cut.items() if k != "seal_number"}
    assert mismatch(OrderType.SHUT_OFF_NONPAY, result(no_seal, readings=1)).field == "seal_number"
    opened = cut | {"curb_stop_position": "open"}
    assert mismatch(OrderType.SHUT_OFF_NONPAY, result(opened, readings=1)).field == "notes"
    assert check_result(
        order_type=OrderType.SHUT_OFF_NONPAY, result=result(opened, readings=1, notes="medical")
    )
    assert mismatch(OrderType.TURN_ON, result({"form": "service"}, readings=1)).field == "curb_stop_position"
    assert (
        mismatch(OrderType.TURN_ON, result(cut | {"seal_number": "s 1"}, readings=1)).field == "seal_number"
    )
    assert check_result(order_type=OrderType.NOTICE_DELIVERY, result=result({"form": "service"}))


def test_reread_investigation_and_unable_forms() -> None:
    """A reread needs its reading; a leak needs where; an unable result carries the unable form."""
    assert mismatch(OrderType.REREAD, result({"form": "reread"})).field == "readings"
    assert (
        check_result(order_type=OrderType.ZERO_USE_CHECK, result=result({}, readings=1)).form
        is FormKind.REREAD
    )
    leak = {
        "form": "investigation",
        "leak_found": True,
        "customer_informed": True,
        "findings": "running toilet",
    }
    caught = mismatch(OrderType.LEAK_INVESTIGATION, result(leak))
    assert "leak_location is required" in caught.message
    typed = check_result(
        order_type=OrderType.LEAK_INVESTIGATION, result=result(leak | {"leak_location": "toilet"})
    )
    assert isinstance(typed, InvestigationFields) and typed.leak_location == "toilet"
    unable = result({}, outcome="unable_to_complete", unable_code="dog")
    assert check_result(order_type=OrderType.METER_TEST, result=unable).form is FormKind.UNABLE
    extra = result({"register_photo": True}, outcome="unable_to_complete", unable_code="dog")
    assert mismatch(OrderType.METER_TEST, extra).field == "register_photo"
