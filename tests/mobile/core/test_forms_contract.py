"""The tablet's completion forms build the typed fields of contracts.forms, and the server's check of a
result (`contracts.forms.check_result`) accepts what each form writes for its order types."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts.codes import OrderType
from contracts.couch import GeoPoint, OrderDoc, ResultDoc
from contracts.forms import FORM_FOR_TYPE, FormKind, MeterTestFields, ServiceFields, check_result
from mobile.core.demo import demo_orders
from mobile.core.field import FieldWork
from mobile.core.forms import (
    CompletionForm,
    InvestigationForm,
    MeterTestForm,
    Photo,
    RereadForm,
    ServiceForm,
    UnableForm,
)
from mobile.core.meter_test import FlowPoint
from mobile.core.orders import FLOW_FOR_TYPE
from mobile.platform.gps import FixedGps
from mobile.sync import Store

PHOTO = Photo("p.png", b"\x89PNG", "image/png", dt.datetime(2026, 3, 10, tzinfo=dt.UTC))
NOW = dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)


def order_of(order_type: OrderType) -> OrderDoc:
    """A demo order of this type (one of the same form re-typed when the demo has none)."""
    orders = demo_orders(14)
    same = next((o for o in orders if o.order_type is order_type), None)
    if same is not None:
        return same
    like = next(o for o in orders if FORM_FOR_TYPE[o.order_type] is FORM_FOR_TYPE[order_type])
    return like.model_copy(update={"order_type": order_type})


def reading_for(order: OrderDoc) -> str:
    """A reading inside the order's expected range."""
    return str(int(order.meters[0].expected_low or 0) + 1)


def filled(order_type: OrderType) -> CompletionForm:
    """A completed form, as a rep fills it, for an order of `order_type`."""
    order = order_of(order_type)
    kind = FORM_FOR_TYPE[order_type]
    if kind is FormKind.REREAD:
        return RereadForm(order=order, reading=reading_for(order), photos=[PHOTO])
    if kind is FormKind.SERVICE:
        closed = order_type in (OrderType.TURN_OFF, OrderType.SHUT_OFF_NONPAY)
        return ServiceForm(
            order=order,
            reading=reading_for(order),
            curb_stop_position="closed" if closed else "open",
            seal_number="s-1042" if order_type is OrderType.SHUT_OFF_NONPAY else "",
            door_hanger_left=True,
        )
    if kind is FormKind.METER_TEST:
        form = MeterTestForm(order=order)
        form.meter_volume = {FlowPoint.LOW: "9.5", FlowPoint.INTERMEDIATE: "9.9", FlowPoint.HIGH: "10"}
        form.reference_volume = {p: "10" for p in FlowPoint}
        return form
    return InvestigationForm(
        order=order,
        findings="toilet flapper leaking",
        leak_found=True,
        leak_location="toilet",
        photos=[PHOTO],
    )


def written(form: CompletionForm, order: OrderDoc) -> ResultDoc:
    """The result document FieldWork writes for a form."""
    work = FieldWork(
        Store(),
        csfr_id="T05",
        device_id="tab",
        clock=lambda: NOW,
        locator=FixedGps(GeoPoint(lat=38.5, lon=-121.4)),
    )
    return work.complete(order, form)


@pytest.mark.parametrize("order_type", list(OrderType))
def test_each_form_writes_what_the_server_accepts(order_type: OrderType) -> None:
    """For every order type, the form the tablet uses writes fields the server's check types as that
    type's form (one table, contracts.forms.FORM_FOR_TYPE, for both)."""
    form = filled(order_type)
    result = written(form, order_of(order_type))
    typed = check_result(order_type=order_type, result=result)
    assert typed.form is FORM_FOR_TYPE[order_type]
    assert FLOW_FOR_TYPE[order_type].value == FORM_FOR_TYPE[order_type].value
    assert typed.gps == GeoPoint(lat=38.5, lon=-121.4)


def test_meter_test_and_shutoff_fields_are_typed_on_the_wire() -> None:
    """A meter test writes three typed points and the verdict; a shut-off its upper-cased seal number."""
    test = written(filled(OrderType.METER_TEST), order_of(OrderType.METER_TEST))
    fields = MeterTestFields.model_validate(test.fields)
    assert [p.point for p in fields.points] == ["low", "intermediate", "high"] and fields.passed
    assert fields.point("low").accuracy_pct == pytest.approx(95.0)
    cut = written(filled(OrderType.SHUT_OFF_NONPAY), order_of(OrderType.SHUT_OFF_NONPAY))
    service = ServiceFields.model_validate(cut.fields)
    assert service.seal_number == "S-1042" and service.curb_stop_position == "closed"


def test_unable_form_writes_the_unable_form() -> None:
    """Unable to complete carries the code on the result and the (empty) unable form in fields."""
    order = order_of(OrderType.REREAD)
    result = written(UnableForm(order=order, code="dog", notes="loose dog in yard"), order)
    assert check_result(order_type=OrderType.REREAD, result=result).form is FormKind.UNABLE
    assert result.unable_code == "dog"


def test_seal_numbers_follow_the_contract_pattern() -> None:
    """The tablet refuses a seal number the contract would refuse (non-ASCII letters, over 32)."""
    form = filled(OrderType.SHUT_OFF_NONPAY)
    assert isinstance(form, ServiceForm)
    form.seal_number = "sé-1"
    assert "letters, digits and dashes" in form.errors()["seal_number"]
    form.seal_number = "S" * 33
    assert "seal_number" in form.errors()
