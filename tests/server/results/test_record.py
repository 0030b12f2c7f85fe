"""Every field outcome becomes one typed result linked to its order, account, service point and meter,
with one review item recommending an adjustment, nothing, back to dispatch, or the payment plan."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.handheld import ReadRecord
from server.handhelds import service as handhelds
from server.meters.models import MeterRead
from server.results import service as results
from server.results.models import FieldOutcome, ReviewItem
from tests.contracts.test_forms import meter_test_fields
from tests.server.results.conftest import reading, result_doc


def failed_meter_test() -> dict[str, Any]:
    """A 5/8" meter running slow: 95% at every point (the intermediate and high points fail)."""
    fields = meter_test_fields()
    for point in fields["points"]:
        point.update(meter_volume=9.5, accuracy_pct=95.0, passed=point["point"] == "low")
    fields.update(passed=False, billing_accuracy_pct=95.0, recommendation="replace")
    return fields


ARRANGEMENT = {
    "form": "payment_arrangement",
    "down_payment_cents": 5000,
    "instalment_cents": 2500,
    "instalments": 4,
    "first_due_date": "2026-12-15",
    "customer_name": "Pat Doe",
}
INVESTIGATION = {"form": "investigation", "customer_informed": True, "findings": "checked the yard"}

# order type, outcome, unable code, fields, readings -> kind, action, adjustment kind, code, next step
CASES = [
    ("turn_on", "completed", None, {"form": "service", "curb_stop_position": "open"}, [1100.0],
     "service_change", "none", "", "", ""),
    ("shut_off_nonpay", "completed", None,
     {"form": "service", "curb_stop_position": "closed", "seal_number": "SEAL-7"}, [1100.0],
     "service_change", "none", "", "", ""),
    ("turn_off", "completed", None,
     {"form": "service", "curb_stop_position": "open"}, [1100.0],
     "service_change", "dispatch", "", "curb_stop_position", "escalate"),
    ("meter_test", "completed", None, meter_test_fields(), [1100.0], "meter_test", "none", "", "", ""),
    ("leak_investigation", "completed", None, {**INVESTIGATION, "leak_found": False}, [],
     "investigation", "none", "", "", ""),
    ("theft_investigation", "completed", None, {**INVESTIGATION, "leak_found": False}, [],
     "theft_tamper", "dispatch", "", "tamper", "escalate"),
    ("reread", "unable_to_complete", "dog", {"form": "unable"}, [],
     "unable", "dispatch", "", "dog", "revisit_with_appointment"),
    ("turn_on", "unable_to_complete", "vegetation", {"form": "unable"}, [],
     "unable", "dispatch", "", "vegetation", "notify_customer"),
    ("shut_off_nonpay", "unable_to_complete", "tamper_cut_lock", {"form": "unable"}, [],
     "theft_tamper", "dispatch", "", "tamper_cut_lock", "escalate"),
    ("shut_off_nonpay", "unable_to_complete", "paid_on_site", {"form": "unable"}, [],
     "unable", "none", "", "paid_on_site", "none"),
    ("shut_off_nonpay", "unable_to_complete", "arrangement_offered", ARRANGEMENT, [],
     "payment_arrangement", "arrangement", "", "arrangement_offered", ""),
    ("reread", "completed", None, {"form": "reread"}, [1100.0], "reread", "none", "", "", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("order_type", "outcome", "code", "fields", "values", "kind", "action", "adj_kind", "rec_code", "step"),
    CASES,
    ids=[f"{c[0]}-{c[2] or c[1]}-{c[6]}" for c in CASES],
)
def test_each_tablet_outcome_becomes_one_typed_result_and_recommendation(
    db_session, field_order, tech, ingest, order_type, outcome, code, fields, values, kind, action, adj_kind,
    rec_code, step,
):  # fmt: skip
    """The applied result is recorded once, typed (the form as its model), linked to the order's account,
    premise and meter, with the review item the rules give its kind."""
    order = field_order(order_type)
    doc = result_doc(order, tech, outcome, unable_code=code, fields=fields,
                     readings=[reading(order, v) for v in values], notes="left it open by mistake")  # fmt: skip
    line, result, item = ingest(doc)
    assert line.startswith(f"order {order.id}"), line
    assert result is not None and item is not None
    assert (result.kind, result.order_id, result.account_id, result.meter_id) == (
        kind, order.id, order.account_id, order.meter_id,
    )  # fmt: skip
    assert result.service_point_id == order.service_point_id and result.technician_id == tech.id
    assert result.data["form"]["form"] == fields["form"]
    assert len(result.read_ids) == len(values)
    assert (item.action, item.adjustment_kind, item.code, item.next_step) == (
        action,
        adj_kind,
        rec_code,
        step,
    )
    assert item.status == "open" and item.summary
    assert (
        db_session.scalar(
            select(func.count()).select_from(FieldOutcome).where(FieldOutcome.order_id == order.id)
        )
        == 1
    )


def test_a_field_payment_plan_is_a_typed_form_only_on_debt_orders(field_order, tech, ingest):
    """The payment-arrangement form on a meter test is kept for review naming unable_code (no result);
    one missing its instalment amount names that field."""
    line, result, _ = ingest(result_doc(field_order("meter_test"), tech, "unable_to_complete",
                                        unable_code="arrangement_offered", fields=ARRANGEMENT))  # fmt: skip
    assert line.startswith("kept for review: payment_arrangement form: unable_code:") and result is None
    bad = {k: v for k, v in ARRANGEMENT.items() if k != "instalment_cents"}
    line, result, _ = ingest(result_doc(field_order("shut_off_nonpay"), tech, "unable_to_complete",
                                        unable_code="arrangement_offered", fields=bad))  # fmt: skip
    assert line == "kept for review: payment_arrangement form: instalment_cents: missing" and result is None


def test_recording_the_same_document_twice_gives_one_result(db_session, field_order, tech, ingest):
    """record_from_tablet is idempotent by document id: the second call returns the first result."""
    order = field_order("reread")
    doc = result_doc(order, tech, fields={"form": "reread"}, readings=[reading(order, 1100.0)])
    _, first, _ = ingest(doc)
    from contracts.couch import ResultDoc
    from contracts.forms import RereadFields
    from server.meters.intake import IntakeResult

    again = results.record_from_tablet(
        db_session=db_session, doc_id=doc["_id"], doc=doc, result=ResultDoc.from_couch(doc), order=order,
        fields=RereadFields(), intake=IntakeResult(), database="csfr-x", technician_id=tech.id,
    )  # fmt: skip
    assert again.id == first.id
    assert (
        db_session.scalar(
            select(func.count()).select_from(ReviewItem).where(ReviewItem.result_id == first.id)
        )
        == 1
    )


def _question(db_session, order_factory, *, value: float = 2000.0):
    """A read of `value` on 1 Nov 2026 in question, and the reread order sent to check it."""
    order = order_factory("reread", key="placeholder")
    read = MeterRead(meter_id=order.meter_id, read_at=dt.datetime(2026, 11, 1, 17, tzinfo=dt.UTC),
                     reading=value, source="cis")  # fmt: skip
    db_session.add(read)
    db_session.flush()
    order.idempotency_key = f"reread:read:{read.id}"
    db_session.flush()
    return order, read


def test_a_reread_that_confirms_the_read_recommends_nothing(db_session, field_order, tech, ingest):
    """The reread's reading follows on from the read in question: nothing to adjust, the bill stands."""
    order, _ = _question(db_session, field_order, value=1100.0)
    _, result, item = ingest(result_doc(order, tech, fields={"form": "reread"},
                                        readings=[reading(order, 1101.0, "2026-11-02T17:00:00Z")]))  # fmt: skip
    assert result.kind == "reread" and result.data["reads"]["confirmed_read_ids"]
    assert item.action == "none" and "confirms" in item.summary


def test_a_reread_that_corrects_a_billed_read_recommends_the_rerated_credit(
    db_session, field_order, tech, ingest, make_bill
):
    """The read in question (2,000 gal, billed as 1,000 gal of use) is corrected to 1,500: the bill that
    used it is re-rated through the adjustments calculator, a credit with its working."""
    order, read = _question(db_session, field_order)
    from server.accounts.models import Account
    from server.meters.models import Meter

    account, meter = db_session.get(Account, order.account_id), db_session.get(Meter, order.meter_id)
    make_bill(account, meter, start=dt.date(2026, 10, 1), end=dt.date(2026, 11, 1), start_reading=1000.0,
              end_reading=2000.0, lines={"fixed": 1850, "tier_1": 533})  # fmt: skip
    _, result, item = ingest(result_doc(order, tech, fields={"form": "reread"},
                                        readings=[reading(order, 1500.0, "2026-11-02T17:00:00Z")]))  # fmt: skip
    assert result.data["reads"]["corrected_read_ids"] == [read.id]
    assert (item.action, item.adjustment_kind) == ("adjust", "reread_correction"), item.summary
    assert item.amount_cents is not None and item.amount_cents < 0
    assert item.working["steps"] and item.working["amount_cents"] == item.amount_cents


def test_a_slow_meter_recommends_the_back_bill_from_the_calculator(
    db_session, field_order, tech, ingest, make_bill
):
    """A meter testing 95% (slow) with three bills on file: a meter-test back-bill, positive, with working."""
    order = field_order("meter_test")
    from server.accounts.models import Account
    from server.meters.models import Meter

    account, meter = db_session.get(Account, order.account_id), db_session.get(Meter, order.meter_id)
    meter.last_test_date = dt.date(2024, 12, 1)
    for month in (9, 10, 11):
        make_bill(account, meter, start=dt.date(2026, month - 1, 1), end=dt.date(2026, month, 1),
                  start_reading=1000.0 * month, end_reading=1000.0 * month + 8000,
                  lines={"fixed": 1850, "tier_1": 2000})  # fmt: skip
    _, result, item = ingest(
        result_doc(order, tech, fields=failed_meter_test(), readings=[reading(order, 90000.0)])
    )
    assert result.kind == "meter_test"
    assert (item.action, item.adjustment_kind) == ("adjust", "meter_test"), item.summary
    assert item.amount_cents is not None and item.amount_cents > 0
    assert item.working["kind"] == "meter_test"


def test_a_leak_without_proof_of_repair_names_why_there_is_no_credit(
    db_session, field_order, tech, ingest, make_bill
):
    """A leak found but not seen repaired: the review item names the leak credit and says why none is due."""
    order = field_order("leak_investigation")
    from server.accounts.models import Account
    from server.meters.models import Meter

    account, meter = db_session.get(Account, order.account_id), db_session.get(Meter, order.meter_id)
    make_bill(account, meter, start=dt.date(2026, 10, 1), end=dt.date(2026, 11, 1), start_reading=1000.0,
              end_reading=20000.0, lines={"fixed": 1850, "tier_1": 9000})  # fmt: skip
    fields = {**INVESTIGATION, "leak_found": True, "leak_location": "service line under the drive"}
    _, result, item = ingest(result_doc(order, tech, fields=fields))
    assert (
        result.kind == "investigation"
        and result.data["form"]["leak_location"] == "service line under the drive"
    )
    assert item.adjustment_kind == "leak_credit" and item.action == "none"
    assert "no adjustment" in item.summary


def _record(serial: str, seq: int, **kw: Any) -> ReadRecord:
    return ReadRecord(
        device_id="HH-1", reader_id="R1", route_id="B01", cycle="1", sequence=seq, account="A1",
        service_point_id="SP1", meter_serial=serial, read_at=dt.datetime(2026, 12, 2, 16, seq, tzinfo=dt.UTC), **kw,
    )  # fmt: skip


def test_hand_held_reads_and_skips_become_results_once(db_session, make_account, make_meter):
    """An upload of a plain read, a tamper-flagged read and a dog skip: three typed results (read, tamper,
    skip); the plain read's item is closed (nothing to review), the tamper escalates, the skip revisits
    with an appointment. The same upload again adds nothing."""
    meters = []
    for _ in range(3):
        account = make_account()
        meter = make_meter(service_point_id=account.service_point_id, dials=6, unit="gal")
        db_session.add(MeterRead(meter_id=meter.id, read_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
                                 reading=1000.0, source="cis"))  # fmt: skip
        meters.append(meter)
    handhelds.register_device(db_session=db_session, device_id="HH-1", name="hh", actor="test")
    reads = [
        _record(meters[0].serial, 1, reading=1010),
        _record(meters[1].serial, 2, reading=1010, tamper=True),
        _record(meters[2].serial, 3, skip_code="dog"),
    ]
    handhelds.ingest_upload(
        db_session=db_session, device_id="HH-1", reads=reads, batch_key=None, station="dock"
    )
    made = db_session.scalars(
        select(FieldOutcome).where(FieldOutcome.source == "handheld").order_by(FieldOutcome.id)
    ).all()
    assert [(r.kind, r.meter_id) for r in made] == [
        ("read", meters[0].id), ("theft_tamper", meters[1].id), ("skip", meters[2].id),
    ]  # fmt: skip
    assert made[0].account_id is not None and made[0].read_ids
    items = {r.kind: db_session.scalar(select(ReviewItem).where(ReviewItem.result_id == r.id)) for r in made}
    assert (items["read"].action, items["read"].status) == ("none", "auto_closed")
    assert (items["theft_tamper"].action, items["theft_tamper"].next_step) == ("dispatch", "escalate")
    assert (items["skip"].action, items["skip"].code, items["skip"].next_step) == (
        "dispatch", "dog", "revisit_with_appointment",
    )  # fmt: skip
    handhelds.ingest_upload(
        db_session=db_session, device_id="HH-1", reads=reads, batch_key=None, station="dock"
    )
    assert (
        db_session.scalar(
            select(func.count()).select_from(FieldOutcome).where(FieldOutcome.source == "handheld")
        )
        == 3
    )


def test_sending_a_hand_held_finding_to_dispatch_creates_the_visit(db_session, make_account, make_meter):
    """A tamper flag on a hand-held read goes to dispatch as a theft investigation, a dog skip as a reread
    visit; each a new order on the meter's premise (created once, by the review's key)."""
    from server.orders.models import WorkOrder
    from server.results.schemas import Decision

    account = make_account()
    meter = make_meter(service_point_id=account.service_point_id, dials=6, unit="gal")
    other = make_meter(service_point_id=make_account().service_point_id, dials=6, unit="gal")
    handhelds.register_device(db_session=db_session, device_id="HH-1", name="hh", actor="test")
    reads = [_record(meter.serial, 1, reading=1010, tamper=True), _record(other.serial, 2, skip_code="dog")]
    handhelds.ingest_upload(
        db_session=db_session, device_id="HH-1", reads=reads, batch_key="b1", station="dock"
    )
    made = db_session.scalars(
        select(FieldOutcome).where(FieldOutcome.source == "handheld").order_by(FieldOutcome.id)
    ).all()
    orders = []
    for result in made:
        item = db_session.scalar(select(ReviewItem).where(ReviewItem.result_id == result.id))
        results.decide(db_session=db_session, item=item, body=Decision(decision="accept"), actor="ann")
        assert item.status == "dispatched"
        orders.append(db_session.get(WorkOrder, item.new_order_id))
    assert [(o.order_type, o.meter_id, o.status, o.rule) for o in orders] == [
        ("theft_investigation", meter.id, "new", "review"), ("reread", other.id, "new", "review"),
    ]  # fmt: skip
    assert orders[0].account_id == account.id and "tamper" in orders[0].reason


def test_a_decision_on_an_item_someone_else_just_decided_is_refused(db_session, field_order, tech, ingest):
    """Two advisors at once: the second decision, made on the copy it read before the first landed, fails
    on the item's version (the API answers 409 stale_version) and changes nothing."""
    from sqlalchemy import update
    from sqlalchemy.orm.exc import StaleDataError

    from server.results.schemas import Decision

    order = field_order("reread")
    _, _, item = ingest(result_doc(order, tech, fields={"form": "reread"}, readings=[reading(order, 1100.0)]))
    db_session.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item.id)
        .values(status="dismissed", version=ReviewItem.version + 1)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(StaleDataError), db_session.begin_nested():
        results.decide(db_session=db_session, item=item, body=Decision(decision="accept"), actor="bob")
    db_session.refresh(item)
    assert item.status == "dismissed" and item.decided_by == ""
