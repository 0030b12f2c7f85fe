"""Re-rating benchmark: 24 monthly bills for each of 100,000 accounts re-rated by the rate book.

For SQLite and PostgreSQL: a district's accounts, meters and bills (two charge lines each, as a CIS sends
them, at last year's prices: most bills differ from the current book) are loaded straight into the
tables, then every bill is re-rated by `server.adjustments.rerate.rerate_bills` (PostgreSQL: one
set-based statement in exact numeric; SQLite: one streamed query and `rating.rate_period` per bill).

Peer in the same run: the per-bill Python loop (`rerate_bill_loop`: load the bill, its lines, account and
meter through the ORM, rate it), timed on a random sample of bills and scaled to all of them.

CURBSTOP_BENCH_ACCOUNTS (default 100000), CURBSTOP_BENCH_SAMPLE (default 5000 bills).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from benchmarks.core import _pg_database
from benchmarks.report import write_section
from server.accounts.models import Account, Customer, ServicePoint
from server.adjustments.calculators import add_months
from server.adjustments.models import Bill, BillLine
from server.adjustments.rates import load_rates
from server.adjustments.rerate import rerate_bill_loop, rerate_bills
from server.db import copy_rows, make_engine
from server.meters.models import Meter
from server.migrate import upgrade

ACCOUNTS = int(os.environ.get("CURBSTOP_BENCH_ACCOUNTS", "100000"))
SAMPLE = int(os.environ.get("CURBSTOP_BENCH_SAMPLE", "5000"))
MONTHS = 24
FIRST = dt.date(2024, 11, 1)
CHUNK = 50_000
SIZES = [
    ("5/8", 0.82, "gal"),
    ("3/4", 0.09, "gal"),
    ("1", 0.05, "cf"),
    ("1-1/2", 0.025, "cf"),
    ("2", 0.015, "cf"),
]


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        copy_rows(session, table, rows)
    else:
        session.execute(insert(table), rows)


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _pick(roll: float) -> tuple[str, str]:
    acc = 0.0
    for size, share, unit in SIZES:
        acc += share
        if roll < acc:
            return size, unit
    return SIZES[0][0], SIZES[0][2]


def _load(session: Session) -> int:
    """Accounts, meters and MONTHS bills each with two lines; returns the number of bills."""
    rng = random.Random(16)
    for batch in _chunks(
        {
            "id": n,
            "cis_service_point_id": f"SP{n:07d}",
            "address": f"{n} Main St",
            "lat": 38.5,
            "lon": -121.4,
            "city": "",
            "postal_code": "",
            "access_notes": "",
            "hazards": [],
            "service_area": "",
            "route": "",
        }
        for n in range(1, ACCOUNTS + 1)
    ):
        _insert(session, ServicePoint.__table__, batch)  # type: ignore[arg-type]
    for batch in _chunks(
        {
            "id": n,
            "cis_customer_id": f"C{n:07d}",
            "name": f"Customer {n}",
            "phone": "",
            "email": "",
            "mailing_address": "",
            "low_income": False,
        }
        for n in range(1, ACCOUNTS + 1)
    ):
        _insert(session, Customer.__table__, batch)  # type: ignore[arg-type]
    kinds = [_pick(rng.random()) for _ in range(ACCOUNTS)]
    for batch in _chunks(
        {
            "id": n,
            "account_number": f"{100000000 + n}",
            "customer_id": n,
            "service_point_id": n,
            "status": "active",
            "occupied": True,
            "service_class": "commercial" if kinds[n - 1][0] in ("1-1/2", "2") else "residential",
            "billing_cycle": f"{n % 20 + 1:02d}",
        }
        for n in range(1, ACCOUNTS + 1)
    ):
        _insert(session, Account.__table__, batch)  # type: ignore[arg-type]
    for batch in _chunks(
        {
            "id": n,
            "serial": f"M{n:08d}",
            "service_point_id": n,
            "size": kinds[n - 1][0],
            "make": "",
            "model": "",
            "dials": 6,
            "decimals": 0,
            "multiplier": 1,
            "unit": kinds[n - 1][1],
            "radio_id": "",
            "status": "in_service",
        }
        for n in range(1, ACCOUNTS + 1)
    ):
        _insert(session, Meter.__table__, batch)  # type: ignore[arg-type]

    def bills() -> Iterator[dict[str, Any]]:
        bill_id = 0
        for n in range(1, ACCOUNTS + 1):
            day = n % 20 + 1
            start = FIRST.replace(day=day)
            per_unit = 7.48052 if kinds[n - 1][1] == "cf" else 1.0
            for _ in range(MONTHS):
                bill_id += 1
                end = add_months(start, 1)
                use = round(rng.lognormvariate(8.6, 0.5) / per_unit)
                yield {
                    "id": bill_id,
                    "cis_bill_id": f"B{bill_id:09d}",
                    "account_id": n,
                    "meter_id": n,
                    "period_start_date": start,
                    "period_end_date": end,
                    "consumption": use,
                    "unit": kinds[n - 1][1],
                    "estimated": False,
                    "total_cents": 0,
                    "imported_at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                }
                start = end

    count = 0
    line_id = 0
    for batch in _chunks(bills()):
        _insert(session, Bill.__table__, batch)  # type: ignore[arg-type]
        lines = []
        for b in batch:
            # Last year's prices, roughly: fixed $18.50 and $4.10 per 748 gallons, as one volume line.
            volume = int(b["consumption"] * (7.48052 if b["unit"] == "cf" else 1.0) / 748.052 * 410)
            for component, cents in (("fixed", 1850), ("tier_1", volume)):
                line_id += 1
                lines.append(
                    {
                        "id": line_id,
                        "bill_id": b["id"],
                        "component": component,
                        "amount_cents": cents,
                        "quantity": None,
                        "description": "",
                    }
                )
        _insert(session, BillLine.__table__, lines)  # type: ignore[arg-type]
        count += len(batch)
    if session.get_bind().dialect.name == "postgresql":
        for table in ("bills", "bill_lines", "accounts", "meters", "customers", "service_points"):
            session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE"))
        session.commit()
    return count


def _measure(url: str, label: str) -> dict[str, Any]:
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    upgrade(engine)
    book = load_rates()
    out: dict[str, Any] = {"label": label}
    with Session(engine) as session:
        t0 = time.perf_counter()
        out["bills"] = _load(session)
        out["load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = rerate_bills(db_session=session, book=book)
        out["bulk_s"] = time.perf_counter() - t0
        out["summary"] = summary
        ids = list(session.scalars(select(Bill.id)))
        sample = random.Random(5).sample(ids, min(SAMPLE, len(ids)))
        t0 = time.perf_counter()
        loop = rerate_bill_loop(db_session=session, bill_ids=sample, book=book)
        out["loop_sample_s"] = time.perf_counter() - t0
        out["loop"] = loop
        out["lines"] = session.scalar(select(func.count()).select_from(BillLine))
    engine.dispose()
    print(
        f"{label}: {out['bills']:,} bills loaded in {out['load_s']:.1f}s; bulk re-rate {out['bulk_s']:.1f}s "
        f"({summary.method}: {summary.differing:,} differ, {summary.unrated} unrated); per-bill loop "
        f"{out['loop_sample_s']:.1f}s for {len(sample):,}",
        flush=True,
    )
    return out


def main() -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(_measure(f"sqlite:///{Path(tmp) / 'bench.db'}", "SQLite"))
    with _pg_database() as url:
        results.append(_measure(url, "PostgreSQL"))
    rows = []
    for r in results:
        scaled = r["loop_sample_s"] / len_sample(r) * r["bills"]
        s = r["summary"]
        rows.append(
            f"| {r['label']} | {r['bills']:,} | {r['bulk_s']:.1f} s | {r['bills'] / r['bulk_s']:,.0f} | "
            f"{s.method} | {r['loop_sample_s']:.1f} s for {len_sample(r):,} -> {scaled:,.0f} s | "
            f"{scaled / r['bulk_s']:.1f}x | {s.differing:,} | {s.difference_cents / 100:,.2f} |"
        )
    pg = next((r for r in results if r["label"] == "PostgreSQL"), None)
    agree = len({(r["summary"].differing, r["summary"].difference_cents) for r in results}) == 1
    goal = f"{'met' if pg['bulk_s'] < 30 else 'NOT met'}: {pg['bulk_s']:.0f} s" if pg else "not measured"
    same = all(
        r["loop"].differing / max(1, len_sample(r)) > 0.5 and r["summary"].unrated == 0 for r in results
    )
    body = f"""
