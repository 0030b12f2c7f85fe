"""Durable local spool of unloaded reads, its dead-letter area, and the sender that drains it to the server.

The station writes a read batch here, and the commit returns, before it tells the hand-held it may
clear (SQLite in WAL mode with ``synchronous=FULL``: the commit is fsynced). Reads are keyed by their
idempotency key, so a batch unloaded twice (a cable pull after the station stored it but before the
device heard COMMIT_OK) is stored once. `Sender` posts unsent reads to the server with an
``Idempotency-Key`` per post and exponential back-off; a server that is down loses nothing.

A post the server refuses for what it holds (a 4xx other than 401, 403, 408 and 429: an unknown
hand-held, an unknown meter, a record it will not take) would be refused again however often it is
sent, so its reads move to the dead-letter area with the server's own message and the reads behind
them keep flowing. A refusal of a single read's content (422, 413) is narrowed down by halving the
post, so one unknown meter holds back only its own reads. `curbstop bridge spool list|retry|discard`
works on the dead letters (`Spool.dead_batches`, `Spool.retry`, `Spool.discard`).

HTTP contract: docs/device-bridge.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
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
CREATE TABLE IF NOT EXISTS dead_batch (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    batch_sha256 TEXT NOT NULL,       -- the unloaded batch the reads came from
    read_count INTEGER NOT NULL,
    http_status INTEGER NOT NULL,     -- the server's answer to the first refused post
    error TEXT NOT NULL,              -- the server's own message for it
    errors TEXT NOT NULL,             -- JSON list of every distinct message, first first
    dead_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'dead',  -- dead | retried | discarded
    resolved_at TEXT,                 -- when it was retried or discarded
    resolved_by TEXT,                 -- and by whom
    note TEXT NOT NULL DEFAULT '',    -- the reason given for a discard
    export_path TEXT                  -- the file a discard wrote its reads to
);
"""

# Columns added after the first release; an older spool file gets them on open.
_READ_COLUMNS = {
    "dead_id": "INTEGER",  # the dead_batch holding this read; NULL while it is queued or sent
    "error": "TEXT",  # the server's message when it refused this read
}

# Refusals that are not about the reads posted: the station's token (401, 403), a timeout (408) or
# rate limit (429). They are retried with back-off like a 5xx; dead-lettering every batch for a
# token a supervisor has to fix anyway would only make them retry each batch by hand afterwards.
RETRIED_STATUSES = frozenset({401, 403, 408, 429})
# Refusals that may concern single reads: halve the post to find them.
SPLIT_STATUSES = frozenset({413, 422})


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class ServerError(Exception):
    """The server answered a request with an error status; `message` is the server's own words.

    Parameters
    ----------
    status
        HTTP status code.
    message
        The server's error message (``error.message`` or ``detail`` of its JSON body).
    what
        What was asked, for the log line ("upload of 40 reads from HH-0001").
    """

    def __init__(self, status: int, message: str, what: str) -> None:
        super().__init__(f"server refused the {what} ({status}): {message}")
        self.status = status
        self.message = message
        self.what = what

    @property
    def refused(self) -> bool:
        """True when posting the same thing again cannot succeed (the batch goes to the dead letters)."""
        return 400 <= self.status < 500 and self.status not in RETRIED_STATUSES


def server_message(response: httpx.Response) -> str:
    """The server's own error message from a response: Curbstop's ``error.message``, else ``detail``, else the text."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        detail = payload.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):  # FastAPI's validation errors
            return "; ".join(
                f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', '')}"
                if isinstance(item, dict)
                else str(item)
                for item in detail
            )
    return json.dumps(payload)[:500]


@dataclass(frozen=True)
class SpoolCounts:
    """How many reads the spool holds, how many are still to send, and how many wait in the dead letters."""

    total: int
    unsent: int
    dead: int = 0


@dataclass(frozen=True)
class DeadBatch:
    """Reads the server refused, set aside with its message until someone retries or discards them."""

    id: int
    device_id: str
    batch_sha256: str
    read_count: int
    http_status: int
    error: str
    errors: list[str]
    dead_at: str  # UTC ISO-8601
    state: str  # dead | retried | discarded
    resolved_at: str | None
    resolved_by: str | None
    note: str
    export_path: str | None


class SpoolError(ValueError):
    """A spool command that cannot be done (unknown id, already retried...); the message says why."""


@dataclass(frozen=True)
class Refusal:
    """Reads one post carried and the server's refusal of them."""

    reads: list[ReadRecord]
    error: ServerError


