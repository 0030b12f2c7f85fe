# ruff: noqa: F401, F811  (the results fixtures are imported from its conftest and used as arguments)
"""The CIS export: validated field reads, order outcomes, meter tests and approved adjustments, each staged
once with a stable id; the feed resumes exactly at its cursor and files re-exported carry the same ids."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from contracts.codes import Role
from server.adjustments.models import Adjustment
from server.auth.service import create_api_token
from server.cis import export
from server.orders.models import WorkOrder
from server.results.models import CisExportRecord
from tests.contracts.test_forms import meter_test_fields
from tests.server.results.conftest import field_order, ingest, reading, result_doc, tech


@pytest.fixture
def day(field_order, tech, ingest, db_session, make_account):
    """A turn-on with its reading, a passed meter test, a reread whose reading is still in question, and an
    approved adjustment."""
    turn_on = field_order("turn_on")
    ingest(result_doc(turn_on, tech, fields={"form": "service", "curb_stop_position": "open"},
                      readings=[reading(turn_on, 1100.0)]))  # fmt: skip
    test = field_order("meter_test")
    ingest(result_doc(test, tech, fields=meter_test_fields(), readings=[reading(test, 1050.0)]))
    account = make_account()
    db_session.add(Adjustment(kind="fee_reversal", status="approved", account_id=account.id, amount_cents=-2500,
                              proposed_by="ann", decided_by="sue", decided_at=dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
                              note="late fee waived"))  # fmt: skip
    db_session.flush()
    return turn_on, test


@pytest.fixture
def cis_headers(db_session):
    """The CIS poller: an admin API token."""
    return {"Authorization": f"Bearer {create_api_token(db_session=db_session, name='cis', role=Role.ADMIN)}"}


def test_each_fact_is_staged_once_with_a_stable_id(db_session, day):
    """Two reads, two order outcomes, one meter test, one adjustment; staging again adds nothing."""
    turn_on, _ = day
    assert export.stage(db_session=db_session) == 6
    assert export.stage(db_session=db_session) == 0
    rows = db_session.scalars(select(CisExportRecord).order_by(CisExportRecord.seq)).all()
    by_message = {}
    for row in rows:
        by_message.setdefault(row.message, []).append(row)
    assert {m: len(v) for m, v in by_message.items()} == {
        "MeterReadings": 2, "ServiceOrderChangedNotification": 2, "MeterTestNotification": 1,
        "AdjustmentNotification": 1,
    }  # fmt: skip
    outcome = next(
        r
        for r in by_message["ServiceOrderChangedNotification"]
        if r.payload["serviceOrderID"] == str(turn_on.id)
    )
    assert outcome.payload["status"] == "completed" and outcome.payload["curbStopPosition"] == "open"
    tested = by_message["MeterTestNotification"][0].payload
    assert tested["passed"] is True and tested["billingAccuracyPct"] == 99.5
    assert by_message["AdjustmentNotification"][0].payload["amountCents"] == -2500
    read = by_message["MeterReadings"][0].payload
    assert read["value"] == 1100.0 and read["readingTypeUnit"] == "gal" and read["quality"]


def test_a_read_still_in_question_waits(db_session, field_order, tech, ingest):
    """A field read with an open reread order on it is not exported; once the reread is answered it is."""
    order = field_order("turn_on")
    _, result, _ = ingest(result_doc(order, tech, fields={"form": "service", "curb_stop_position": "open"},
                                     readings=[reading(order, 1100.0)]))  # fmt: skip
    question = WorkOrder(order_type="reread", priority="reread", service_point_id=order.service_point_id,
                         meter_id=order.meter_id, status="new", idempotency_key=f"reread:read:{result.read_ids[0]}")  # fmt: skip
    db_session.add(question)
    db_session.flush()
    export.stage(db_session=db_session)
    messages = [r.message for r in db_session.scalars(select(CisExportRecord))]
    assert "MeterReadings" not in messages and "ServiceOrderChangedNotification" in messages
    question.status = "cancelled"
    db_session.flush()
    assert export.stage(db_session=db_session) == 1
    staged = db_session.scalar(select(CisExportRecord).where(CisExportRecord.message == "MeterReadings"))
    assert staged.record_id == f"read-{result.read_ids[0]}"


def test_the_feed_resumes_exactly_at_its_cursor(client, day, cis_headers):
    """Pages of two: the cursor of each page starts the next with the record after it; reading from the
    start again gives the same ids in the same order; the last cursor gives nothing new."""
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/cis/export", headers=cis_headers, params=params).json()
        seen.extend(r["record_id"] for r in page["records"])
        cursor = page["next_cursor"]
        if not page["more"]:
            break
    assert len(seen) == len(set(seen)) == 6
    again = client.get("/api/cis/export", headers=cis_headers, params={"limit": 100}).json()
    assert [r["record_id"] for r in again["records"]] == seen
    tail = client.get("/api/cis/export", headers=cis_headers, params={"cursor": cursor}).json()
    assert tail["records"] == [] and tail["next_cursor"] == cursor


def test_an_advisor_may_not_poll_the_feed(client, login, day):
    """The CIS feed is for the admin API token the CIS polls with."""
    assert client.get("/api/cis/export", headers=login(Role.ADVISOR)).status_code == 403


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_exporting_twice_gives_the_same_ids(db_session, day, tmp_path, fmt):
    """Files written twice from the same day carry the same record ids, one file per message."""
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def ids(out):
        written = export.write_files(
            export.records_since(db_session=db_session, since=since), fmt=fmt, out=out
        )
        found = set()
        for path in written:
            if fmt == "json":
                found |= {r["record_id"] for r in json.loads(path.read_text())["records"]}
            else:
                with path.open() as fh:
                    found |= {r["record_id"] for r in csv.DictReader(fh)}
        return found, sorted(p.name.split("-")[0] for p in written)

    first, files = ids(tmp_path / "a")
    second, _ = ids(tmp_path / "b")
    assert first == second and len(first) == 6
    assert files == sorted(["AdjustmentNotification", "MeterReadings", "MeterTestNotification",
                            "ServiceOrderChangedNotification"])  # fmt: skip
