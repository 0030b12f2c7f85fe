"""Core benchmarks: CIS import at utility scale on SQLite and PostgreSQL, and API latency under load.

- Import: a generated extract of 100,000 accounts with 24 months of reads (2.4 million reads), into an
  empty migrated database, through `curbstop import` in its own process (wall time, peak memory).
  Peer in the same run: the raw bulk-load floor for the same reads file (PostgreSQL COPY into an
  unindexed table; SQLite executemany of pre-parsed tuples into a bare table): what any importer must pay
  before validation, upserts and indexes.
- API: `curbstop serve` (one uvicorn process) on the imported database, with 20,000 orders; a load
  generator in a second process on loopback (8 concurrent connections). Peer in the same run: the
  `/api/health` route (framework + one database round trip), the floor for any route.

Sizes can be reduced for a quick look: CURBSTOP_BENCH_ACCOUNTS (default 100000).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg

from benchmarks.report import write_section
from server.demo.district import generate

PG_ADMIN = os.environ.get("CURBSTOP_TEST_PG_URL", "postgresql://root@127.0.0.1:5432/test")
ACCOUNTS = int(os.environ.get("CURBSTOP_BENCH_ACCOUNTS", "100000"))
ORDERS = 20_000


def _run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; return (seconds, peak RSS in MiB, output)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024, out


@contextmanager
def _pg_database():
    name = f"curbstop_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(database_url: str, var_dir: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "CURBSTOP_VAR_DIR": str(var_dir), "COLUMNS": "120"}


def _floor_sqlite(reads_csv: Path, path: Path) -> float:
    zone = ZoneInfo("America/Los_Angeles")
    with reads_csv.open() as f:
        rows = [
            (
                r["meter_serial"],
                dt.datetime.fromisoformat(r["read_at"]).astimezone(zone).isoformat(),
                float(r["reading"]),
            )
            for r in csv.DictReader(f)
        ]
    conn = sqlite3.connect(path)
    start = time.perf_counter()
    conn.execute("CREATE TABLE raw_reads (serial TEXT, read_at TEXT, reading REAL)")
    conn.executemany("INSERT INTO raw_reads VALUES (?, ?, ?)", rows)
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def _floor_postgres(reads_csv: Path, url: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE UNLOGGED TABLE raw_reads (serial text, read_at timestamptz, reading numeric, source text,"
            " read_code text, estimated text)"
        )
        start = time.perf_counter()
        with (
            conn.cursor().copy("COPY raw_reads FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            reads_csv.open("rb") as f,
        ):
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed_orders(database_url: str, var_dir: Path) -> None:
    """Insert ORDERS orders spread over technicians and dates, and a dispatcher to sign in as."""
    script = f"""
import datetime as dt, random
from sqlalchemy import insert, select
from server import db
from server.config import get_settings
from server.accounts.models import Account
from server.orders.models import WorkOrder
from server.demo.seed import seed_people
from server.technicians.models import Technician
db.configure(get_settings().resolved_database_url())
rng = random.Random(3)
with db.session_factory()() as s:
    seed_people(db_session=s)
    techs = list(s.scalars(select(Technician.id)))
    accts = list(s.execute(select(Account.id, Account.service_point_id).limit({ORDERS})))
    kinds = ["reread", "meter_test", "turn_on", "turn_off", "shut_off_nonpay", "leak_investigation"]
    statuses = ["new", "scheduled", "assigned", "dispatched", "completed"]
    today = dt.date.today()
    rows = [dict(order_type=rng.choice(kinds), status=rng.choice(statuses), priority="reread", account_id=a,
                 service_point_id=sp, technician_id=rng.choice(techs), scheduled_date=today + dt.timedelta(days=rng.randint(-20, 5)),
                 required_skills=["read"], estimated_minutes=10, rule="bench", reason="bench", idempotency_key=f"bench:{{a}}",
                 notes="", status_reason="", outcome={{}}, created_by="bench", locked=False, version=1,
                 created_at=db.utcnow(), updated_at=db.utcnow())
            for a, sp in accts]
    s.execute(insert(WorkOrder), rows)
    s.commit()
