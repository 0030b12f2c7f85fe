"""The demo district's bills: one between each two monthly reads, charged by the built-in rate book."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from server.adjustments.models import Bill, BillLine
from server.adjustments.rerate import rerate_bills
from server.cis.importer import import_files
from server.demo.district import generate
from server.meters.models import Meter

ZONE = ZoneInfo("America/Los_Angeles")


def test_demo_bills_import_and_rerate_to_themselves(db_session, tmp_path):
    """60 accounts: 23 bills a meter (24 months of reads), each bill's total the sum of its lines, some
    spanning the 2025-07-01 rate change; re-rating them all by the same book finds no bill that differs
    (late fees are not re-rated)."""
    summary = generate(tmp_path, accounts=60, today=dt.date(2026, 11, 17), zone=ZONE)
    assert {p.name for p in summary.files} >= {"bills.csv", "bill_lines.csv"}
    import_files(db_session, summary.files, zone=ZONE)
    meters = db_session.scalar(select(func.count()).select_from(Meter))
    assert db_session.scalar(select(func.count()).select_from(Bill)) == meters * 23
    sums = dict(
        (bill_id, total)
        for bill_id, total in db_session.execute(
            select(BillLine.bill_id, func.sum(BillLine.amount_cents)).group_by(BillLine.bill_id)
        )
    )
    assert all(sums[b.id] == b.total_cents for b in db_session.scalars(select(Bill)))
    assert db_session.scalar(
        select(func.count())
        .select_from(Bill)
        .where(Bill.period_start_date < dt.date(2025, 7, 1), Bill.period_end_date > dt.date(2025, 7, 1))
    )
    rerated = rerate_bills(db_session=db_session)
    assert (rerated.bills, rerated.unrated, rerated.differing) == (meters * 23, 0, 0)
