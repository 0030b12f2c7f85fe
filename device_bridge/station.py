"""Docking-station daemon: watch serial ports; on a dock unload, spool, commit, post, load routes.

One thread per port runs a `StationSession` over a `SerialTransport`; one `Sender` thread drains the
spool to the server. The screen shows a rich progress bar per port; the log file gets one plain line per
thing a supervisor cares about (dock, reads spooled, cleared, posted, routes loaded, link lost).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from contracts.handheld import RecordLineError, decode_reads
from device_bridge.frames import FrameReader, encode
from device_bridge.protocol import (
    Identified,
    ReadsCleared,
    ReadsReceived,
    Resumed,
    RoutesLoaded,
    RoutesNeeded,
    SessionDone,
    SessionLost,
    StationSession,
    Timing,
)
from device_bridge.spool import Sender, ServerClient, ServerError, Spool
from device_bridge.transport import LinkError, Port, SerialTransport

log = logging.getLogger("curbstop.bridge")


@dataclass
class StationConfig:
    """Everything the daemon can be told."""

    ports: list[str]
    server_url: str
    token: str
    spool_path: Path = Path("var/bridge/spool.db")
    log_path: Path = Path("var/bridge/bridge.log")
    baud: int = 115_200
    turnaround_s: float = 0.016  # the slowest hand-held's answer delay, sets the timers
    timer_floor_s: float = 0.25
    http_timeout_s: float = 5.0
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    routes_retry_s: float = 30.0  # a docked device whose routes could not be loaded is tried again this often
    progress: bool = True


@dataclass
class PortStatus:
    """What the screen shows for one port."""

    port: str
    device_id: str = ""
    state: str = "opening"
    what: str = ""
    done: int = 0
    total: int = 0
    docks: int = 0
    reads_spooled: int = 0
    routes_loaded: int = 0
    lost: int = 0
    errors: list[str] = field(default_factory=list)


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class PortWorker(threading.Thread):
    """Runs the station protocol on one port, reopening it if it fails."""

    def __init__(
        self,
        url: str,
        cfg: StationConfig,
        timing: Timing,
        spool: Spool,
        client: ServerClient,
        sender: Sender,
        partials: dict[str, bytearray],
    ) -> None:
        super().__init__(name=f"port:{url}", daemon=True)
        self.url = url
        self.cfg = cfg
        self.timing = timing
        self.spool = spool
        self.client = client
        self.sender = sender
        self.partials = partials
        self.status = PortStatus(url)
        self._halt = threading.Event()
        self._routes_owed_at: float | None = None  # when to try loading the docked device's routes again
        self._last_route_error: tuple[str, str] | None = None

    def stop(self) -> None:
        """Leave the loop at the next read timeout."""
        self._halt.set()

    def open_port(self) -> Port:
        """Open the transport (a seam for tests that inject another Port)."""
        return SerialTransport(self.url, baud=self.cfg.baud)

    def run(self) -> None:
        """Open, serve, and reopen after a port failure, until stopped."""
        while not self._halt.is_set():
            try:
                port = self.open_port()
            except LinkError as exc:
                self.status.state = "port unavailable"
                log.warning("%s", exc)
                self._halt.wait(2.0)
                continue
            log.info("port %s open at %d baud", self.url, self.cfg.baud)
            try:
                self.serve(port)
            except LinkError as exc:
                log.error("port %s failed: %s; reopening", self.url, exc)
                self._halt.wait(1.0)
            finally:
                port.close()

    def serve(self, port: Port) -> None:
        """Run sessions on an open port until stopped."""
        session = StationSession(self.timing, self.partials, _wall_clock_ms)
        reader = FrameReader()
        while not self._halt.is_set():
            data = port.read(8192)
            now = time.monotonic()
            if data:
                for frame in reader.feed(data):
                    session.on_frame(frame, now)
            session.on_tick(now)
            if self._routes_owed_at is not None and now >= self._routes_owed_at:
                self._routes_owed_at = None
                session.dock_again(now)
            self._handle(session, reader, port)
            out = session.take_frames()
            if out:
                port.write(b"".join(encode(f) for f in out))
            what, done, total = session.progress()
            s = self.status
            s.state, s.device_id, s.what, s.done, s.total = (
                session.state.value,
                session.device_id,
                what,
                done,
                total,
            )

    def _handle(self, session: StationSession, reader: FrameReader, port: Port) -> None:
        for event in session.take_events():
            now = time.monotonic()
            if isinstance(event, Identified) and event.again:
                log.info(
                    "port %s: device %s still docked; loading its routes again",
                    self.url,
                    event.device.device_id,
                )
            elif isinstance(event, Identified):
                d = event.device
                self.status.docks += 1
                log.info(
                    "port %s: device %s docked (%s %s), %d reads pending",
                    self.url,
                    d.device_id,
                    d.model,
                    d.firmware,
                    d.reads_pending,
                )
            elif isinstance(event, Resumed):
                log.info(
                    "device %s: %s transfer resumed at byte %d of %d",
                    event.device_id,
                    event.kind,
                    event.offset,
                    event.size,
                )
            elif isinstance(event, ReadsReceived):
                self._store(session, event, now)
            elif isinstance(event, ReadsCleared):
                log.info("device %s cleared batch %s", event.device_id, event.sha256[:12])
            elif isinstance(event, RoutesNeeded):
                blob = self._routes(event.device_id)
                # Not loaded (server away, device not registered yet): try again while it stays docked.
                self._routes_owed_at = (
                    None if blob is not None else time.monotonic() + self.cfg.routes_retry_s
                )
                session.load_routes(blob, time.monotonic())
            elif isinstance(event, RoutesLoaded):
                self.status.routes_loaded += 1
                log.info(
                    "device %s loaded routes %s (%d bytes)", event.device_id, event.sha256[:12], event.size
                )
            elif isinstance(event, SessionDone):
                log.info("device %s done; it may be undocked", event.device_id)
            elif isinstance(event, SessionLost):
                self._routes_owed_at = None  # undocked: the next dock loads them
                self.status.lost += 1
                log.warning(
                    "port %s: lost device %s in %s: %s (confirmed work is kept; it resumes on re-dock)",
                    self.url,
                    event.device_id or "?",
                    event.state,
                    event.reason,
                )
                reader.clear()
                port.reset_input()

    def _store(self, session: StationSession, event: ReadsReceived, now: float) -> None:
        try:
            reads = decode_reads(event.data)
            wrong = [r.device_id for r in reads if r.device_id != event.device_id]
            if wrong:
                raise RecordLineError([f"read for device {wrong[0]!r} came from {event.device_id!r}"])
        except RecordLineError as exc:
            # Nothing is stored and the device is not told to clear: its reads stay safe on it.
            msg = (
                f"device {event.device_id}: batch {event.sha256[:12]} rejected, device keeps its reads: {exc}"
            )
            log.error("%s", msg)
            self.status.errors.append(msg)
            session.abort("read batch failed validation")
            return
        new = self.spool.store_batch(event.device_id, event.sha256, reads)
        self.status.reads_spooled += new
        log.info(
            "device %s: %d reads spooled durably (%d new) from batch %s; telling the device it may clear",
            event.device_id,
            len(reads),
            new,
            event.sha256[:12],
        )
        session.reads_stored(event.sha256, now)
        self.sender.wake()

    def _routes(self, device_id: str) -> bytes | None:
        try:
            blob = self.client.routes_blob(device_id)
            self._last_route_error = None
            return blob
        except ServerError as exc:
            # The server's own words ("hand-held HH-0009 is not registered ..."), not a status line;
            # once per device and message, not at every retry while it stays docked.
            if self._last_route_error != (device_id, str(exc)):
                self._last_route_error = (device_id, str(exc))
                log.error("device %s: routes not loaded this dock: %s", device_id, exc)
                self.status.errors = [*self.status.errors[-19:], str(exc)]
            return None
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("device %s: routes not loaded this dock, server unavailable: %s", device_id, exc)
            return None


class Station:
    """The daemon: port workers, the spool and its sender."""

    def __init__(self, cfg: StationConfig) -> None:
        self.cfg = cfg
        self.timing = Timing.for_link(cfg.baud, cfg.turnaround_s, floor_s=cfg.timer_floor_s)
        self.spool = Spool(cfg.spool_path)
        self.client = ServerClient(cfg.server_url, cfg.token, timeout_s=cfg.http_timeout_s)
        self.sender = Sender(
            self.spool, self.client, base_delay_s=cfg.retry_base_s, max_delay_s=cfg.retry_max_s
        )
        partials: dict[str, bytearray] = {}
        self.workers = [
            PortWorker(url, cfg, self.timing, self.spool, self.client, self.sender, partials)
            for url in cfg.ports
        ]
        self._halt = threading.Event()

    def stop(self, *_: object) -> None:
        """Ask everything to finish."""
        self._halt.set()

    def run(self) -> None:
        """Start the threads and show progress until stopped."""
        log.info(
            "station starting: ports %s, server %s, spool %s",
            ", ".join(self.cfg.ports),
            self.cfg.server_url,
            self.cfg.spool_path,
        )
        dead = self.spool.dead_batches()
        if dead:
            log.warning(
                "spool holds %d dead batch(es) (%d reads) the server refused; see curbstop bridge spool list",
                len(dead),
                sum(d.read_count for d in dead),
            )
        self.sender.start()
        for w in self.workers:
            w.start()
        try:
            if self.cfg.progress:
                self._show_progress()
            else:
                while not self._halt.wait(0.2):
                    pass
        finally:
            for w in self.workers:
                w.stop()
            self.sender.stop()
            for w in self.workers:
                w.join(timeout=2)
            self.sender.join(timeout=self.cfg.http_timeout_s + 1)
            self.client.close()
            self.spool.close()
            log.info("station stopped")

    def _show_progress(self) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[extra]}"),
        ) as progress:
            tasks = {w.url: progress.add_task(w.url, total=1, extra="") for w in self.workers}
            spool_task = progress.add_task("spool", total=None, extra="")
            while not self._halt.wait(0.2):
                for w in self.workers:
                    s = w.status
                    desc = f"{s.port} {s.device_id or '-'} {s.state}"
                    progress.update(
                        tasks[w.url],
                        description=desc,
                        completed=s.done,
                        total=max(1, s.total),
                        extra=f"docks {s.docks} spooled {s.reads_spooled} routes {s.routes_loaded} lost {s.lost}",
                    )
                c = self.spool.counts()
                server = (
                    "server ok" if not self.sender.failures else f"server down ({self.sender.last_error})"
                )
                dead = f"; {c.dead} refused (curbstop bridge spool list)" if c.dead else ""
                progress.update(
                    spool_task, description="spool", extra=f"{c.unsent} unsent of {c.total}{dead}; {server}"
                )


def configure_logging(path: Path) -> None:
    """Plain UTC log lines to `path` for a supervisor (and tail -f)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%SZ")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger("curbstop")
    root.setLevel(logging.INFO)
    root.addHandler(handler)


def run_station(cfg: StationConfig) -> None:
    """Run the daemon in this process until SIGTERM or SIGINT."""
    configure_logging(cfg.log_path)
    station = Station(cfg)
    signal.signal(signal.SIGTERM, station.stop)
    signal.signal(signal.SIGINT, station.stop)
    station.run()


if __name__ == "__main__":
    from device_bridge.cli import station_main

    station_main()