class Spool:
    """SQLite spool; safe to share between the port threads and the sender thread (and other processes)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # timeout: another process (the `spool` commands beside a running station) may hold the write lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # fsync on every commit: durable before COMMIT
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(read)")}
        for name, kind in _READ_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE read ADD COLUMN {name} {kind}")
        self._db.execute("CREATE INDEX IF NOT EXISTS read_dead ON read (dead_id)")

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

    def unsent(self, limit: int = 500) -> list[tuple[str, str, list[ReadRecord]]]:
        """Queued reads (not sent, not dead-lettered) grouped by unloaded batch: [(device_id, batch_sha256, reads)], oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device_id, batch_sha256, body FROM read WHERE sent_at IS NULL AND dead_id IS NULL"
                " ORDER BY rowid LIMIT ?",
                (limit,),
            ).fetchall()
        groups: dict[tuple[str, str], list[ReadRecord]] = {}
        for device_id, batch_sha256, body in rows:
            groups.setdefault((device_id, batch_sha256), []).append(ReadRecord.model_validate_json(body))
        return [(device, batch, reads) for (device, batch), reads in groups.items()]

    def mark_sent(self, keys: list[str], *, duplicates: int = 0) -> None:
        """Record that the server accepted these reads."""
        now = _utc_now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE read SET sent_at = ?, error = NULL WHERE idempotency_key = ?",
                [(now, k) for k in keys],
            )
            self._db.execute("COMMIT")
        if duplicates:
            log.info(
                "server already had %d of %d reads (flagged as duplicates, not stored twice)",
                duplicates,
                len(keys),
            )

    def dead_letter(self, device_id: str, batch_sha256: str, refusals: list[Refusal]) -> DeadBatch:
        """Move refused reads out of the queue into one dead batch holding the server's messages."""
        first = refusals[0].error
        messages: list[str] = []
        for refusal in refusals:
            if refusal.error.message not in messages:
                messages.append(refusal.error.message)
        count = sum(len(r.reads) for r in refusals)
        now = _utc_now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO dead_batch (device_id, batch_sha256, read_count, http_status, error, errors,"
                    " dead_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (device_id, batch_sha256, count, first.status, first.message, json.dumps(messages), now),
                )
                dead_id = cursor.lastrowid
                self._db.executemany(
                    "UPDATE read SET dead_id = ?, error = ? WHERE idempotency_key = ?",
                    [
                        (dead_id, refusal.error.message, read.idempotency_key)
                        for refusal in refusals
                        for read in refusal.reads
                    ],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        assert dead_id is not None
        return self.dead_batch(dead_id)

    def _row_to_dead(self, row: tuple[object, ...]) -> DeadBatch:
        (id_, device, sha, count, status, error, errors, dead_at, state, r_at, r_by, note, path) = row
        return DeadBatch(
            id=int(str(id_)),
            device_id=str(device),
            batch_sha256=str(sha),
            read_count=int(str(count)),
            http_status=int(str(status)),
            error=str(error),
            errors=[str(e) for e in json.loads(str(errors))],
            dead_at=str(dead_at),
            state=str(state),
            resolved_at=None if r_at is None else str(r_at),
            resolved_by=None if r_by is None else str(r_by),
            note=str(note),
            export_path=None if path is None else str(path),
        )

    _DEAD_COLUMNS = (
        "id, device_id, batch_sha256, read_count, http_status, error, errors, dead_at, state,"
        " resolved_at, resolved_by, note, export_path"
    )

    def dead_batches(self, *, include_resolved: bool = False) -> list[DeadBatch]:
        """Dead batches, oldest first; with `include_resolved`, also those retried or discarded."""
        where = "" if include_resolved else " WHERE state = 'dead'"
        with self._lock:
            rows = self._db.execute(
                f"SELECT {self._DEAD_COLUMNS} FROM dead_batch{where} ORDER BY id"
            ).fetchall()
        return [self._row_to_dead(row) for row in rows]

    def dead_batch(self, dead_id: int) -> DeadBatch:
        """One dead batch by id; SpoolError when there is none."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._DEAD_COLUMNS} FROM dead_batch WHERE id = ?", (dead_id,)
            ).fetchone()
        if row is None:
            raise SpoolError(f"no dead batch {dead_id} in {self.path}")
        return self._row_to_dead(row)

    def dead_reads(self, dead_id: int) -> list[tuple[ReadRecord, str]]:
        """The reads of a dead (or discarded) batch with the server's message for each."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body, COALESCE(error, '') FROM read WHERE dead_id = ? ORDER BY rowid", (dead_id,)
            ).fetchall()
        return [(ReadRecord.model_validate_json(body), str(error)) for body, error in rows]

    def _resolve(self, dead_id: int) -> DeadBatch:
        dead = self.dead_batch(dead_id)
        if dead.state != "dead":
            raise SpoolError(
                f"dead batch {dead_id} was already {dead.state} at {dead.resolved_at} by {dead.resolved_by}"
            )
        return dead

    def retry(self, dead_id: int, *, by: str) -> int:
        """Put a dead batch's reads back in the queue (after the cause was fixed); return how many."""
        self._resolve(dead_id)
        now = _utc_now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                claimed = self._db.execute(
                    "UPDATE dead_batch SET state = 'retried', resolved_at = ?, resolved_by = ?"
                    " WHERE id = ? AND state = 'dead'",
                    (now, by, dead_id),
                ).rowcount
                if not claimed:  # another `spool` command got there first
                    raise SpoolError(f"dead batch {dead_id} was resolved meanwhile; see spool list --all")
                moved = self._db.execute(
                    "UPDATE read SET dead_id = NULL, error = NULL WHERE dead_id = ?", (dead_id,)
                ).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        log.info("dead batch %d: %d reads put back in the queue by %s", dead_id, moved, by)
        return int(moved)

    def discard(self, dead_id: int, *, by: str, reason: str = "", export_dir: Path | None = None) -> Path:
        """Give up on a dead batch: its reads are written to a JSON Lines file (returned) and stay in the spool."""
        dead = self._resolve(dead_id)
        reads = [read for read, _ in self.dead_reads(dead_id)]
        folder = export_dir or self.path.parent / "discarded"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"dead-{dead_id}-{dead.device_id}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        with open(tmp, "wb") as fh:
            fh.write(encode_lines(reads))  # the same records the device unloaded: can be posted again
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        now = _utc_now()
        with self._lock:
            claimed = self._db.execute(
                "UPDATE dead_batch SET state = 'discarded', resolved_at = ?, resolved_by = ?, note = ?,"
                " export_path = ? WHERE id = ? AND state = 'dead'",
                (now, by, reason, str(path), dead_id),
            ).rowcount
        if not claimed:  # retried or discarded by another `spool` command meanwhile; the file is harmless
            raise SpoolError(f"dead batch {dead_id} was resolved meanwhile; see spool list --all")
        log.warning(
            "dead batch %d (%d reads from %s) discarded by %s%s; its reads are kept in %s",
            dead_id,
            len(reads),
            dead.device_id,
            by,
            f" ({reason})" if reason else "",
            path,
        )
        return path

    def counts(self) -> SpoolCounts:
        """Reads held, reads still to send and reads waiting in the dead letters."""
        with self._lock:
            total, unsent, dead = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(sent_at IS NULL AND dead_id IS NULL), 0),"
                " COALESCE(SUM(dead_id IN (SELECT id FROM dead_batch WHERE state = 'dead')), 0) FROM read"
            ).fetchone()
        return SpoolCounts(int(total), int(unsent), int(dead))


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

    @staticmethod
    def _check(response: httpx.Response, what: str) -> None:
        if response.is_error:
            raise ServerError(response.status_code, server_message(response), what)

    def post_reads(self, device_id: str, reads: list[ReadRecord]) -> UploadResult:
        """POST one batch; raises ServerError on an error status, httpx.HTTPError on a network failure."""
        body = HandheldUpload(device_id=device_id, reads=reads)
        response = self._http.post(
            "/api/handhelds/uploads",
            content=body.model_dump_json(),
            headers={"Idempotency-Key": batch_idempotency_key(reads), "Content-Type": "application/json"},
        )
        self._check(response, f"upload of {len(reads)} reads from {device_id}")
        return UploadResult.model_validate_json(response.content)

    def routes_for(self, device_id: str) -> list[RouteRecord]:
        """The routes assigned to the device; raises ServerError or httpx.HTTPError on failure."""
        response = self._http.get(f"/api/handhelds/devices/{device_id}/routes")
        self._check(response, f"route download for {device_id}")
        payload = response.json()
        if not isinstance(payload, list):
            raise ValueError(f"routes for {device_id}: expected a JSON list, got {type(payload).__name__}")
        return [RouteRecord.model_validate(item) for item in payload]

    def routes_blob(self, device_id: str) -> bytes:
        """The device's routes as the JSON Lines batch loaded into it, in walk order."""
        routes = sorted(self.routes_for(device_id), key=lambda r: (r.route_id, r.sequence))
        return encode_lines(routes)


