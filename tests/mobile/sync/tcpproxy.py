"""A loopback TCP proxy for fault tests: forwards to a real server and cuts connections at random points."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from types import TracebackType


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to `upstream`; while `cutting`, each connection dies after a random byte count.

    A cut closes both directions mid-stream, so the client sees a reset or a truncated answer at
    any point of a request or a response (headers, body, between batches).
    """

    def __init__(
        self, upstream: tuple[str, int], *, seed: int = 0, max_bytes_before_cut: int = 200_000
    ) -> None:
        self.upstream = upstream
        self.cutting = False
        self.cuts = 0
        self.connections = 0
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._max = max_bytes_before_cut
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def _budget(self) -> int | None:
        with self._rng_lock:
            return self._rng.randint(0, self._max)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):  # forward small writes at once (Nagle + delayed ACK = 40 ms stalls)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            with self._lock:
                self._sockets |= {client, server}
            # One budget shared by both directions of this connection.
            state = {"left": self._budget()}
            for src, dst in ((client, server), (server, client)):
                threading.Thread(
                    target=self._pump, args=(src, dst, client, server, state), daemon=True
                ).start()

    def _pump(
        self,
        src: socket.socket,
        dst: socket.socket,
        a: socket.socket,
        b: socket.socket,
        state: dict[str, int | None],
    ) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                left = state["left"]
                if left is not None and self.cutting:  # turning cutting off spares open connections too
                    if len(data) >= left:
                        dst.sendall(data[:left])
                        self.cuts += 1
                        break
                    state["left"] = left - len(data)
                dst.sendall(data)
        except OSError:
            pass
        for sock in (a, b):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        with self._lock:
            self._sockets -= {a, b}

    def close(self) -> None:
        """Stop accepting and close every open connection."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
