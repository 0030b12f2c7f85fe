"""Durable local spool of unloaded reads, and the sender that drains it to the server.

The station writes a read batch here, and the commit returns, before it tells the hand-held it may
clear (SQLite in WAL mode with ``synchronous=FULL``: the commit is fsynced). Reads are keyed by their
idempotency key, so a batch unloaded twice (a cable pull after the station stored it but before the
device heard COMMIT_OK) is stored once. `Sender` posts unsent reads to the server with an
``Idempotency-Key`` per batch and exponential back-off; a server that is down loses nothing.

HTTP contract: docs/device-bridge.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from contracts.handheld import HandheldUpload, ReadRecord, RouteRecord, UploadResult, encode_lines

log = logging.getLogger("curbstop.bridge")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    sha256 TEXT PRIMARY KEY,          -- whole-transfer checksum of the unloaded batch
    device_id TEXT NOT NULL,
    read_count INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS read (
    idempotency_key TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    batch_sha256 TEXT NOT NULL,
    body TEXT NOT NULL,               -- ReadRecord JSON
    received_at TEXT NOT NULL,
    sent_at TEXT,                     -- NULL until the server accepted it
    duplicate INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS read_unsent ON read (sent_at, device_id);
"""


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class SpoolCounts:
    """How many reads the spool holds, and how many are still to send."""

    total: int
    unsent: int


class Spool:
    """SQLite spool; safe to share between the port threads and the sender thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # fsync on every commit: durable before COMMIT
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def store_batch(self, device_id: str, sha256: str, reads: list[ReadRecord]) -> int:
        """Durably store a batch; return how many reads were new. Returns only after the fsynced commit."""
        now = _utc_now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                self._db.execute(
                    "INSERT OR IGNORE INTO batch (sha256, device_id, read_count, received_at) VALUES (?, ?, ?, ?)",
                    (sha256, device_id, len(reads), now),
                )
                batch_changes = self._db.total_changes - before
                self._db.executemany(
                    "INSERT OR IGNORE INTO read (idempotency_key, device_id, batch_sha256, body, received_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(r.idempotency_key, device_id, sha256, r.model_dump_json(), now) for r in reads],
                )
                new = self._db.total_changes - before - batch_changes
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return new

    def unsent(self, limit: int = 500) -> list[tuple[str, list[ReadRecord]]]:
        """Unsent reads grouped by device: [(device_id, reads)], oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device_id, body FROM read WHERE sent_at IS NULL ORDER BY device_id, rowid LIMIT ?",
                (limit,),
            ).fetchall()
        groups: dict[str, list[ReadRecord]] = {}
        for device_id, body in rows:
            groups.setdefault(device_id, []).append(ReadRecord.model_validate_json(body))
        return list(groups.items())

    def mark_sent(self, keys: list[str], *, duplicates: int = 0) -> None:
        """Record that the server accepted these reads."""
        now = _utc_now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE read SET sent_at = ? WHERE idempotency_key = ?", [(now, k) for k in keys]
            )
            self._db.execute("COMMIT")
        if duplicates:
            log.info(
                "server already had %d of %d reads (flagged as duplicates, not stored twice)",
                duplicates,
                len(keys),
            )

    def counts(self) -> SpoolCounts:
        """Reads held and reads still to send."""
        with self._lock:
            total, unsent = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(sent_at IS NULL), 0) FROM read"
            ).fetchone()
        return SpoolCounts(int(total), int(unsent))


def batch_idempotency_key(reads: list[ReadRecord]) -> str:
    """One key for a batch: SHA-256 of its reads' keys, sorted, so a retried POST has the same key."""
    return hashlib.sha256("\n".join(sorted(r.idempotency_key for r in reads)).encode()).hexdigest()


class ServerClient:
    """The two server endpoints the station uses (docs/device-bridge.md)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        """Close connections."""
        self._http.close()

    def post_reads(self, device_id: str, reads: list[ReadRecord]) -> UploadResult:
        """POST one batch; raises httpx.HTTPError on failure (network or non-2xx)."""
        body = HandheldUpload(device_id=device_id, reads=reads)
        response = self._http.post(
            "/api/handhelds/uploads",
            content=body.model_dump_json(),
            headers={"Idempotency-Key": batch_idempotency_key(reads), "Content-Type": "application/json"},
        )
        response.raise_for_status()
        return UploadResult.model_validate_json(response.content)

    def routes_for(self, device_id: str) -> list[RouteRecord]:
        """The routes assigned to the device; raises httpx.HTTPError on failure."""
        response = self._http.get(f"/api/handhelds/devices/{device_id}/routes")
        response.raise_for_status()
        payload = response.json()
        if not isinstance(payload, list):
            raise ValueError(f"routes for {device_id}: expected a JSON list, got {type(payload).__name__}")
        return [RouteRecord.model_validate(item) for item in payload]

    def routes_blob(self, device_id: str) -> bytes:
        """The device's routes as the JSON Lines batch loaded into it, in walk order."""
        routes = sorted(self.routes_for(device_id), key=lambda r: (r.route_id, r.sequence))
        return encode_lines(routes)


class Sender(threading.Thread):
    """Background thread: post unsent reads, back off exponentially while the server is away."""

    def __init__(
        self,
        spool: Spool,
        client: ServerClient,
        *,
        batch_size: int = 200,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        on_change: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(name="spool-sender", daemon=True)
        self.spool = spool
        self.client = client
        self.batch_size = batch_size
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.on_change = on_change
        self._rng = rng or random.Random()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self.failures = 0  # consecutive failed posts
        self.last_error = ""

    def wake(self) -> None:
        """New reads are in the spool: try now."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the current post and exit."""
        self._halt.set()
        self._wake.set()

    def next_delay_s(self) -> float:
        """Back-off after `failures` consecutive failures: base * 2^(n-1), capped, with ±25 % jitter."""
        raw: float = min(self.max_delay_s, self.base_delay_s * 2.0 ** max(0, self.failures - 1))
        return raw * self._rng.uniform(0.75, 1.25)

    def drain_once(self) -> bool:
        """Post every unsent batch once; True when the spool is empty afterwards."""
        while not self._halt.is_set():
            groups = self.spool.unsent(self.batch_size)
            if not groups:
                return True
            for device_id, reads in groups:
                result = self.client.post_reads(device_id, reads)
                self.spool.mark_sent([r.idempotency_key for r in reads], duplicates=result.duplicates)
                log.info(
                    "posted %d reads from %s to the server: %d new, %d duplicates",
                    len(reads),
                    device_id,
                    result.accepted,
                    result.duplicates,
                )
                if self.on_change:
                    self.on_change()
        return False

    def run(self) -> None:
        """Loop until stopped."""
        while not self._halt.is_set():
            self._wake.clear()  # before draining, so a wake during the drain is not lost
            try:
                self.drain_once()
                if self.failures:
                    log.info("server reachable again; spool drained")
                self.failures = 0
                self.last_error = ""
                self._wake.wait(timeout=5.0)
            except (httpx.HTTPError, ValueError) as exc:
                self.failures += 1
                self.last_error = str(exc) or type(exc).__name__
                delay = self.next_delay_s()
                log.warning(
                    "posting reads failed (%s); %d unsent reads stay spooled; retry %d in %.1f s",
                    self.last_error,
                    self.spool.counts().unsent,
                    self.failures,
                    delay,
                )
                if self.on_change:
                    self.on_change()
                self._halt.wait(timeout=delay)