`make bench-adjustments`: {ACCOUNTS:,} accounts x {MONTHS} monthly bills each (periods of 28-31 days from
each account's cycle day, November 2024 on, so bills before and after the 2025-07-01 rate change and bills
spanning it), every bill re-rated by the built-in rate book (`server/adjustments/rates.toml`) against its
two stored charge lines (last year's prices, so most bills differ). Data loaded straight into the tables
(COPY on PostgreSQL, executemany on SQLite; the CIS import's own cost is in the core suite).

| database | bills | bulk re-rate | bills/s | how | per-bill Python loop (sample -> all) | bulk vs loop | bills that differ | rated - billed ($) |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

- PostgreSQL re-rates in one statement (`rerate.rated_lines_sql`): the rating rule written out in exact
  numeric, pinned line for line to `rating.rate_period` by tests/server/adjustments/test_rerate.py.
- SQLite has no exact decimal type, so its bulk path streams the bills in one query and rates each with
  `rating.rate_period` (the period plan cached per cycle); the per-bill loop adds an ORM load of the bill,
  its lines, account and meter per bill.
- The per-bill loop is timed on a random sample of {SAMPLE:,} bills and scaled to all of them.
- Goal (under 30 s on PostgreSQL): {goal}.
- Both backends find {"the same" if agree else "DIFFERENT"} differing bills and the same rated - billed total, to the cent.
- Sample agreement check (loop finds most sampled bills differ, no bill unrated): {"yes" if same else "NO"}.
- Other processes (other helpers' test runs) shared the 2-core machine during this run; the times are
  wall-clock and include that contention.
"""
    write_section("adjustments", "Re-rating bills (adjustments)", body)


def len_sample(r: dict[str, Any]) -> int:
    return int(r["loop"].bills)


if __name__ == "__main__":
    main()
