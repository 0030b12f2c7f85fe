"""FieldLink: a user-space shaping proxy on loopback that behaves like a poor field link.

Forwards ``127.0.0.1:<port>`` to a real server through one shared link with

- latency: each chunk arrives `rtt_s / 2` after it left, in each direction;
- bandwidth per direction (`up_bps` client -> server, `down_bps` back), shared by every connection,
  so parallel requests do not get more than the link has;
- loss: with probability `loss` a chunk is retransmitted once (it arrives an RTO later, as a lost
  TCP segment does), which also holds back what follows it on that connection;
- resets: `cut()` drops the link for `down_s` seconds (every open connection is reset, new ones are
  refused until it is back); `cut_every_s` does so on a schedule, `reset_rate` resets single
  connections at random (per chunk).

It counts the bytes each way, so a benchmark can compare wall time with the link's lower bound
(bytes / bandwidth + round trips x latency). Chunks are at most `chunk` bytes (4 KiB: 33 ms at
1 Mbit/s), so the pacing is close to what the wire does.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType


@dataclass
class _Direction:
    """One direction of the link: a serializer shared by every connection."""

    bps: float
    busy_until: float = 0.0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def schedule(self, n: int, now: float) -> float:
        """When the last of `n` bytes leaves the sender's end (the link sends one chunk at a time)."""
        with self.lock:
            start = max(now, self.busy_until)
            self.busy_until = start + n * 8 / self.bps
            self.bytes += n
            return self.busy_until


class FieldLink:
    """A shaped, cuttable link from ``127.0.0.1:<port>`` to `upstream`."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        rtt_s: float = 0.3,
        up_bps: float = 1_000_000,
        down_bps: float = 5_000_000,
        loss: float = 0.0,
        reset_rate: float = 0.0,
        cut_every_s: float | None = None,
        down_s: float = 2.0,
        seed: int = 0,
        chunk: int = 4096,
    ) -> None:
        self.upstream = upstream
        self.rtt_s = rtt_s
        self.loss = loss
        self.reset_rate = reset_rate
        self.down_s = down_s
        self.chunk = chunk
        self.up = _Direction(up_bps)
        self.down = _Direction(down_bps)
        self.cuts = 0
        self.resets = 0
        self.retransmits = 0
        self.connections = 0
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._down_until = 0.0
        self._epoch = 0  # bumped by every cut: connections of an older epoch are dead
        self._closed = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name="fieldlink-accept", daemon=True).start()
        if cut_every_s is not None:
            threading.Thread(target=self._cutter, args=(cut_every_s,), daemon=True).start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def bytes_up(self) -> int:
        """Bytes carried client -> server."""
        return self.up.bytes

    @property
    def bytes_down(self) -> int:
        """Bytes carried server -> client."""
        return self.down.bytes

    def lower_bound_s(self, round_trips: int) -> float:
        """Bytes carried / bandwidth each way plus `round_trips` x RTT."""
        return (
            self.up.bytes * 8 / self.up.bps + self.down.bytes * 8 / self.down.bps + round_trips * self.rtt_s
        )

    # -- cuts -------------------------------------------------------------------------------------

    def cut(self, down_s: float | None = None) -> None:
        """Take the link down now: reset every open connection, refuse new ones for `down_s`."""
        with self._lock:
            self._epoch += 1
            self._down_until = time.monotonic() + (self.down_s if down_s is None else down_s)
            sockets = list(self._sockets)
            self.cuts += 1
        for sock in sockets:
            _reset(sock)

    @property
    def is_down(self) -> bool:
        """Whether the link is in an outage."""
        return time.monotonic() < self._down_until

    def _cutter(self, every_s: float) -> None:
        while not self._closed.wait(every_s):
            self.cut()

    def _chance(self, p: float) -> bool:
        if p <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < p

    # -- forwarding -------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.is_down:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets |= {client, server}
                epoch = self._epoch
                self.connections += 1
            # The handshake costs a round trip before the first byte; new connections pay it.
            for src, dst, direction in ((client, server, self.up), (server, client, self.down)):
                Pipe(self, src, dst, direction, (client, server), epoch).start()

    def _forget(self, pair: tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            self._sockets -= set(pair)

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _reset(sock)

    def __enter__(self) -> FieldLink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Pipe:
    """One direction of one connection: a reader that schedules chunks and a writer that delivers them."""

    def __init__(
        self,
        link: FieldLink,
        src: socket.socket,
        dst: socket.socket,
        direction: _Direction,
        pair: tuple[socket.socket, socket.socket],
        epoch: int,
    ) -> None:
        self.link = link
        self.src = src
        self.dst = dst
        self.direction = direction
        self.pair = pair
        self.epoch = epoch
        self._queue: list[tuple[float, int, bytes | None]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._last_arrival = time.monotonic() + link.rtt_s  # the TCP handshake's round trip

    def start(self) -> None:
        """Start the reader and writer threads."""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _push(self, at: float, data: bytes | None) -> None:
        with self._ready:
            heapq.heappush(self._queue, (at, next(self._order), data))
            self._ready.notify()

    def _read(self) -> None:
        link = self.link
        try:
            while True:
                data = self.src.recv(link.chunk)
                if not data:
                    break
                now = time.monotonic()
                leaves = self.direction.schedule(len(data), now)
                arrives = leaves + link.rtt_s / 2
                if link._chance(link.loss):
                    link.retransmits += 1
                    arrives += max(0.2, link.rtt_s)  # one retransmission timeout
                arrives = max(arrives, self._last_arrival)  # TCP delivers in order
                self._last_arrival = arrives
                self._push(arrives, data)
                if link._chance(link.reset_rate):
                    link.resets += 1
                    break
        except OSError:
            pass
        self._push(self._last_arrival, None)

    def _write(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._queue:
                        self._ready.wait()
                    at, _n, data = self._queue[0]
                    delay = at - time.monotonic()
                    if delay > 0:
                        self._ready.wait(delay)
                        continue
                    heapq.heappop(self._queue)
                if data is None or self.epoch != self.link._epoch:
                    break
                self.dst.sendall(data)
        except OSError:
            pass
        for sock in self.pair:
            _reset(sock)
        self.link._forget(self.pair)


def _reset(sock: socket.socket) -> None:
    """Close a socket at once (RST when possible), ignoring errors."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
