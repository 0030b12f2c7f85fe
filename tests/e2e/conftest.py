"""One demo day served for real: a pouchdb-server, `curbstop demo` on the test's backend, `curbstop serve`.

The fixture starts every part as its user would (the README's commands, as subprocesses) and hands the
test signed-in clients for each office role, the station token and a read-only engine on the same
database for invariants that no API exposes (the audit trail against each order's status).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine

REPO = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "curbstop-demo"
ZONE = "America/Los_Angeles"


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` every 0.2 s; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoDay:
    """A served demo district and everything a test needs to act as each of its users."""

    base: str
    env: dict[str, str]
    tmp: Path
    database_url: str
    demo_output: str
    station_token: str
    engine: Engine
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, username: str) -> httpx.Client:
        """A client signed in as `username` (every demo user has the demo password)."""
        if username not in self.clients:
            c = httpx.Client(base_url=self.base, timeout=60)
            answer = c.post("/api/auth/token", data={"username": username, "password": DEMO_PASSWORD})
            assert answer.status_code == 200, answer.text
            c.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
            self.clients[username] = c
        return self.clients[username]

    def cli(self, *args: str, timeout_s: float = 300) -> str:
        """Run a `curbstop` command against the day's database; return what it printed."""
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=REPO,
        )
        assert done.returncode == 0, f"curbstop {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def wait_job(self, client: httpx.Client, job_id: int, timeout_s: float = 240) -> dict:
        """Poll a background job until it finishes; fail with its error if it failed."""
        state: dict = {}

        def finished() -> bool:
            state.update(client.get(f"/api/jobs/{job_id}").json())
            return state.get("status") in ("succeeded", "failed")

        wait_for(finished, timeout_s, f"job {job_id}")
        assert state["status"] == "succeeded", state
        return state


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def demo_day(empty_database_url: str, tmp_path: Path) -> Iterator[DemoDay]:
    """`curbstop demo --no-serve` on a small district, then `curbstop serve` with its sync loop."""
    from mobile.sync.devserver import start_pouchdb_server

    couch = start_pouchdb_server(data_dir=tmp_path / "couch")
    env = {
        **os.environ,
        "DATABASE_URL": empty_database_url,
        "CURBSTOP_VAR_DIR": str(tmp_path / "var"),
        "COUCHDB_URL": couch.url_with_credentials,
        "CURBSTOP_TIMEZONE": ZONE,
        "COLUMNS": "200",  # rich tables print whole lines
    }
    demo = subprocess.run(
        [sys.executable, "-m", "server.cli", "demo", "--accounts", "800", "--no-serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "server.log", "w") as log:  # the child keeps its own descriptor
        server = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    engine = create_engine(empty_database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    day = DemoDay(
        base=base,
        env=env,
        tmp=tmp_path,
        database_url=empty_database_url,
        demo_output=demo.stdout,
        station_token=(tmp_path / "var" / "demo" / "station-token.txt").read_text().strip(),
        engine=engine,
    )
    try:
        wait_for(lambda: _healthy(base), 180, "the server")
        yield day
    finally:
        for c in day.clients.values():
            c.close()
        engine.dispose()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        couch.stop()
