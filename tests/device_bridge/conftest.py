"""Fixtures for the device bridge: the HTTP stub, and real processes joined by real ptys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.device_bridge.server_stub import HandheldServerStub

REPO = Path(__file__).resolve().parents[2]
TEST_BAUD = 921_600  # fast enough to keep the suite short; pacing tests use their own rates
TEST_TURNAROUND_MS = 2.0
TEST_FLOOR_MS = 200.0


@pytest.fixture
def server() -> Iterator[HandheldServerStub]:
    """A real HTTP server on a free loopback port, recording uploads idempotently."""
    stub = HandheldServerStub()
    stub.start()
    yield stub
    stub.stop()


class Procs:
    """Processes a test started; every one is stopped (by pid) at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[str]] = []

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "error"}
        with open(self.tmp / log_name, "a") as err:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        self.procs.append(proc)
        return proc

    def simulator(
        self,
        name: str,
        *extra: str,
        baud: int = TEST_BAUD,
        reads: int = 30,
        seed: int = 0,
        walk_s: float | None = None,
    ) -> tuple[str, Path]:
        """Start a simulated hand-held; return (pty path, state dir).

        With `walk_s` it reads the routes it is loaded with between docks (a walk of that many seconds);
        without, it stays in the cradle and holds only its `reads` synthetic reads.
        """
        state = self.tmp / name
        walk = ["--walk", "--walk-s", str(walk_s)] if walk_s is not None else ["--no-walk"]
        proc = self._spawn(
            [
                sys.executable,
                "-m",
                "device_bridge.simulator",
                "--state-dir",
                str(state),
                "--device-id",
                name,
                "--baud",
                str(baud),
                "--turnaround-ms",
                str(TEST_TURNAROUND_MS),
                "--timer-floor-ms",
                str(TEST_FLOOR_MS),
                "--reads",
                str(reads),
                "--seed",
                str(seed),
                *walk,
                *extra,
            ],
            f"{name}.stderr",
        )
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/"), f"simulator printed {port!r}; see {self.tmp / (name + '.stderr')}"
        return port, state

    def station(
        self, ports: list[str], server_url: str, *extra: str, baud: int = TEST_BAUD
    ) -> subprocess.Popen[str]:
        """Start the docking-station daemon on the given ports."""
        args = [sys.executable, "-m", "device_bridge.station"]
        for p in ports:
            args += ["--port", p]
        args += [
            "--server", server_url, "--token", "station-token",
            "--spool", str(self.tmp / "spool.db"), "--log", str(self.tmp / "bridge.log"),
            "--baud", str(baud), "--turnaround-ms", str(TEST_TURNAROUND_MS),
            "--timer-floor-ms", str(TEST_FLOOR_MS), "--retry-base-s", "0.2", "--retry-max-s", "1",
            "--no-progress", *extra,
        ]  # fmt: skip
        return self._spawn(args, "station.stderr")

    def stop_all(self) -> None:
        """SIGTERM each process by pid, then wait; SIGKILL any that will not go."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Start simulators and stations as separate processes; stopped at teardown."""
    p = Procs(tmp_path)
    yield p
    p.stop_all()


def status(state_dir: Path) -> dict[str, Any]:
    """A simulator's status.json."""
    return dict(json.loads((state_dir / "status.json").read_text()))


def wait_for(
    check: Callable[[], bool], timeout_s: float, what: str, diag: Callable[[], str] = lambda: ""
) -> None:
    """Poll `check` every 0.1 s until true; fail naming `what` after `timeout_s`."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}\n{diag()}")
