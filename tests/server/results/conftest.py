"""Results fixtures: a CSFR, orders dispatched to them with a read history, and the follower's ingest step
run on a result document without a CouchDB in between (the CouchDB path has its own tests)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.adjustments.models import Bill, BillLine
from server.meters.models import MeterRead
from server.orders.models import WorkOrder
from server.results.models import FieldOutcome, ReviewItem
from server.sync import service as sync
from server.technicians.models import Technician

UTC = dt.UTC


@pytest.fixture
def tech(make_technician) -> Technician:
    """A CSFR with every skill."""
    return make_technician(
        code=f"R{uuid.uuid4().hex[:8]}",
        skills=["read", "turn_on_off", "meter_test", "investigation", "meter_exchange", "emergency"],
    )


@pytest.fixture
def field_order(db_session: Session, make_account, make_meter, tech) -> Callable[..., WorkOrder]:
    """An order of `order_type` dispatched to `tech`, on a 6-dial gallon meter read at 1000 on 1 Oct 2026."""

    def make(order_type: str, *, key: str | None = None, account=None, meter=None, **kw: Any) -> WorkOrder:
        account = account or make_account()
        meter = meter or make_meter(service_point_id=account.service_point_id, dials=6, unit="gal")
        if not db_session.scalar(select(MeterRead.id).where(MeterRead.meter_id == meter.id)):
            db_session.add(
                MeterRead(
                    meter_id=meter.id,
                    read_at=dt.datetime(2026, 10, 1, tzinfo=UTC),
                    reading=1000.0,
                    source="cis",
                )
            )
        order = WorkOrder(
            order_type=order_type,
            priority=kw.pop("priority", "investigation"),
            account_id=account.id,
            service_point_id=account.service_point_id,
            meter_id=meter.id,
            technician_id=tech.id,
            status="dispatched",
            route_sequence=1,
            idempotency_key=key or f"results-{uuid.uuid4().hex}",
            **kw,
        )
        db_session.add(order)
        db_session.flush()
        return order

    return make


def result_doc(order: WorkOrder, tech: Technician, outcome: str = "completed", **kw: Any) -> dict[str, Any]:
    """A tablet result document for `order`, as the tablet writes it."""
    rid = uuid.uuid4().hex
    return {
        "_id": f"result:{order.id}:{rid}",
        "doc_type": "result",
        "result_id": rid,
        "order_id": str(order.id),
        "outcome": outcome,
        "csfr_id": tech.code,
        "device_id": "tab-1",
        "completed_at": "2026-12-02T17:00:00Z",
        **kw,
    }


def reading(order: WorkOrder, value: float, at: str = "2026-12-02T16:55:00Z") -> dict[str, Any]:
    """One register reading on the order's meter."""
    return {"meter_id": str(order.meter_id), "value": value, "read_at": at}


@pytest.fixture
def ingest(db_session: Session, tech) -> Callable[..., tuple[str, FieldOutcome | None, ReviewItem | None]]:
    """Run the follower's ingest of one result document: (its outcome line, the result, its review item)."""

    def run(doc: dict[str, Any]) -> tuple[str, FieldOutcome | None, ReviewItem | None]:
        with db_session.begin_nested():
            line = sync._ingest_result(db_session, doc["_id"], doc, tech, f"sync:{sync.database_for(tech)}")
        result = db_session.scalar(
            select(FieldOutcome).where(FieldOutcome.source_key == f"tablet:{doc['_id']}")
        )
        item = (
            db_session.scalar(select(ReviewItem).where(ReviewItem.result_id == result.id)) if result else None
        )
        return line, result, item

    return run


@pytest.fixture
def make_bill(db_session: Session) -> Callable[..., Bill]:
    """A CIS bill on an account's meter, with its charge lines."""

    def make(account, meter, *, start: dt.date, end: dt.date, start_reading: float, end_reading: float,
             lines: dict[str, int], estimated: bool = False) -> Bill:  # fmt: skip
        bill = Bill(
            cis_bill_id=f"B{uuid.uuid4().hex[:10]}",
            account_id=account.id,
            meter_id=meter.id,
            period_start_date=start,
            period_end_date=end,
            start_read_at=dt.datetime.combine(start, dt.time(17), tzinfo=UTC),
            start_reading=start_reading,
            end_read_at=dt.datetime.combine(end, dt.time(17), tzinfo=UTC),
            end_reading=end_reading,
            consumption=end_reading - start_reading,
            unit="gal",
            estimated=estimated,
            total_cents=sum(lines.values()),
        )
        db_session.add(bill)
        db_session.flush()
        db_session.add_all(BillLine(bill_id=bill.id, component=c, amount_cents=v) for c, v in lines.items())
        db_session.flush()
        return bill

    return make