"""
    subprocess.run([sys.executable, "-c", script], env=_env(database_url, var_dir), check=True)


def _api_latency(database_url: str, var_dir: Path, label: str) -> list[tuple[str, dict]]:
    _seed_orders(database_url, var_dir)
    port = _free_port()
    env = {**_env(database_url, var_dir), "CURBSTOP_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = httpx.post(
            f"{base}/api/auth/token", data={"username": "dispatcher", "password": "curbstop-demo"}
        ).json()["access_token"]
        today = dt.date.today().isoformat()
        cases = [
            ("GET /api/health (peer: framework + 1 query)", ["/api/health"]),
            (
                "GET /api/orders?scheduled_date=today&status=assigned",
                [f"/api/orders?scheduled_date={today}&status=assigned&page_size=50"],
            ),
            ("GET /api/orders/{id}", [f"/api/orders/{i}" for i in range(1, 2001, 7)]),
            (
                "GET /api/accounts/{id}",
                [f"/api/accounts/{i}" for i in range(1, ACCOUNTS, max(1, ACCOUNTS // 300))],
            ),
            (
                "GET /api/meters/{id}/reads",
                [f"/api/meters/{i}/reads" for i in range(1, ACCOUNTS, max(1, ACCOUNTS // 300))],
            ),
        ]
        results = []
        for name, paths in cases:
            args = [
                sys.executable,
                "-m",
                "benchmarks.loadgen",
                "--url",
                base,
                "--token",
                token,
                "--requests",
                "2000",
                "--concurrency",
                "8",
            ]
            for p in paths:
                args += ["--path", p]
            out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
            results.append((f"{label}: {name}", json.loads(out)))
        return results
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)


def main() -> None:
    """Run the core suite and write its section of docs/benchmarks.md."""
    with tempfile.TemporaryDirectory(prefix="curbstop-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        summary = generate(work / "cis", accounts=ACCOUNTS, seed=11)
        gen_s = time.perf_counter() - t0
        reads_csv = work / "cis" / "reads.csv"
        print(
            f"generated {summary.accounts:,} accounts, {summary.reads:,} reads in {gen_s:.1f} s", flush=True
        )
        rows = []
        api: list[tuple[str, dict]] = []
        # SQLite
        sqlite_url = f"sqlite:///{work / 'bench.db'}"
        subprocess.run(
            [sys.executable, "-m", "server.cli", "migrate"],
            env=_env(sqlite_url, work),
            check=True,
            capture_output=True,
        )
        secs, rss, _ = _run_measured(
            [sys.executable, "-m", "server.cli", "import", str(work / "cis")], _env(sqlite_url, work)
        )
        floor = _floor_sqlite(reads_csv, work / "floor.db")
        rows.append(("SQLite", secs, rss, floor))
        print(f"sqlite import {secs:.1f} s, floor {floor:.1f} s", flush=True)
        api += _api_latency(sqlite_url, work, "SQLite")
        # PostgreSQL
        with _pg_database() as pg_url:
            subprocess.run(
                [sys.executable, "-m", "server.cli", "migrate"],
                env=_env(pg_url, work),
                check=True,
                capture_output=True,
            )
            secs, rss, _ = _run_measured(
                [sys.executable, "-m", "server.cli", "import", str(work / "cis")], _env(pg_url, work)
            )
            with _pg_database() as floor_url:
                floor = _floor_postgres(reads_csv, floor_url)
            rows.append(("PostgreSQL", secs, rss, floor))
            print(f"postgres import {secs:.1f} s, floor {floor:.1f} s", flush=True)
            api += _api_latency(pg_url, work, "PostgreSQL")

    lines = [
        f"Extract: {summary.accounts:,} accounts, {summary.reads:,} reads (24 months), {summary.accounts:,} meters, "
        f"premises, balances, payments, notices, plans, holds (generated in {gen_s:.1f} s).",
        "",
        "### CIS import (`curbstop import`, own process, empty migrated database)",
        "",
        "| backend | wall time (s) | rows/s (reads) | peak RSS (MiB) | peer: raw load floor for reads.csv (s) |",
        "|---|---|---|---|---|",
    ]
    for backend, secs, rss, floor in rows:
        lines.append(f"| {backend} | {secs:.1f} | {summary.reads / secs:,.0f} | {rss:,.0f} | {floor:.1f} |")
    lines += [
        "",
        "The floor is the same reads file loaded with no validation, no upsert and no index "
        "(PostgreSQL `COPY` into an unlogged table; SQLite `executemany` of pre-parsed tuples).",
        "",
        f"### API latency (one uvicorn process, {ORDERS:,} orders, load generator in a second process, 8 connections, 2,000 requests)",
        "",
        "| case | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | req/s | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in api:
        lines.append(
            f"| {name} | {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['rps']} | {r['errors']} |"
        )
    path = write_section("core", "Core: CIS import and API latency", "\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
