"""Ingesting results checks each against its order type's completion form (contracts.forms): a result that
does not fit is kept for review with a reason naming the field, and nothing of it is applied."""

# ruff: noqa: F401, F811  (the sync fixtures are imported from test_sync and used as arguments)
from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from server.meters.models import MeterRead
from server.orders.models import WorkOrder
from server.sync import service
from server.sync.models import FieldResult
from tests.contracts.test_forms import meter_test_fields
from tests.server.sync.test_sync import SECRET, _result, admin, couch, tablet, tech

pytestmark = pytest.mark.couchdb


@pytest.fixture
def meter_test(db_session, make_account, make_meter, tech):
    """A meter test dispatched to `tech`."""
    account = make_account()
    meter = make_meter(service_point_id=account.service_point_id, dials=6)
    order = WorkOrder(
        order_type="meter_test",
        priority="meter_test",
        account_id=account.id,
        service_point_id=account.service_point_id,
        meter_id=meter.id,
        technician_id=tech.id,
        status="dispatched",
        route_sequence=1,
        idempotency_key=f"forms-{uuid.uuid4().hex}",
    )
    db_session.add(order)
    db_session.flush()
    return order


def _send(couch, admin, db_session, tech, order, fields: dict[str, Any], **kw: Any) -> FieldResult:
    service.provision(admin=admin, tech=tech, secret=SECRET)
    reading = {"meter_id": str(order.meter_id), "value": 1450.0, "read_at": "2026-12-02T16:55:00Z"}
    body = _result(order, tech, fields=fields, readings=[reading], **kw)
    with tablet(couch, tech) as t:
        assert t.put(f"/{body['_id']}", json=body).status_code == 201
    service.follow(db_session=db_session, admin=admin, techs=[tech])
    db_session.refresh(order)
    return db_session.get(FieldResult, body["_id"])


def test_meter_test_missing_a_flow_point_volume_is_kept_for_review(
    couch, admin, db_session, tech, meter_test
):
    """The intermediate point without its meter volume: the order stays dispatched, no reading is stored,
    and the ingested result says which field is missing."""
    fields = meter_test_fields()
    del fields["points"][1]["meter_volume"]
    kept = _send(couch, admin, db_session, tech, meter_test, fields)
    assert kept.outcome == "kept for review: meter_test form: points[1].meter_volume: missing"
    assert kept.payload["fields"]["points"][1]["point"] == "intermediate"  # the document is kept whole
    assert meter_test.status == "dispatched" and meter_test.outcome == {}
    assert db_session.scalars(select(MeterRead).where(MeterRead.meter_id == meter_test.meter_id)).all() == []


def test_a_reread_form_on_a_meter_test_is_kept_and_a_fitting_result_completes(
    couch,
    admin,
    db_session,
    tech,
    meter_test,
):
    """Fields of another form are refused naming `form`; the complete meter test completes the order."""
    wrong = _send(couch, admin, db_session, tech, meter_test, {"form": "reread"})
    assert wrong.outcome.startswith("kept for review: meter_test form: form: is 'reread'")
    assert meter_test.status == "dispatched"
    done = _send(couch, admin, db_session, tech, meter_test, meter_test_fields())
    assert done.outcome == f"order {meter_test.id} completed", done.outcome
    assert meter_test.status == "completed" and meter_test.outcome["fields"]["passed"] is True
