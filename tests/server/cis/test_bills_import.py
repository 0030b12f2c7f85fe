"""CIS import of bills and their charge lines: read by name, all or nothing, every bad row named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from server.adjustments.models import Bill, BillLine
from server.cis.importer import ImportRejected, find_files, import_files

ZONE = ZoneInfo("America/Los_Angeles")

BASE = {
    "service_points.csv": "service_point_id,address,lat,lon\nSP1,1 Oak St,38.5,-121.4\n",
    "accounts.csv": "account_number,customer_id,customer_name,service_point_id\nA1,C1,Ann Lee,SP1\n",
    "meters.csv": "serial,service_point_id,size,dials,unit\nM1,SP1,5/8,4,ccf\n",
}
BILLS = (
    "bill_id,account_number,meter_serial,period_start,period_end,start_read_at,start_reading,"
    "end_read_at,end_reading,consumption,unit,estimated,total\n"
    "B1,A1,M1,2026-09-01,2026-10-01,2026-09-01T08:00,9990,2026-10-01T08:00,0002,12,ccf,no,80.37\n"
    "B2,A1,M1,2026-10-01,2026-11-01,2026-10-01T08:00,0002,2026-11-01T08:00,0010,8,ccf,yes,\n"
)
LINES = (
    "bill_id,component,amount,quantity,description\n"
    "B1,fixed,18.50,,service charge\nB1,tier_1,23.91,6,\nB1,tier_2,29.24,6,\nB1,late_fee,8.72,,\n"
    "B2,fixed,18.50,,\nB2,tier_1,23.91,6,\nB2,tier_2,9.75,2,\n"
)


def write(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return find_files(tmp_path, ZONE)


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def test_bills_and_lines_land_with_totals_from_their_lines(db_session, tmp_path):
    """Two bills and seven lines; a bill's total is the sum of its lines (B2 gives none: 52.16); the read
    times are local (08:00 PDT = 15:00 UTC); importing the same files again changes nothing."""
    paths = write(tmp_path, {**BASE, "bills.csv": BILLS, "bill_lines.csv": LINES})
    result = import_files(db_session, paths, zone=ZONE)
    assert result.rows["bills.csv"] == 2 and result.rows["bill_lines.csv"] == 7
    b1 = db_session.scalar(select(Bill).where(Bill.cis_bill_id == "B1"))
    b2 = db_session.scalar(select(Bill).where(Bill.cis_bill_id == "B2"))
    assert (b1.total_cents, b2.total_cents) == (8037, 5216)
    assert b1.end_read_at == dt.datetime(2026, 10, 1, 15, tzinfo=dt.UTC)
    assert (b1.start_reading, b1.end_reading, b1.consumption, b2.estimated) == (9990, 2, 12, True)
    import_files(db_session, paths, zone=ZONE)
    assert count(db_session, Bill) == 2 and count(db_session, BillLine) == 7


def test_bad_bill_rows_are_all_named_and_nothing_is_applied(db_session, tmp_path):
    """A period that runs backwards, one reading without the other, an unknown component, a total that is
    not its lines' sum, an unknown account, a line for a bill nowhere: every one reported by file, line and
    column, and not one bill, line or account of the extract lands."""
    bills = (
        "bill_id,account_number,meter_serial,period_start,period_end,start_reading,end_reading,consumption,total\n"
        "B1,A1,M1,2026-09-01,2026-10-01,10,20,12,80.00\n"
        "B2,A1,M1,2026-10-01,2026-09-15,,30,8,\n"
        "B3,A9,M1,2026-10-01,2026-11-01,,,8,\n"
    )
    lines = "bill_id,component,amount\nB1,fixed,18.50\nB1,tier_1,23.91\nB1,tier_99,1.00\nB7,fixed,1.00\n"
    with pytest.raises(ImportRejected) as caught:
        import_files(
            db_session, write(tmp_path, {**BASE, "bills.csv": bills, "bill_lines.csv": lines}), zone=ZONE
        )
    messages = [str(i) for i in caught.value.issues]
    assert "bills.csv:3: period_end: 2026-09-15 is not after period_start 2026-10-01" in messages
    assert "bills.csv:3: start_reading: give both readings or neither" in messages
    assert "bills.csv:4: account_number: 'A9' is not in accounts.csv or the database" in messages
    assert any(m.startswith("bill_lines.csv:4: component: 'tier_99' is not one of") for m in messages)
    assert "bill_lines.csv:5: bill_id: 'B7' is not in bills.csv or the database" in messages
    assert "bills.csv:2: total: 80.00 is not the sum of its lines in bill_lines.csv (42.41)" in messages
    assert count(db_session, Bill) == 0 and count(db_session, BillLine) == 0
    from server.accounts.models import Account

    assert count(db_session, Account) == 0


def test_lines_for_a_bill_imported_before_are_accepted(db_session, tmp_path):
    """A later extract may carry only lines (a rebill): they attach to the bill already held, and its
    total follows them."""
    import_files(
        db_session, write(tmp_path, {**BASE, "bills.csv": BILLS, "bill_lines.csv": LINES}), zone=ZONE
    )
    later = tmp_path / "later"
    later.mkdir()
    paths = write(later, {"bill_lines.csv": "bill_id,component,amount\nB2,tier_2,0.00\n"})
    import_files(db_session, paths, zone=ZONE)
    assert db_session.scalar(select(Bill.total_cents).where(Bill.cis_bill_id == "B2")) == 4241
