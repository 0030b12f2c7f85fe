"""Re-rate stored bills in bulk by the rate book: what each bill should have charged, against what it did.

Two ways to the same numbers (pinned to each other by tests/server/adjustments/test_rerate.py):
- PostgreSQL: one set-based statement. Its numeric type is exact decimal, so the rule of
  `rating.rate_period` is written out in SQL: each bill split at the schedules' effective dates, the fixed
  charge and tier widths scaled by days, every line computed with one division at the end (so a line
  that is exactly half a cent is exactly half a cent) and rounded half to even.
- SQLite (no exact decimal type): one streamed query and `rating.rate_period` per bill in Python, with
  its per-period plan cached.
`rerate_bill_loop` is the naive per-bill loop (load a bill, its lines, its account and meter, rate it),
kept as the benchmark's baseline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from server.accounts.models import Account
from server.adjustments.models import Bill, BillLine
from server.adjustments.rates import GALLONS, RateBook, RateError, current_rates
from server.adjustments.rating import is_rated, rate_period
from server.meters.models import Meter
from server.orders.policy import normalise_size


@dataclass
class RerateSummary:
    """What a bulk re-rate found: bills rated, those whose rated charges differ from what they billed."""

    bills: int = 0
    differing: int = 0
    difference_cents: int = 0  # sum over bills of (rated - billed), fixed and tiers only
    unrated: int = 0  # bills the book cannot rate (no schedule that day, an unknown meter size)
    method: str = ""
    examples: list[str] = field(default_factory=list)  # a few differing bills' ids


def _dec(value: Fraction | Decimal | int) -> str:
    """An exact decimal literal of `value` (rate-book numbers are terminating decimals)."""
    if isinstance(value, Fraction):
        q = Decimal(value.numerator) / Decimal(value.denominator)
        if Fraction(q) != value:
            raise ValueError(f"{value} is not a terminating decimal")
        return f"{q:f}"
    return f"{Decimal(value):f}"


def _lit(v: Any, numeric: bool) -> str:
    if v is None:
        return "NULL::numeric" if numeric else "NULL"
    if numeric:
        return f"{v}::numeric"
    if isinstance(v, dt.date):
        return f"DATE '{v.isoformat()}'"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(v)


def _rows(rows: list[tuple[Any, ...]], numeric_cols: set[int]) -> str:
    return ", ".join(
        "(" + ", ".join(_lit(v, i in numeric_cols) for i, v in enumerate(row)) + ")" for row in rows
    )


def rated_lines_sql(book: RateBook) -> str:
    """SELECT bill_id, component, amount_cents for every bill the book can rate (PostgreSQL)."""
    parts: list[tuple[Any, ...]] = []
    fixed: list[tuple[Any, ...]] = []
    tiers: list[tuple[Any, ...]] = []
    by_class: dict[str, list[Any]] = {}
    for s in book.schedules:
        by_class.setdefault(s.customer_class, []).append(s)
    index = 0
    for schedules in by_class.values():
        schedules.sort(key=lambda s: s.effective_date)
        for i, s in enumerate(schedules):
            index += 1
            until = schedules[i + 1].effective_date if i + 1 < len(schedules) else dt.date(9999, 12, 31)
            parts.append((index, s.customer_class, s.effective_date, until, _dec(GALLONS[s.unit])))
            fixed.extend((index, size, cents) for size, cents in s.fixed_cents.items())
            lower = Fraction(0)
            for n, tier in enumerate(s.tiers, start=1):
                tiers.append(
                    (
                        index,
                        n,
                        _dec(lower),
                        None if tier.up_to is None else _dec(tier.up_to),
                        _dec(tier.price_cents),
                    )
                )
                lower = tier.up_to if tier.up_to is not None else lower
    units = [(u, _dec(g)) for u, g in GALLONS.items()]
    sizes = [
        (s, normalise_size(s)) for s in ("5/8", "3/4", "1", "1-1/2", "2", "3", "4", "6", "8", "10", "12")
    ]

    # Exact arithmetic: over the common denominator D = days x denom x rate_gal, a part's use is
    # c x pdays x bill_gal x denom and a tier bound b is b x pdays x days x rate_gal; the line is
    # (min(use, upper) - lower) x price / D: one division, so a half cent stays exactly half.
    half_even = (
        "CASE WHEN {x} - floor({x}) = 0.5 THEN floor({x}) + (floor({x})::bigint % 2) ELSE round({x}) END"
    )
    return f"""
