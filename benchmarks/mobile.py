"""Field app: cold start to today's route with 200 orders in the local store, and time to open an order.

Each run is a fresh Python process (a real cold start: imports, window, store, first frame) on a
private Xvfb display at 1280x800. Writes the "mobile" section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_section

ORDERS = 200
RUNS = 5
OPENS = 20


def _xvfb() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("Xvfb")
    if binary is None:
        raise SystemExit("Xvfb is not installed: run scripts/setup.sh")
    for number in range(120, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            proc = subprocess.Popen(
                [binary, f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while not Path(f"/tmp/.X11-unix/X{number}").exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"Xvfb :{number} did not start")
                time.sleep(0.05)
            return proc, f":{number}"
    raise SystemExit("no free X display")


def _prepare(data_dir: Path) -> None:
    from mobile.core.demo import demo_orders
    from mobile.core.settings import AppSettings, SettingsFile, SyncSession
    from mobile.sync import Store

    store = Store(data_dir / "tablet.sqlite")
    for order in demo_orders(ORDERS):
        store.put(order.to_couch())
    store.close()
    SettingsFile(data_dir / "settings.json").save(
        AppSettings(
            username="bench",
            session=SyncSession("http://127.0.0.1:9", "csfr-t05", "u", "p", 5, "T05", "UTC"),
        )
    )


def main() -> None:
    """Measure and write the report section."""
    xvfb, display = _xvfb()
    colds: list[float] = []
    opens: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            _prepare(data_dir)
            env = {**os.environ, "DISPLAY": display, "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1"}
            for run in range(RUNS):
                env["CURBSTOP_BENCH_T0"] = repr(time.time())
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.mobile_probe", str(data_dir), str(OPENS)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=180,
                    check=False,
                )
                line = next((ln for ln in done.stdout.splitlines() if ln.startswith("{")), None)
                if line is None:
                    raise SystemExit(f"probe run {run} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
                result = json.loads(line)
                assert result["stops"] == ORDERS, result
                colds.append(result["cold_start_ms"])
                opens.extend(result["open_ms"])
                print(f"run {run}: cold start {result['cold_start_ms']:.0f} ms", flush=True)
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    opens.sort()
    p95 = opens[int(0.95 * (len(opens) - 1))]
    body = f"""
Cold start = a new Python process (imports, Kivy window on Xvfb 1280x800, SQLite store, route model)
to the first frame of today's route with **{ORDERS} orders** in the local store; {RUNS} runs.
Open an order = tap to the frame that shows its detail (facts, meters, hazards); {len(opens)} opens
over {RUNS} processes (the first open in each process also builds the screen and loads its .kv).

| measure | median | min | max | p95 |
|---|---|---|---|---|
| cold start to route (ms) | {statistics.median(colds):.0f} | {min(colds):.0f} | {max(colds):.0f} | - |
| open an order (ms) | {statistics.median(opens):.1f} | {min(opens):.1f} | {max(opens):.1f} | {p95:.1f} |

Software rendering (Mesa llvmpipe under Xvfb), so a tablet's GPU draws faster; the store work
(three prefix scans and pydantic parsing of {ORDERS} orders) is the same.
"""
    path = write_section("mobile", "Field app", body)
    print(body)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
