"""The `curbstop` command line, run as a real subprocess against each backend."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, select, text

from server.accounts.models import Account
from server.meters.models import MeterRead
from server.migrate import alembic_config


def run(
    args: list[str], database_url: str, var_dir: Path, timeout: int = 180
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "CURBSTOP_VAR_DIR": str(var_dir), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def engine(empty_database_url):
    """An engine on the test's database, disposed even when the test fails."""
    eng = create_engine(empty_database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield eng
    eng.dispose()


def test_migrate_creates_schema(empty_database_url, engine, tmp_path):
    """`curbstop migrate` brings an empty database to the newest revision."""
    result = run(["migrate"], empty_database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.mark.slow
def test_demo_then_import_rejection(empty_database_url, engine, tmp_path):
    """`curbstop demo` builds a district; a later bad import lists its problems, exits 1 and changes nothing."""
    result = run(["demo", "--accounts", "300", "--no-serve"], empty_database_url, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "300 accounts" in result.stdout and "curbstop-demo" in result.stdout
    assert (tmp_path / "demo" / "station-token.txt").read_text().startswith("cs_")
    with engine.connect() as conn:
        accounts = conn.scalar(select(func.count()).select_from(Account))
        reads = conn.scalar(select(func.count()).select_from(MeterRead))
    assert accounts == 300 and reads == 300 * 24

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "reads.csv").write_text(
        "meter_serial,read_at,reading\nNOPE,2026-01-01T00:00:00Z,1\n,2026-01-01,2\n"
    )
    rejected = run(["import", str(bad)], empty_database_url, tmp_path)
    assert rejected.returncode == 1
    assert "2 problem(s)" in rejected.stderr and "nothing was applied" in rejected.stderr
    assert "meter_serial" in rejected.stderr and "NOPE" in rejected.stderr
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(MeterRead)) == reads
    # Running the demo again reuses the district rather than duplicating it.
    again = run(["demo", "--accounts", "300", "--no-serve"], empty_database_url, tmp_path)
    assert again.returncode == 0 and "using the existing district" in again.stdout
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Account)) == 300