WITH p(sched, class, eff_from, eff_to, rate_gal) AS (VALUES {_rows(parts, {4})}),
f(sched, size, cents) AS (VALUES {_rows(fixed, {2})}),
t(sched, n, lo, hi, price) AS (VALUES {_rows(tiers, {2, 3, 4})}),
u(unit, gal) AS (VALUES {_rows(units, {1})}),
sz(size, norm) AS (VALUES {_rows(sizes, set())}),
b AS (
  SELECT bills.id, a.service_class AS class, COALESCE(sz.norm, m.size) AS size,
         bills.period_start_date AS s, bills.period_end_date AS e,
         (bills.period_end_date - bills.period_start_date) AS days,
         bills.consumption::numeric AS c, u.gal AS bill_gal
  FROM bills
  JOIN accounts a ON a.id = bills.account_id
  JOIN meters m ON m.id = bills.meter_id
  LEFT JOIN sz ON sz.size = m.size
  JOIN u ON u.unit = bills.unit
  WHERE bills.period_end_date > bills.period_start_date
),
parts AS (
  SELECT b.id, p.sched, b.size, b.days, b.c, b.bill_gal, p.rate_gal,
         (LEAST(b.e, p.eff_to) - GREATEST(b.s, p.eff_from)) AS pdays,
         CASE WHEN b.days BETWEEN {book.full_period_min_days} AND {book.full_period_max_days}
              THEN b.days ELSE {book.standard_period_days} END AS denom
  FROM b JOIN p ON p.class = b.class AND p.eff_from < b.e AND p.eff_to > b.s
),
exact AS (
  SELECT parts.id, 'fixed' AS component, f.cents::numeric * parts.pdays / parts.denom AS x
  FROM parts JOIN f ON f.sched = parts.sched AND f.size = parts.size
  UNION ALL
  SELECT id, 'tier_' || n, q * price / (days * denom * rate_gal)
  FROM (
    SELECT parts.id, t.n, t.price, parts.days, parts.denom, parts.rate_gal,
           LEAST(parts.c * parts.pdays * parts.bill_gal * parts.denom,
                 t.hi * parts.pdays * parts.days * parts.rate_gal)
             - t.lo * parts.pdays * parts.days * parts.rate_gal AS q
    FROM parts JOIN t ON t.sched = parts.sched
  ) tq
  WHERE q > 0
)
SELECT id AS bill_id, component, SUM({half_even.format(x="x")})::bigint AS amount_cents
FROM exact
WHERE id IN (  -- every day under a schedule that has the meter's size (else rating refuses the bill)
  SELECT parts.id FROM parts JOIN f ON f.sched = parts.sched AND f.size = parts.size
  GROUP BY parts.id, parts.days HAVING SUM(parts.pdays) = parts.days
)
GROUP BY id, component
"""


def _billed_rated() -> Any:
    """Per bill: what it billed for the rated components (fixed and tiers)."""
    from sqlalchemy import func, or_

    return (
        select(BillLine.bill_id, func.sum(BillLine.amount_cents).label("billed"))
        .where(or_(BillLine.component == "fixed", BillLine.component.like("tier\\_%", escape="\\")))
        .group_by(BillLine.bill_id)
        .subquery()
    )


def rerate_bills(*, db_session: Session, book: RateBook | None = None) -> RerateSummary:
    """Every stored bill re-rated by `book` (default: the configured one) against what it billed."""
    book = book or current_rates()
    if db_session.get_bind().dialect.name == "postgresql":
        return _rerate_sql(db_session, book)
    return _rerate_stream(db_session, book)


def _rerate_sql(db_session: Session, book: RateBook) -> RerateSummary:
    row = db_session.execute(
        text(
            f"""
