"""The tablet's payment-arrangement form: a plan the customer offers at the door of a shut-off, written as
an unable result coded `arrangement_offered` whose fields the server's check accepts; the unable form
refuses that code (it has its own form)."""

from __future__ import annotations

import datetime as dt

from contracts.codes import OrderType, UnableCode
from contracts.forms import FormKind, PaymentArrangementFields, check_result
from mobile.core.forms import UNABLE_CHOICES, PaymentArrangementForm, UnableForm
from tests.mobile.core.test_forms_contract import order_of, written


def plan(order_type: OrderType = OrderType.SHUT_OFF_NONPAY) -> PaymentArrangementForm:
    """$50 down, then 4 x $25.50 from 15 Dec."""
    return PaymentArrangementForm(
        order=order_of(order_type), down_payment="50", instalment="25.50", instalments="4",
        first_due_date="2026-12-15", customer_name="Pat Doe",
    )  # fmt: skip


def test_the_plan_is_written_in_cents_and_the_server_accepts_it() -> None:
    """Dollars typed become integer cents; the result is unable / arrangement_offered with the typed form."""
    order = order_of(OrderType.SHUT_OFF_NONPAY)
    result = written(plan(), order)
    assert result.outcome == "unable_to_complete" and result.unable_code is UnableCode.ARRANGEMENT_OFFERED
    fields = check_result(order_type=OrderType.SHUT_OFF_NONPAY, result=result)
    assert isinstance(fields, PaymentArrangementFields) and fields.form is FormKind.PAYMENT_ARRANGEMENT
    assert (fields.down_payment_cents, fields.instalment_cents, fields.instalments) == (5000, 2550, 4)
    assert fields.total_cents == 15200 and fields.last_due_date == dt.date(2027, 3, 15)


def test_each_bad_entry_is_named() -> None:
    """Amounts that are not dollars, no instalments, a bad date and no name are each named; a meter test
    order cannot take a plan."""
    form = PaymentArrangementForm(order=order_of(OrderType.METER_TEST), down_payment="fifty", instalment="0",
                                  instalments="30", first_due_date="15/12/2026")  # fmt: skip
    assert set(form.errors()) == {
        "order", "down_payment", "instalment", "instalments", "first_due_date", "customer_name",
    }  # fmt: skip
    assert plan().errors() == {}


def test_the_unable_form_refuses_the_arrangement_code() -> None:
    """The unable screen does not offer `arrangement_offered`, and its form refuses it if given."""
    assert UnableCode.ARRANGEMENT_OFFERED not in UNABLE_CHOICES
    form = UnableForm(
        order=order_of(OrderType.SHUT_OFF_NONPAY), code="arrangement_offered", notes="offered plan"
    )
    assert "payment-arrangement form" in form.errors()["code"]


def test_a_leak_seen_repaired_travels_as_the_proof_a_leak_credit_needs() -> None:
    """The investigation form's 'leak repaired' box is written only with a leak found."""
    from contracts.forms import InvestigationFields
    from mobile.core.forms import InvestigationForm
    from tests.mobile.core.test_forms_contract import PHOTO

    order = order_of(OrderType.LEAK_INVESTIGATION)
    form = InvestigationForm(order=order, leak_found=True, leak_location="toilet", leak_repaired=True,
                             customer_informed=True, findings="flapper replaced while there", photos=[PHOTO])  # fmt: skip
    assert InvestigationFields.model_validate(written(form, order).fields).leak_repaired is True
    form.leak_found = False
    assert InvestigationFields.model_validate(written(form, order).fields).leak_repaired is False