def test_create_user_and_token(empty_database_url, tmp_path):
    """create-user refuses a short password (under 12 characters); create-token prints a cs_ token."""
    short = run(
        ["create-user", "pat", "--role", "dispatcher", "--password", "short"], empty_database_url, tmp_path
    )
    assert short.returncode == 2 and "at least 12" in short.stderr
    ok = run(
        ["create-user", "pat", "--role", "dispatcher", "--password", "long-enough-pw"],
        empty_database_url,
        tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    token = run(["create-token", "dock-9"], empty_database_url, tmp_path)
    assert token.returncode == 0 and token.stdout.strip().startswith("cs_")


@pytest.mark.slow
def test_generate_orders_command(empty_database_url, engine, tmp_path):
    """The demo raises today's orders; `generate-orders` shows the table, a dry run writes nothing,
    a second run creates nothing, and bad arguments or a bad policy exit 2 naming the problem."""
    assert run(["demo", "--accounts", "200", "--no-serve"], empty_database_url, tmp_path).returncode == 0
    with engine.connect() as conn:
        before = conn.scalar(text("SELECT count(*) FROM work_orders"))
    assert before > 0  # the demo raised its day
    day = "2026-11-24"
    dry = run(["generate-orders", "--date", day, "--dry-run"], empty_database_url, tmp_path)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run: nothing written" in dry.stdout and "shutoff" in dry.stdout and "held back" in dry.stdout
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM work_orders")) == before
    real = run(
        ["generate-orders", "--date", day, "--rule", "moves", "--rule", "meter_test"],
        empty_database_url,
        tmp_path,
    )
    assert real.returncode == 0, real.stdout + real.stderr
    with engine.connect() as conn:
        after = conn.scalar(text("SELECT count(*) FROM work_orders"))
    again = run(
        ["generate-orders", "--date", day, "--rule", "moves", "--rule", "meter_test"],
        empty_database_url,
        tmp_path,
    )
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM work_orders")) == after
    assert "already there" in again.stdout or "held back" in again.stdout
    bad = run(["generate-orders", "--rule", "shutof"], empty_database_url, tmp_path)
    assert bad.returncode == 2 and "unknown rule shutof" in bad.stderr
    policy = tmp_path / "policy.toml"
    policy.write_text('[leak]\nfactor = "big"\n')
    env_run = subprocess.run(
        [sys.executable, "-m", "server.cli", "generate-orders", "--dry-run"],
        env={
            **os.environ,
            "DATABASE_URL": empty_database_url,
            "CURBSTOP_VAR_DIR": str(tmp_path),
            "CURBSTOP_POLICY_FILE": str(policy),
            "COLUMNS": "300",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert env_run.returncode == 2 and f"{policy}:2: leak.factor: expected a number" in env_run.stderr


@pytest.mark.slow
def test_plan_command_plans_and_publishes(empty_database_url, engine, tmp_path):
    """`curbstop plan --publish` plans the demo crew's day and dispatches the orders it placed."""
    assert run(["demo", "--accounts", "150", "--no-serve"], empty_database_url, tmp_path).returncode == 0
    from server.orders.models import WorkOrder

    with engine.begin() as conn:
        # The demo raised its own orders for today; this test plans only its six.
        raised = conn.execute(
            text("UPDATE work_orders SET status = 'cancelled' WHERE status = 'new'")
        ).rowcount
        assert raised > 0
        sps = conn.execute(text("SELECT id FROM service_points ORDER BY id LIMIT 6")).scalars().all()
        for i, sp in enumerate(sps):
            conn.execute(
                WorkOrder.__table__.insert().values(
                    order_type="reread",
                    status="new",
                    priority="reread",
                    service_point_id=sp,
                    required_skills=["read"],
                    estimated_minutes=10,
                    rule="test",
                    reason="",
                    idempotency_key=f"cli-plan-{i}",
                    notes="",
                    status_reason="",
                    outcome={},
                    created_by="t",
                    locked=False,
                    version=1,
                    scheduled_date=dt.date(2026, 12, 2),
                    created_at=dt.datetime.now(dt.UTC),
                    updated_at=dt.datetime.now(dt.UTC),
                )
            )
    result = run(
        ["plan", "--date", "2026-12-02", "--time-limit", "2", "--publish"], empty_database_url, tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM work_orders WHERE rule = 'test'")).scalars().all()
        dispatched = conn.execute(
            text("SELECT count(*) FROM work_orders WHERE status = 'dispatched'")
        ).scalar()
    assert statuses == ["dispatched"] * 6
    assert dispatched == 6 and "published: 6 orders dispatched" in result.stdout
    # Shift times are the utility's (America/Los_Angeles by default), the zone named; never UTC "Z" times.
    assert "start PST" in result.stdout and "Wednesday 2 December 2026" in result.stdout
    assert re.search(r"\d\d:\d\dZ", result.stdout) is None


def test_plan_table_shows_times_in_the_utility_zone() -> None:
    """A 07:00-15:30 America/Los_Angeles shift (15:00-23:30 UTC in December) shows as 07:00 and 15:30
    with the zone named in the headers, not as 15:00Z."""
    from zoneinfo import ZoneInfo

    from rich.console import Console

    from server.cli import plan_table

    route = {
        "technician_code": "T01",
        "technician_name": "Rosa Alvarez",
        "visits": [{}, {}],
        "start_at": "2026-12-02T15:00:00+00:00",
        "end_at": "2026-12-02T23:30:00+00:00",
        "travel_s": 3600,
        "idle_s": 0,
        "overtime_s": 0,
    }
    out = Console(record=True, width=200)
    out.print(
        plan_table(
            plan_id=3,
            plan_date=dt.date(2026, 12, 2),
            status="optimal",
            routes=[route],
            zone=ZoneInfo("America/Los_Angeles"),
        )
    )
    text = out.export_text()
    assert "07:00" in text and "15:30" in text and "15:00Z" not in text
    assert "start PST" in text and "America/Los_Angeles" in text and "Wednesday 2 December 2026" in text


@pytest.mark.slow
def test_demo_on_a_saturday_works_monday(empty_database_url, engine, tmp_path):
    """Run on a Saturday, the demo raises Monday's orders: a shut-off list awaiting approval, notice
    deliveries counted apart from shut-offs, and it prints the map page, API docs, CouchDB and every
    sign-in."""
    result = run(
        ["demo", "--accounts", "300", "--no-serve", "--today", "2026-11-28"], empty_database_url, tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Today is Saturday 28 November 2026, a weekend day; the demo works Monday 30 November 2026" in out
    with engine.connect() as conn:
        batches = conn.execute(
            text("SELECT id, status FROM shutoff_batches WHERE service_date = :d"),
            {"d": dt.date(2026, 11, 30)},
        ).all()
        by_type = dict(
            conn.execute(
                text(
                    "SELECT order_type, count(*) FROM work_orders WHERE scheduled_date = :d "
                    "AND created_by = 'demo' GROUP BY order_type"
                ),
                {"d": dt.date(2026, 11, 30)},
            ).all()
        )
    assert len(batches) == 1 and batches[0].status == "proposed"
    shutoffs = by_type["shut_off_nonpay"]
    assert shutoffs > 0
    noun = "shut-off" if shutoffs == 1 else "shut-offs"
    assert (
        f"{shutoffs} {noun} for non-payment awaiting a supervisor's approval (shut-off batch {batches[0].id})"
        in out
    )
    notices = by_type.get("notice_delivery", 0)
    if notices:
        assert f"{notices} notice deliver" in out
    assert re.search(r"dispatcher's board\)\s*│\s*http://127\.0\.0\.1:8000/ ", out), out
    for address in ("/docs", "/api/auth/token", "CouchDB"):
        assert address in out
    for user in ("admin", "dispatcher", "advisor", "supervisor", *(f"t{n:02d}" for n in range(1, 13))):
        assert f"│ {user} " in out, user


@pytest.mark.slow
@pytest.mark.couchdb
def test_demo_serves_with_couchdb_and_cleans_up(tmp_path):
    """`curbstop demo` starts its own CouchDB; a CSFR gets working credentials; stopping the demo stops CouchDB."""
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CURBSTOP_VAR_DIR": str(tmp_path / "var"), "COLUMNS": "200"}
    env.pop("DATABASE_URL", None)
    env.pop("COUCHDB_URL", None)
    with open(tmp_path / "demo.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "demo", "--accounts", "200", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        token = httpx.post(
            f"{base}/api/auth/token", data={"username": "t03", "password": "curbstop-demo"}
        ).json()
        session = httpx.get(
            f"{base}/api/sync/session", headers={"Authorization": f"Bearer {token['access_token']}"}
        ).json()
        assert session["database"] == "csfr-t03"
        db = httpx.get(
            f"{session['couchdb_url']}/{session['database']}", auth=(session["username"], session["password"])
        )
        assert db.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(session["couchdb_url"], timeout=1)
        except httpx.HTTPError:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"CouchDB at {session['couchdb_url']} still answers after the demo stopped")


def test_demo_couchdb_starts_with_a_secret_that_begins_with_a_dash(tmp_path, monkeypatch):
    """The demo's pouchdb-server admin secret is random URL-safe text, so it can begin with "-"; it must
    still reach the dev server as the password, not be parsed as an option."""
    from server import cli
    from server.config import get_settings

    monkeypatch.setenv("COUCHDB_URL", "")  # restored after the test; the launcher sets it
    (tmp_path / "couch-admin").write_text("-starts-with-a-dash")
    proc = cli._start_dev_couchdb(tmp_path)
    try:
        url = os.environ["COUCHDB_URL"]
        assert ":-starts-with-a-dash@" in url  # the admin credentials the server was started with
        import httpx

        session = httpx.get(f"{url}/_session", timeout=10).json()
        assert session["userCtx"]["name"] == "admin"  # the password was accepted
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        get_settings.cache_clear()


def test_disable_and_enable_user(empty_database_url, engine, tmp_path):
    """disable-user takes a user's access away (inactive, token generation moved on) and says what it
    revoked; enable-user lets them back; an unknown name exits 2 naming it."""
    made = run(
        ["create-user", "quinn", "--role", "csfr", "--password", "long-enough-password"],
        empty_database_url,
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    off = run(["disable-user", "quinn"], empty_database_url, tmp_path)
    assert off.returncode == 0, off.stderr
    assert "disabled quinn" in off.stdout and "0 API token(s) revoked" in off.stdout
    with engine.connect() as conn:
        row = conn.execute(text("SELECT active, token_generation FROM users WHERE username = 'quinn'")).one()
    assert not row.active and row.token_generation == 1
    on = run(["enable-user", "quinn"], empty_database_url, tmp_path)
    assert on.returncode == 0, on.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT active FROM users WHERE username = 'quinn'")).scalar_one()
    missing = run(["disable-user", "nobody"], empty_database_url, tmp_path)
    assert missing.returncode == 2 and "nobody" in missing.stderr