WITH rated AS ({rated_lines_sql(book)}),
per_bill AS (SELECT bill_id, SUM(amount_cents) AS rated FROM rated GROUP BY bill_id),
billed AS (
  SELECT bill_id, SUM(amount_cents) AS billed FROM bill_lines
  WHERE component = 'fixed' OR component LIKE 'tier\\_%' GROUP BY bill_id
)
SELECT
  (SELECT count(*) FROM bills) AS bills,
  count(*) FILTER (WHERE per_bill.rated <> COALESCE(billed.billed, 0)) AS differing,
  COALESCE(SUM(per_bill.rated - COALESCE(billed.billed, 0)), 0) AS difference,
  count(*) AS rated
FROM per_bill LEFT JOIN billed ON billed.bill_id = per_bill.bill_id
"""
        )
    ).one()
    return RerateSummary(
        bills=row.bills,
        differing=row.differing,
        difference_cents=int(row.difference),
        unrated=row.bills - row.rated,
        method="set-based SQL (PostgreSQL numeric)",
    )


def _stream(db_session: Session) -> Iterator[Any]:
    billed = _billed_rated()
    query = (
        select(
            Bill.id,
            Bill.cis_bill_id,
            Account.service_class,
            Meter.size,
            Bill.period_start_date,
            Bill.period_end_date,
            Bill.consumption,
            Bill.unit,
            billed.c.billed,
        )
        .join(Account, Account.id == Bill.account_id)
        .join(Meter, Meter.id == Bill.meter_id)
        .outerjoin(billed, billed.c.bill_id == Bill.id)
        .execution_options(yield_per=20_000)
    )
    yield from db_session.execute(query)


def _rerate_stream(db_session: Session, book: RateBook) -> RerateSummary:
    summary = RerateSummary(method="one streamed query, rating.rate_period per bill (cached plans)")
    for row in _stream(db_session):
        summary.bills += 1
        try:
            rated = rate_period(
                book,
                customer_class=row.service_class,
                meter_size=row.size,
                start=row.period_start_date,
                end=row.period_end_date,
                consumption=Fraction(f"{row.consumption:.4f}"),
                unit=row.unit,
            )
        except RateError:
            summary.unrated += 1
            continue
        difference = rated.total_cents - (row.billed or 0)
        if difference:
            summary.differing += 1
            summary.difference_cents += difference
            if len(summary.examples) < 5:
                summary.examples.append(row.cis_bill_id)
    return summary


def rerate_bill_loop(
    *, db_session: Session, bill_ids: list[int], book: RateBook | None = None
) -> RerateSummary:
    """The naive way, for comparison: per bill, load it, its lines, account and meter, and rate it."""
    book = book or current_rates()
    summary = RerateSummary(method="per-bill loop (ORM loads, rating.rate_period)")
    for bill_id in bill_ids:
        bill = db_session.get(Bill, bill_id)
        assert bill is not None and bill.meter_id is not None
        account = db_session.get(Account, bill.account_id)
        meter = db_session.get(Meter, bill.meter_id)
        assert account is not None and meter is not None
        lines = db_session.scalars(select(BillLine).where(BillLine.bill_id == bill.id)).all()
        summary.bills += 1
        try:
            rated = rate_period(
                book,
                customer_class=account.service_class,
                meter_size=meter.size,
                start=bill.period_start_date,
                end=bill.period_end_date,
                consumption=Fraction(f"{bill.consumption:.4f}"),
                unit=bill.unit,
            )
        except RateError:
            summary.unrated += 1
            continue
        difference = rated.total_cents - sum(line.amount_cents for line in lines if is_rated(line.component))
        if difference:
            summary.differing += 1
            summary.difference_cents += difference
        db_session.expunge_all()  # keep the identity map from growing over a long loop
    return summary
