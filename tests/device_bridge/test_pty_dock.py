"""End to end over real ptys: simulator processes (the hand-helds) and the station daemon process."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from contracts.handheld import decode_reads
from device_bridge.sample import sample_routes
from tests.device_bridge.conftest import Procs, status, wait_for
from tests.device_bridge.server_stub import HandheldServerStub


def _device_reads(state: Path) -> dict[str, object]:
    """Every read the simulated device started with, by idempotency key (pending or cleared)."""
    reads = decode_reads((state / "reads.jsonl").read_bytes())
    for batch in (state / "cleared").glob("*.jsonl"):
        reads += decode_reads(batch.read_bytes())
    return {r.idempotency_key: r.model_dump(mode="json") for r in reads}


def _diag(procs: Procs, *states: Path) -> str:
    log = procs.tmp / "bridge.log"
    tail = log.read_text().splitlines()[-30:] if log.exists() else []
    return "\n".join([*(str(status(s)) for s in states), *tail])


def test_one_dock_unloads_reads_once_and_loads_routes_whole(procs: Procs, server: HandheldServerStub):
    """A clean dock: every read reaches the server once, the device clears, the routes install byte for byte."""
    server.routes["HH-A"] = sample_routes(60, seed=5)
    port, state = procs.simulator("HH-A", reads=40)
    original = _device_reads(state)
    procs.station([port], server.url)
    wait_for(
        lambda: status(state)["sessions_done"] >= 1, 30, "the dock to finish", lambda: _diag(procs, state)
    )
    wait_for(lambda: len(server.reads) == 40, 10, "the reads to be posted")
    assert server.reads == original
    assert status(state)["reads_pending"] == 0
    assert (state / "routes.jsonl").read_bytes() == server.routes_blob("HH-A")
    log = (procs.tmp / "bridge.log").read_text()
    for words in ("docked", "spooled durably", "cleared batch", "posted 40 reads", "loaded routes", "done"):
        assert words in log


@pytest.mark.slow
def test_fifty_cable_pulls_lose_nothing_and_duplicate_nothing(procs: Procs, server: HandheldServerStub):
    """5 hand-helds, 10 hang-ups each at random points of upload and download: every read stored exactly once
    on the server, every route batch installed whole, and both transfer directions were interrupted."""
    names = [f"HH-P{i}" for i in range(5)]
    ports, states = [], []
    for i, name in enumerate(names):
        server.routes[name] = sample_routes(150, route_id=f"R{i:03d}", seed=10 + i)
        port, state = procs.simulator(
            name, "--hangups", "10", "--hangup-prob", "0.12", "--hangup-ms", "300", reads=120, seed=100 + i
        )
        ports.append(port)
        states.append(state)
    originals = {}
    for s in states:
        originals.update(_device_reads(s))
    procs.station(ports, server.url)

    def all_done() -> bool:
        return all(
            status(s)["routes_installed"] >= 1
            and status(s)["reads_pending"] == 0
            and len(status(s)["hangups"]) == 10
            for s in states
        )

    wait_for(all_done, 120, "every device to finish through its 10 hang-ups", lambda: _diag(procs, *states))
    wait_for(lambda: len(server.reads) >= len(originals), 15, "every read to be posted")
    hangups = [h for s in states for h in status(s)["hangups"]]
    assert len(hangups) == 50
    assert {h["phase"] for h in hangups} == {"upload", "download"}
    assert server.reads == originals  # each key once, with the exact content the device took
    for name, s in zip(names, states, strict=True):
        assert (s / "routes.jsonl").read_bytes() == server.routes_blob(name)
    log = (procs.tmp / "bridge.log").read_text()
    assert "lost device" in log and "resumed at byte" in log


def test_corrupted_duplicated_and_dropped_frames_and_garbage_are_survived(
    procs: Procs, server: HandheldServerStub
):
    """Bit flips, drops, duplicates and garbage bursts on the line: retransmission delivers everything intact."""
    server.routes["HH-N"] = sample_routes(80, seed=7)
    port, state = procs.simulator(
        "HH-N", "--flip", "0.03", "--drop", "0.02", "--dup", "0.03", "--garbage", "0.05", reads=60, seed=9
    )
    original = _device_reads(state)
    procs.station([port], server.url)
    wait_for(
        lambda: status(state)["sessions_done"] >= 1,
        60,
        "the noisy dock to finish",
        lambda: _diag(procs, state),
    )
    wait_for(lambda: len(server.reads) == 60, 10, "the reads to be posted")
    s = status(state)
    # The faults are drawn per frame, and how many frames a dock takes varies with timing: a short run
    # may escape one kind; at least three kinds must have hit the line.
    kinds = {k: s[k] for k in ("flipped", "garbage_bursts", "duplicated", "dropped")}
    assert sum(v > 0 for v in kinds.values()) >= 3, kinds
    assert server.reads == original
    assert (state / "routes.jsonl").read_bytes() == server.routes_blob("HH-N")


def test_server_down_reads_are_spooled_and_delivered_later_even_across_a_station_crash(
    procs: Procs, server: HandheldServerStub
):
    """Server down at dock time: reads go to the spool and the device clears; the station is killed;
    a new station on the same spool delivers every read once when the server is back."""
    server.routes["HH-S"] = sample_routes(30, seed=3)
    server.stop()
    port, state = procs.simulator("HH-S", reads=50)
    original = _device_reads(state)
    station = procs.station([port], server.url)
    wait_for(
        lambda: status(state)["sessions_done"] >= 1, 30, "the dock to finish", lambda: _diag(procs, state)
    )
    assert status(state)["reads_pending"] == 0, "the device clears once the spool has the reads"
    assert status(state)["routes_installed"] == 0, "no routes without the server"
    assert server.reads == {}
    station.send_signal(signal.SIGKILL)  # no clean shutdown: only the fsynced spool survives
    station.wait()
    log = (procs.tmp / "bridge.log").read_text()
    assert "stay spooled" in log and "routes not loaded" in log
    server.start()  # same port as before
    procs.station([port], server.url)
    wait_for(lambda: len(server.reads) == 50, 20, "the spool to drain", lambda: _diag(procs, state))
    time.sleep(0.5)
    assert server.reads == original and server.duplicates == 0


def test_the_simulator_paces_bytes_to_the_baud_rate(procs: Procs, server: HandheldServerStub):
    """At 57,600 baud a dock cannot finish faster than its bytes take on the line (10 bits per byte)."""
    server.routes["HH-T"] = sample_routes(20, seed=4)
    port, state = procs.simulator("HH-T", baud=57_600, reads=20)
    reads_bytes = (state / "reads.jsonl").stat().st_size
    routes_bytes = len(server.routes_blob("HH-T"))
    start = time.monotonic()
    procs.station([port], server.url, baud=57_600)
    wait_for(lambda: status(state)["sessions_done"] >= 1, 30, "the dock to finish")
    elapsed = time.monotonic() - start
    # Upload bytes cross the simulator's paced transmitter and download bytes its paced receiver.
    assert elapsed >= (reads_bytes + routes_bytes) * 10 / 57_600