class Sender(threading.Thread):
    """Background thread: post queued reads, dead-letter what the server refuses, back off while it is away."""

    def __init__(
        self,
        spool: Spool,
        client: ServerClient,
        *,
        batch_size: int = 200,
        base_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        idle_poll_s: float = 5.0,
        on_change: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(name="spool-sender", daemon=True)
        self.spool = spool
        self.client = client
        self.batch_size = batch_size
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.idle_poll_s = idle_poll_s  # also picks up reads a `spool retry` put back from another process
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

    def _post(self, device_id: str, reads: list[ReadRecord], refused: list[Refusal]) -> None:
        """Post `reads`; collect what the server refuses in `refused`, halving a 422/413 to find the reads at fault.

        A network error, a 5xx or a retried status propagates: the reads stay queued for the back-off.
        """
        try:
            result = self.client.post_reads(device_id, reads)
        except ServerError as exc:
            if not exc.refused:
                raise
            if exc.status in SPLIT_STATUSES and len(reads) > 1:
                half = len(reads) // 2
                self._post(device_id, reads[:half], refused)
                self._post(device_id, reads[half:], refused)
            else:
                refused.append(Refusal(reads, exc))
            return
        self.spool.mark_sent([r.idempotency_key for r in reads], duplicates=result.duplicates)
        log.info(
            "posted %d reads from %s to the server: %d new, %d duplicates",
            len(reads),
            device_id,
            result.accepted,
            result.duplicates,
        )

    def drain_once(self) -> bool:
        """Post every queued batch once; True when the queue is empty afterwards."""
        while not self._halt.is_set():
            groups = self.spool.unsent(self.batch_size)
            if not groups:
                return True
            for device_id, batch_sha256, reads in groups:
                refused: list[Refusal] = []
                self._post(device_id, reads, refused)
                if refused:
                    dead = self.spool.dead_letter(device_id, batch_sha256, refused)
                    log.error(
                        "server refused %d of %d reads from %s (batch %s): %s; set aside as dead batch %d,"
                        " later reads keep flowing (curbstop bridge spool list | retry %d | discard %d)",
                        dead.read_count,
                        len(reads),
                        device_id,
                        batch_sha256[:12],
                        "; ".join(dead.errors),
                        dead.id,
                        dead.id,
                        dead.id,
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
                self._wake.wait(timeout=self.idle_poll_s)
            except (httpx.HTTPError, ServerError, ValueError) as exc:
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
