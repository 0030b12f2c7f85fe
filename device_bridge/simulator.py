"""A virtual hand-held on a pty: runs the device side of the protocol in its own process.

The simulator opens a pseudo-terminal, prints the slave path (and writes it to ``<state-dir>/port``)
and talks on the master side. The station opens the slave path like any serial port.

- Pacing: bytes in both directions take 10 bits per byte at the configured baud rate, and every
  answer starts ``turnaround_s`` after the frame that caused it, as on a real hand-held.
- Faults (seeded RNG, so a run can be replayed): flip a bit in a frame, drop a frame, send a frame
  twice, put garbage on the line, and hang up mid-transfer (go silent for ``hangup_s``, losing the
  bytes in flight, then come back as if re-docked).
- Reading between docks (``walk``): when a dock has loaded route records the device has not read yet,
  the reader takes it out of the cradle (the line goes silent for ``walk_s``), reads every such record
  (`device_bridge.sample.walk_reads`: readings inside each record's limits, optional skips and misreads)
  and docks it again, where the station unloads the reads. A record stays read while its route stays in
  the device (``read_log.json``), so a route reloaded after the upload is not read twice.
- State directory: ``reads.jsonl`` (reads waiting to be unloaded), ``routes.jsonl`` (routes installed,
  replaced atomically and only whole), ``read_log.json`` (route records already read),
  ``cleared/<sha256>.jsonl`` (batches the station committed) and ``status.json`` (counters, hang-ups and
  walks, for tests and people).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import select
import signal
import time
import tty
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contracts.handheld import RouteRecord, decode_routes, encode_lines
from device_bridge.frames import Frame, FrameReader, MsgType, encode
from device_bridge.protocol import (
    ClearReads,
    ClockSet,
    DeviceInfo,
    DeviceSession,
    DeviceStore,
    InstallRoutes,
    Timing,
    sha256_hex,
)
from device_bridge.sample import sample_reads, sample_routes, walk_reads
from device_bridge.virtual_link import BITS_PER_BYTE


@dataclass
class SimConfig:
    """Everything the simulator can be told."""

    state_dir: Path
    device_id: str = "HH-0001"
    reader_id: str = "RDR1"
    walk: bool = False  # read loaded route records between docks (the command line's default is on)
    walk_s: float = 10.0  # how long the device is out of the cradle for a walk
    skip_prob: float = 0.0  # per meter walked: skipped with a code
    misread_prob: float = 0.0  # per meter walked: a reading outside the record's limits
    baud: int = 115_200
    turnaround_s: float = 0.016
    sample_reads: int = 0  # when reads.jsonl does not exist yet, make this many sample reads
    seed: int = 0
    flip_prob: float = 0.0  # per frame, each direction
    drop_prob: float = 0.0  # per frame, each direction
    dup_prob: float = 0.0  # per frame sent
    garbage_prob: float = 0.0  # per frame sent: 1-40 random bytes before it
    hangups: int = 0  # at most this many hang-ups
    hangup_prob: float = 0.0  # per DATA frame sent or received while hang-ups remain
    hangup_s: float = 0.3  # how long the line stays dead
    timer_floor_s: float = 0.25
    print_port: bool = True


@dataclass
class SimStatus:
    """What status.json holds."""

    device_id: str
    port: str = ""
    pid: int = 0
    reads_pending: int = 0
    routes_sha256: str = ""
    routes_installed: int = 0
    cleared_batches: list[str] = field(default_factory=list)
    hangups: list[dict[str, Any]] = field(default_factory=list)
    frames_in: int = 0
    frames_out: int = 0
    flipped: int = 0
    dropped: int = 0
    duplicated: int = 0
    garbage_bursts: int = 0
    discarded_bytes: int = 0
    sessions_done: int = 0
    clock_set_utc_ms: int = 0
    walks: int = 0  # times the reader took the device out to read its route
    reads_taken: int = 0  # reads and skips taken on those walks
    walking: bool = False  # out of the cradle right now


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Simulator:
    """The pty, the paced line model, the fault injector and the device protocol machine."""

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        (cfg.state_dir / "cleared").mkdir(exist_ok=True)
        self.reads_path = cfg.state_dir / "reads.jsonl"
        self.routes_path = cfg.state_dir / "routes.jsonl"
        self.read_log_path = cfg.state_dir / "read_log.json"
        self.read_log: dict[str, str] = (
            dict(json.loads(self.read_log_path.read_text())) if self.read_log_path.exists() else {}
        )
        if not self.reads_path.exists():
            reads = sample_reads(
                cfg.device_id, sample_routes(cfg.sample_reads, seed=cfg.seed + 1), seed=cfg.seed + 2
            )
            _atomic_write(self.reads_path, encode_lines(reads))
        routes = self.routes_path.read_bytes() if self.routes_path.exists() else b""
        self.timing = Timing.for_link(cfg.baud, cfg.turnaround_s, floor_s=cfg.timer_floor_s)
        self.store = DeviceStore(
            DeviceInfo(
                cfg.device_id,
                model="curbstop-sim",
                firmware="1.0",
                routes_sha256=sha256_hex(routes) if routes else "",
            ),
            reads=self.reads_path.read_bytes(),
        )
        self.clock_skew_ms = 0
        self.machine = self._new_machine()
        self.status = SimStatus(device_id=cfg.device_id, pid=os.getpid())
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.slave_fd)  # no echo, no CR/LF translation: a clean 8-bit line
        os.set_blocking(self.master_fd, False)
        self.port = os.ttyname(self.slave_fd)
        self.status.port = self.port
        self.reader = FrameReader()
        self._byte_s = BITS_PER_BYTE / cfg.baud
        self._rx: deque[tuple[float, bytes]] = deque()  # (time the last byte has arrived, bytes)
        self._rx_line_at = 0.0
        self._tx: bytearray = bytearray()
        self._tx_ready: list[tuple[float, int]] = []  # (time this many more bytes may start, count)
        self._tx_line_at = 0.0
        self._silent_until = 0.0
        self._walk_due: float | None = None  # when the reader takes the device out to read
        self._walking_until = 0.0
        self._stop = False
        self._dirty = True

    # -- device clock and storage -------------------------------------------------------------------

    def _clock_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_skew_ms

    def _new_machine(self) -> DeviceSession:
        return DeviceSession(self.store, self.timing, self._clock_ms)

    def _handle_events(self) -> None:
        for event in self.machine.take_events():
            if isinstance(event, ClearReads):
                _atomic_write(self.cfg.state_dir / "cleared" / f"{event.sha256}.jsonl", self.store.reads)
                _atomic_write(self.reads_path, b"")
                self.machine.reads_cleared(event.sha256)
                self.status.cleared_batches.append(event.sha256)
            elif isinstance(event, InstallRoutes):
                _atomic_write(self.routes_path, event.data)  # whole or not at all
                self.machine.routes_installed(event.sha256)
                self.status.routes_installed += 1
                self._forget_unloaded_routes()
            elif isinstance(event, ClockSet):
                self.clock_skew_ms = event.utc_ms - int(time.time() * 1000)
                self.status.clock_set_utc_ms = event.utc_ms
            self._dirty = True

    # -- reading the route between docks ------------------------------------------------------------

    @staticmethod
    def _record_key(r: RouteRecord) -> str:
        return f"{r.route_id}|{r.cycle}|{r.meter_serial}|{r.register_number}"

    def routes(self) -> list[RouteRecord]:
        """The route records installed now."""
        data = self.routes_path.read_bytes() if self.routes_path.exists() else b""
        return decode_routes(data) if data.strip() else []

    def unread(self) -> list[RouteRecord]:
        """Installed route records not read yet."""
        return [r for r in self.routes() if self._record_key(r) not in self.read_log]

    def _forget_unloaded_routes(self) -> None:
        # A record stays read while its route stays in the device; one removed and loaded again later
        # (next month's read of the same book) is read again.
        keep = {self._record_key(r) for r in self.routes()}
        self.read_log = {k: v for k, v in self.read_log.items() if k in keep}
        _atomic_write(self.read_log_path, json.dumps(self.read_log, indent=0).encode())

    def _plan_walk(self, now: float) -> None:
        if self.cfg.walk and self._walk_due is None and self.unread():
            # Leave once the last answer (BYE_OK) is on the line.
            self._walk_due = now + 4 * self.cfg.turnaround_s + 0.05

    def _walk(self, now: float) -> None:
        """Take the device out, read every unread record, and come back `walk_s` later."""
        self._walk_due = None
        todo = self.unread()
        if not todo:
            return
        start = dt.datetime.fromtimestamp(self._clock_ms() / 1000, dt.UTC)
        reads = walk_reads(
            self.cfg.device_id,
            todo,
            reader_id=self.cfg.reader_id,
            start=start,
            duration_s=self.cfg.walk_s,
            rng=self.rng,
            skip_prob=self.cfg.skip_prob,
            misread_prob=self.cfg.misread_prob,
        )
        self.store.reads += encode_lines(reads)
        _atomic_write(self.reads_path, self.store.reads)
        for r in todo:
            self.read_log[self._record_key(r)] = start.isoformat()
        _atomic_write(self.read_log_path, json.dumps(self.read_log, indent=0).encode())
        self.status.walks += 1
        self.status.reads_taken += len(reads)
        # Out of the cradle: the station hears nothing until the device is docked again.
        self._silent_until = self._walking_until = now + self.cfg.walk_s
        self._tx.clear()
        self._tx_ready.clear()
        self._rx.clear()
        self.reader.clear()
        self._dirty = True

    def write_status(self) -> None:
        """Write status.json (atomically)."""
        s = self.status
        s.reads_pending = self.machine.ident().reads_pending
        s.routes_sha256 = self.store.info.routes_sha256
        s.discarded_bytes = self.reader.discarded_bytes
        s.walking = time.monotonic() < self._walking_until
        _atomic_write(self.cfg.state_dir / "status.json", json.dumps(asdict(s), indent=1).encode())
        self._dirty = False

    # -- faults -------------------------------------------------------------------------------------

    def _maybe_hang_up(self, frame: Frame, direction: str, now: float) -> bool:
        cfg = self.cfg
        if frame.type is not MsgType.DATA or len(self.status.hangups) >= cfg.hangups:
            return False
        if self.rng.random() >= cfg.hangup_prob:
            return False
        phase = "upload" if direction == "out" else "download"
        self.status.hangups.append({"phase": phase, "offset": frame.seq, "at_s": round(now, 3)})
        self._silent_until = now + cfg.hangup_s
        self._tx.clear()
        self._tx_ready.clear()
        self._rx.clear()
        self.reader.clear()
        self._dirty = True
        return True

    def _flip(self, raw: bytearray) -> None:
        bit = self.rng.randrange(len(raw) * 8)
        raw[bit // 8] ^= 1 << (bit % 8)
        self.status.flipped += 1

    # -- the line -----------------------------------------------------------------------------------

    def _read_master(self, now: float) -> None:
        try:
            chunk = os.read(self.master_fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO: nobody has the slave open yet
        if not chunk or now < self._silent_until:
            return
        # Pieces of 64 bytes (5.6 ms at 115,200 baud) so frames inside a big write arrive one by one.
        self._rx_line_at = max(self._rx_line_at, now)
        for i in range(0, len(chunk), 64):
            piece = chunk[i : i + 64]
            self._rx_line_at += len(piece) * self._byte_s
            self._rx.append((self._rx_line_at, piece))

    def _deliver(self, now: float) -> None:
        while self._rx and self._rx[0][0] <= now:
            _, chunk = self._rx.popleft()
            raw = bytearray(chunk)
            if self.cfg.flip_prob and self.rng.random() < self.cfg.flip_prob * len(raw) / 1014:
                self._flip(raw)
            for frame in self.reader.feed(bytes(raw)):
                if self.cfg.drop_prob and self.rng.random() < self.cfg.drop_prob:
                    self.status.dropped += 1
                    continue
                if self._maybe_hang_up(frame, "in", now):
                    return
                self.status.frames_in += 1
                if frame.type is MsgType.BYE:
                    self.status.sessions_done += 1
                    self._dirty = True
                    self._plan_walk(now)
                self.machine.on_frame(frame, now)
                self._handle_events()
                self._queue_out(now)

    def _queue_out(self, now: float) -> None:
        cfg = self.cfg
        for frame in self.machine.take_frames():
            if self._maybe_hang_up(frame, "out", now):
                return
            self.status.frames_out += 1
            if cfg.drop_prob and self.rng.random() < cfg.drop_prob:
                self.status.dropped += 1
                continue
            raw = bytearray(encode(frame))
            if cfg.flip_prob and self.rng.random() < cfg.flip_prob:
                self._flip(raw)
            copies = 2 if cfg.dup_prob and self.rng.random() < cfg.dup_prob else 1
            self.status.duplicated += copies - 1
            if cfg.garbage_prob and self.rng.random() < cfg.garbage_prob:
                garbage = bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 41)))
                self._tx += garbage
                self._tx_ready.append((now + cfg.turnaround_s, len(garbage)))
                self.status.garbage_bursts += 1
            for _ in range(copies):
                self._tx += raw
                self._tx_ready.append((now + cfg.turnaround_s, len(raw)))

    def _pump_tx(self, now: float) -> None:
        """Write bytes to the master no faster than the line would carry them."""
        allowed = 0
        ready = 0
        for t, n in self._tx_ready:
            if t > now:
                break
            ready += n
        if not ready:
            return
        first_ready = self._tx_ready[0][0]
        self._tx_line_at = max(self._tx_line_at, first_ready)
        allowed = min(ready, int((now - self._tx_line_at) / self._byte_s))
        if allowed <= 0:
            return
        try:
            written = os.write(self.master_fd, bytes(self._tx[:allowed]))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        del self._tx[:written]
        self._tx_line_at += written * self._byte_s
        left = written
        while left and self._tx_ready:
            t, n = self._tx_ready[0]
            if n <= left:
                self._tx_ready.pop(0)
                left -= n
            else:
                self._tx_ready[0] = (t, n - left)
                left = 0

    # -- main loop ----------------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        """Finish the loop (SIGTERM / SIGINT)."""
        self._stop = True

    def run(self) -> None:
        """Serve until stopped."""
        self.write_status()
        _atomic_write(self.cfg.state_dir / "port", self.port.encode() + b"\n")
        if self.cfg.print_port:
            print(self.port, flush=True)
        was_silent = False
        last_status = 0.0
        self._plan_walk(time.monotonic())  # routes loaded before a restart and not read yet
        while not self._stop:
            now = time.monotonic()
            if self._walk_due is not None and now >= self._walk_due and not self._tx:
                self._walk(now)
            silent = now < self._silent_until
            if was_silent and not silent:
                self.machine = self._new_machine()  # back in the cradle: a fresh session, same storage
                self._dirty = True
                self.reader.clear()
                self._tx_line_at = now
                self._rx_line_at = now
            was_silent = silent
            self._read_master(now)
            if not silent:
                self._deliver(now)
                self.machine.on_tick(now)
                self._handle_events()
                self._queue_out(now)
                self._pump_tx(now)
            else:
                self.machine.take_frames()  # the cable is out: what the device says is lost
            if self._dirty and now - last_status > 0.05:
                self.write_status()
                last_status = now
            wait = 0.002 if (self._tx or self._rx) else 0.01
            select.select([self.master_fd], [], [], wait)
        self.write_status()
        os.close(self.master_fd)
        os.close(self.slave_fd)


def run_simulator(cfg: SimConfig) -> None:
    """Run a simulator in this process until SIGTERM or SIGINT."""
    sim = Simulator(cfg)
    signal.signal(signal.SIGTERM, sim.stop)
    signal.signal(signal.SIGINT, sim.stop)
    sim.run()


if __name__ == "__main__":
    from device_bridge.cli import simulator_main

    simulator_main()
