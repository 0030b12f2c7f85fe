"""Bulk re-rating: the set-based SQL (PostgreSQL) gives what rating.rate_period gives, line for line, on
bills chosen to hit every rule (full and partial periods, a rate change inside, units, half cents,
unknown sizes, a day before any schedule); the streamed path and the per-bill loop agree with it."""

from __future__ import annotations

import datetime as dt
import random
from fractions import Fraction

import pytest
from sqlalchemy import text

from server.adjustments.models import Bill, BillLine
from server.adjustments.rates import RateError
from server.adjustments.rating import rate_period
from server.adjustments.rerate import _rerate_stream, rated_lines_sql, rerate_bill_loop, rerate_bills

D = dt.date


@pytest.fixture
def bills(db_session, make_account, make_meter, book):
    """~120 bills over the test rate book: random periods 2020-12..2026, 5..70 days, three units, sizes
    5/8, 1 and 3/4 (no fixed charge: unrateable), consumptions with halves of a unit; each billed as rated
    except every seventh, billed 100 cents more."""
    rng = random.Random(16)
    out = []
    units = ["ccf", "gal", "cf"]
    for n in range(40):
        account = make_account(service_class="residential")
        size = ["5/8", "1", "5/8", "3/4"][n % 4]
        unit = units[n % 3]
        meter = make_meter(service_point_id=account.service_point_id, unit=unit, size=size)
        for k in range(3):
            start = D(2020, 12, 1) + dt.timedelta(days=rng.randint(0, 2000))
            if n == 0 and k == 0:
                start, days = D(2025, 6, 16), 30  # the worked split example
            else:
                days = rng.choice([5, 15, 27, 28, 30, 31, 33, 34, 45, 70])
            use = Fraction(rng.randint(0, 400_000), 10_000) * (
                748 if unit == "gal" else 100 if unit == "cf" else 1
            )
            bill = Bill(
                cis_bill_id=f"R{n}-{k}",
                account_id=account.id,
                meter_id=meter.id,
                period_start_date=start,
                period_end_date=start + dt.timedelta(days=days),
                consumption=float(use),
                unit=unit,
                estimated=False,
                total_cents=0,
            )
            db_session.add(bill)
            db_session.flush()
            try:
                rated = rate_period(
                    book,
                    customer_class="residential",
                    meter_size=size,
                    start=start,
                    end=bill.period_end_date,
                    consumption=use,
                    unit=unit,
                ).by_component()
            except RateError:
                rated = {"fixed": 1}
            extra = 100 if len(out) % 7 == 0 else 0
            for component, cents in rated.items():
                db_session.add(
                    BillLine(
                        bill_id=bill.id,
                        component=component,
                        amount_cents=cents + (extra if component == "fixed" else 0),
                        description="",
                    )
                )
            out.append((bill, size, use))
    db_session.flush()
    return out


def python_lines(book, bills):
    expected = {}
    for bill, size, use in bills:
        try:
            rated = rate_period(
                book,
                customer_class="residential",
                meter_size=size,
                start=bill.period_start_date,
                end=bill.period_end_date,
                consumption=use,
                unit=bill.unit,
            )
        except RateError:
            continue
        for component, cents in rated.by_component().items():
            expected[(bill.id, component)] = cents
    return expected


@pytest.mark.postgres
def test_the_sql_rating_matches_rate_period_line_for_line(db_session, bills, book):
    """Every (bill, component) amount from the SQL equals rate_period's; bills rating refuses (a 3/4"
    meter the book has no charge for, a day before 2021) are absent from both."""
    if db_session.get_bind().dialect.name != "postgresql":
        pytest.skip("the set-based rating runs on PostgreSQL (exact numeric)")
    got = {(r.bill_id, r.component): r.amount_cents for r in db_session.execute(text(rated_lines_sql(book)))}
    expected = python_lines(book, bills)
    assert got == expected
    split = next(b for b, _, _ in bills if b.cis_bill_id == "R0-0")
    assert {c: v for (i, c), v in got.items() if i == split.id}.keys() >= {"fixed", "tier_1"}


def test_every_path_finds_the_same_differences(db_session, bills, book):
    """The bulk re-rate (SQL on PostgreSQL, streamed Python on SQLite), the streamed path and the per-bill
    loop count the same bills, the same differing ones (every seventh, +100 each) and the same total."""
    rateable = {b.id for b, size, _ in bills} - {
        b.id for b, size, use in bills if not _rateable(book, b, size, use)
    }
    differing = sum(1 for i, (b, _, _) in enumerate(bills) if i % 7 == 0 and b.id in rateable)
    bulk = rerate_bills(db_session=db_session, book=book)
    stream = _rerate_stream(db_session, book)
    loop = rerate_bill_loop(db_session=db_session, bill_ids=[b.id for b, _, _ in bills], book=book)
    for summary in (bulk, stream, loop):
        assert (summary.bills, summary.bills - summary.unrated) == (len(bills), len(rateable))
        assert (summary.differing, summary.difference_cents) == (differing, -100 * differing)


def _rateable(book, bill, size, use) -> bool:
    try:
        rate_period(
            book,
            customer_class="residential",
            meter_size=size,
            start=bill.period_start_date,
            end=bill.period_end_date,
            consumption=use,
            unit=bill.unit,
        )
    except RateError:
        return False
    return True
