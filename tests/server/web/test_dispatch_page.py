"""The dispatcher's map page in real headless Chromium: it signs in with a token and draws the plan."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from server.orders.models import WorkOrder

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (scripts/setup.sh installs it)")
        pytest.skip("chromium is not installed (make setup installs it)")
    return path


def test_plan_map_renders_routes_and_unassigned(tmp_path):
    """A planned day shows each CSFR's route on the map and in the table, with unassigned work and reasons."""
    chromium = _chromium()
    db_url = f"sqlite:///{tmp_path / 'web.db'}"
    env = {**os.environ, "DATABASE_URL": db_url, "CURBSTOP_VAR_DIR": str(tmp_path / "var")}
    env.pop("COUCHDB_URL", None)
    subprocess.run(
        [sys.executable, "-m", "server.cli", "demo", "--accounts", "150", "--no-serve"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    engine = create_engine(db_url)
    day = dt.date(2026, 12, 2)
    with engine.begin() as conn:
        sps = conn.execute(text("SELECT id FROM service_points ORDER BY id LIMIT 40")).scalars().all()
        for i, sp in enumerate(sps):
            skills = ["meter_test", "emergency"] if i == 0 else ["read"]  # no demo CSFR has both: unassigned
            conn.execute(
                WorkOrder.__table__.insert().values(
                    order_type="reread",
                    status="new",
                    priority="reread",
                    service_point_id=sp,
                    required_skills=skills,
                    estimated_minutes=10,
                    rule="test",
                    reason="",
                    idempotency_key=f"web-{i}",
                    notes="",
                    status_reason="",
                    outcome={},
                    created_by="t",
                    locked=False,
                    version=1,
                    scheduled_date=day,
                    created_at=dt.datetime.now(dt.UTC),
                    updated_at=dt.datetime.now(dt.UTC),
                )
            )
    engine.dispose()
    planned = subprocess.run(
        [sys.executable, "-m", "server.cli", "plan", "--date", day.isoformat(), "--time-limit", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert planned.returncode == 0, planned.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        token = httpx.post(
            f"{base}/api/auth/token", data={"username": "dispatcher", "password": "curbstop-demo"}
        ).json()
        plan = httpx.get(
            f"{base}/api/dispatch/plans", headers={"Authorization": f"Bearer {token['access_token']}"}
        ).json()[0]
        url = f"{base}/web/dispatch.html#token={token['access_token']}&plan={plan['id']}"
        profile = tmp_path / "chromium-profile"
        common = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1400,800",
            "--virtual-time-budget=15000",
        ]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        assert 'data-rendered="yes"' in dom, dom[-2000:]
        routes_with_work = [r for r in plan["routes"] if r["visits"]]
        assert dom.count("<polyline") == len(plan["routes"]) and routes_with_work
        for route in routes_with_work:
            assert route["technician_code"] in dom
        assert "no skilled technician" in dom
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot = SHOTS / "dispatch-plan-map.png"
        subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
        assert shot.stat().st_size > 10_000
        # The root of the server leads to the page.
        assert httpx.get(base, follow_redirects=False).headers["location"] == "/web/dispatch.html"
    finally:
        server.terminate()
        server.wait(timeout=30)
