"""The CouchDB replication protocol between two `Peer`s, one-shot or live, and the tablet's two-way `Sync`.

One run (CouchDB docs, "Replication Protocol"):

1. Replication id: md5 over canonical JSON of both peers' ids (the local one carries the store's
   persisted uuid, the remote one its URL without credentials and the database) and any filter.
2. Read ``_local/<id>`` on both sides; resume from the source's ``source_last_seq`` when both
   sessions match, else from the newest session both histories share, else from the start.
3. Per batch: ``_changes?style=all_docs&since=S&limit=N`` -> ``_revs_diff`` on the target ->
   ``_bulk_get`` on the source -> ``_bulk_docs`` with ``new_edits: false`` on the target ->
   checkpoint (target first, then source) at the batch's last_seq. A checkpoint is only written
   after the batch's documents are; a run that finds no changes writes nothing.

Sequences are opaque: stored and sent back verbatim, never compared or incremented.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from queue import Full, Queue
from typing import Any

from contracts.couch import tablet_writes
from mobile.sync import revtree
from mobile.sync.errors import AuthError, Conflict, Forbidden, MissingStub, SyncError
from mobile.sync.peers import LocalPeer, Peer, Seq
from mobile.sync.remote import RemoteDB
from mobile.sync.store import ConflictPolicy, ConflictRecord, Doc, KeepWinner, Store

REPLICATOR = "curbstop-mobile-sync"
CHECKPOINT_VERSION = 1
HISTORY_LIMIT = 50  # sessions kept in a checkpoint's history, as CouchDB does
DEFAULT_BATCH_SIZE = 500
# Per-document errors that are final: report, count, never retry (SYNC-NOTES).
REJECTED = frozenset({"forbidden", "unauthorized"})


def replication_id(source_id: str, target_id: str, doc_ids: Sequence[str] | None = None) -> str:
    """md5 of canonical JSON of the version, both peer ids (direction = their order) and the filter."""
    spec = {
        "version": CHECKPOINT_VERSION,
        "source": source_id,
        "target": target_id,
        "filter": {"doc_ids": sorted(doc_ids)} if doc_ids is not None else None,
    }
    return hashlib.md5(revtree.canonical_json(spec)).hexdigest()


def compare_logs(source_log: Mapping[str, Any] | None, target_log: Mapping[str, Any] | None) -> Seq:
    """The sequence to resume from, given both checkpoint documents (0 = from the start)."""
    if target_log is None:
        return 0
    if source_log is None:
        # A read-only source never holds a checkpoint; the target's then stands alone.
        seq: Seq = target_log.get("source_last_seq", 0) if target_log.get("source_checkpoint") is False else 0
        return seq
    if source_log.get("session_id") == target_log.get("session_id"):
        # The source is written after the target, so its seq is never past what the target holds.
        last: Seq = source_log.get("source_last_seq", 0)
        return last
    target_sessions = {h.get("session_id") for h in target_log.get("history", [])}
    for entry in source_log.get("history", []):  # newest first
        if entry.get("session_id") in target_sessions:
            recorded: Seq = entry.get("recorded_seq", 0)
            return recorded
    return 0


@dataclass
class ReplicationResult:
    """What one run did; counts are documents (revisions) unless named otherwise."""

    replication_id: str
    session_id: str
    start_seq: Seq = 0
    last_seq: Seq = 0
    batches: int = 0
    changes_read: int = 0
    missing_found: int = 0
    docs_read: int = 0
    docs_written: int = 0
    bulk_docs_calls: int = 0
    checkpoints_written: int = 0
    forbidden: list[Doc] = field(default_factory=list)
    missing_on_source: list[Doc] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def doc_write_failures(self) -> int:
        """Documents the target refused for good (forbidden / unauthorized)."""
        return len(self.forbidden)


@dataclass
class _Batch:
    """One fetched batch, ready to write."""

    last_seq: Seq
    changes: int
    requests: list[Doc] = field(default_factory=list)
    docs: list[Doc] = field(default_factory=list)
    errors: list[Doc] = field(default_factory=list)


class Replicator:
    """Replicates `source` into `target`; the same code pulls and pushes."""

    def __init__(
        self,
        source: Peer,
        target: Peer,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        doc_ids: Sequence[str] | None = None,
        prefetch: int = 2,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.source = source
        self.target = target
        self.batch_size = batch_size
        self.prefetch = prefetch  # batches fetched ahead of the writer (0: strictly one at a time)
        self.doc_ids = list(doc_ids) if doc_ids is not None else None
        self.id = replication_id(source.peer_id(), target.peer_id(), self.doc_ids)
        self.checkpoint_id = f"_local/{self.id}"
        self._log_revs: dict[str, str | None] = {}
        self._source_writable = True

    # -- checkpoints ------------------------------------------------------------------------------

    def _read_log(self, peer: Peer, side: str) -> Doc | None:
        try:
            log = peer.get_local(self.checkpoint_id)
        except Forbidden:
            return None
        self._log_revs[side] = None if log is None else log.get("_rev")
        return log

    def _put_log(self, peer: Peer, side: str, body: Mapping[str, Any]) -> None:
        doc: Doc = {"_id": self.checkpoint_id, **body}
        if self._log_revs.get(side):
            doc["_rev"] = self._log_revs[side]
        try:
            self._log_revs[side] = peer.put_local(doc)
        except Conflict:  # someone else wrote it (another run of this replication): take its rev, once
            current = peer.get_local(self.checkpoint_id)
            doc.pop("_rev", None)
            if current is not None:
                doc["_rev"] = current["_rev"]
            self._log_revs[side] = peer.put_local(doc)

    def _checkpoint(self, seq: Seq, result: ReplicationResult, history: list[Doc]) -> None:
        entry = {
            "session_id": result.session_id,
            "recorded_seq": seq,
            "end_time": dt.datetime.now(dt.UTC).isoformat(),
            "docs_written": result.docs_written,
        }
        history[:] = [entry, *(h for h in history if h.get("session_id") != result.session_id)][
            :HISTORY_LIMIT
        ]
        body = {
            "session_id": result.session_id,
            "source_last_seq": seq,
            "history": history,
            "replicator": REPLICATOR,
            "version": CHECKPOINT_VERSION,
            "source_checkpoint": self._source_writable,
        }
        self._put_log(self.target, "target", body)
        if self._source_writable:
            try:
                self._put_log(self.source, "source", body)
            except Forbidden:  # a read-only source: keep the target's checkpoint only
                self._source_writable = False
                self._put_log(self.target, "target", body | {"source_checkpoint": False})
        result.checkpoints_written += 1

    # -- one run ----------------------------------------------------------------------------------

    def run(self) -> ReplicationResult:
        """Replicate everything the source has that the target lacks, checkpointing every batch.

        With `prefetch` > 0 a reader thread fetches the next batches (changes, revs_diff, bulk_get)
        while this thread writes the current one; checkpoints still follow the writes in order.
        """
        started = time.perf_counter()
        result = ReplicationResult(replication_id=self.id, session_id=uuid.uuid4().hex)
        source_log = self._read_log(self.source, "source")
        target_log = self._read_log(self.target, "target")
        since = compare_logs(source_log, target_log)
        history: list[Doc] = list((target_log or {}).get("history", []))
        result.start_seq = result.last_seq = since
        # Prefetched batches were diffed before the previous ones were written, so a replayed or
        # re-listed revision can come twice: skip what this run has just written.
        recent: deque[set[tuple[str, str]]] = deque(maxlen=self.prefetch + 1)
        for batch in self._batches(since):
            batch.docs = [d for d in batch.docs if not any((d["_id"], d["_rev"]) in done for done in recent)]
            recent.append({(d["_id"], d["_rev"]) for d in batch.docs})
            result.batches += 1
            result.changes_read += batch.changes
            result.missing_found += len(batch.requests)
            result.missing_on_source.extend(batch.errors)
            result.docs_read += len(batch.docs)
            self._write(batch.docs, batch.requests, result)
            result.last_seq = batch.last_seq
            self._checkpoint(batch.last_seq, result, history)
        result.elapsed_s = time.perf_counter() - started
        return result

    def _batches(self, since: Seq) -> Iterator[_Batch]:
        """Fetched batches in feed order, sequentially or from a prefetching reader thread."""
        if self.prefetch <= 0:
            while True:
                batch = self._fetch(since)
                if batch is None:
                    return
                yield batch
                since = batch.last_seq
        queue: Queue[_Batch | BaseException | None] = Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def offer(item: _Batch | BaseException | None) -> None:
            while not stop.is_set():
                try:
                    queue.put(item, timeout=0.1)
                    return
                except Full:
                    continue

        def reader(position: Seq) -> None:
            try:
                while not stop.is_set():
                    batch = self._fetch(position)
                    offer(batch)
                    if batch is None:
                        return
                    position = batch.last_seq
            except BaseException as exc:
                offer(exc)

        thread = threading.Thread(target=reader, args=(since,), name=f"replicator-{self.id[:8]}", daemon=True)
        thread.start()
        try:
            while True:
                item = queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=30)

    def _fetch(self, since: Seq) -> _Batch | None:
        """One batch: changes after `since`, what the target lacks, and those revisions from the source."""
        rows, last_seq = self.source.changes(since, self.batch_size, self.doc_ids)
        if not rows:
            return None
        revs: dict[str, list[str]] = {}
        for row in rows:  # a cluster may replay a row: merge, never duplicate
            known = revs.setdefault(row["id"], [])
            known.extend(c["rev"] for c in row["changes"] if c["rev"] not in known)
        batch = _Batch(last_seq=last_seq, changes=len(rows))
        diff = self.target.revs_diff(revs)
        for doc_id, entry in diff.items():
            ancestors = entry.get("possible_ancestors")
            for rev in entry.get("missing", []):
                request: Doc = {"id": doc_id, "rev": rev}
                if ancestors:
                    request["atts_since"] = ancestors
                batch.requests.append(request)
        if batch.requests:
            docs, batch.errors = self.source.bulk_get(batch.requests)
            batch.docs = _unique(docs)
        return batch

    def _write(self, docs: list[Doc], requests: list[Doc], result: ReplicationResult) -> None:
        if not docs:
            return
        result.bulk_docs_calls += 1
        try:
            failures = self.target.bulk_docs(docs)
        except MissingStub:  # the whole request refused: send every attachment inline
            docs = self._refetch_inline({d["_id"] for d in docs}, requests)
            result.bulk_docs_calls += 1
            failures = self.target.bulk_docs(docs)
        stubbed = {f.get("id") for f in failures if f.get("error") == "missing_stub"}
        if stubbed:
            retry = self._refetch_inline({str(i) for i in stubbed}, requests)
            result.bulk_docs_calls += 1
            failures = [f for f in failures if f.get("id") not in stubbed] + self.target.bulk_docs(retry)
        for failure in failures:
            if failure.get("error") in REJECTED:
                result.forbidden.append(failure)
            else:
                # Unknown per-document failure: stop before the checkpoint, so nothing is skipped.
                raise SyncError(
                    f"target refused {failure.get('id')} {failure.get('rev')}: "
                    f"{failure.get('error')}: {failure.get('reason')}",
                    doc_id=failure.get("id"),
                )
        result.docs_written += len(docs) - len(failures)

    def _refetch_inline(self, ids: set[str], requests: Sequence[Doc]) -> list[Doc]:
        again = [{"id": r["id"], "rev": r["rev"]} for r in requests if r["id"] in ids]
        docs, _errors = self.source.bulk_get(again)
        return _unique(docs)

    # -- live mode --------------------------------------------------------------------------------

    def run_live(
        self,
        stop: threading.Event,
        *,
        poll_s: float = 25.0,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        on_result: Callable[[ReplicationResult], None] | None = None,
        on_error: Callable[[SyncError], None] | None = None,
    ) -> None:
        """Replicate, wait for the source to change, repeat, until `stop` is set.

        While offline (transient errors) it backs off exponentially with jitter up to `max_backoff_s`.
        A 401/403 (AuthError) ends the loop by raising: retrying cannot fix credentials.
        """
        backoff = min_backoff_s
        while not stop.is_set():
            try:
                result = self.run()
                backoff = min_backoff_s
                if on_result is not None:
                    on_result(result)
                if not stop.is_set():
                    self.source.wait_for_changes(result.last_seq, poll_s)
            except AuthError:
                raise
            except SyncError as exc:
                if on_error is not None:
                    on_error(exc)
                stop.wait(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, max_backoff_s)


def _unique(docs: Sequence[Doc]) -> list[Doc]:
    """Drop repeated (id, rev) pairs (pouchdb-server may merge or repeat `_bulk_get` answers)."""
    seen: set[tuple[str, str]] = set()
    out: list[Doc] = []
    for doc in docs:
        key = (doc["_id"], doc["_rev"])
        if key not in seen:
            seen.add(key)
            out.append(doc)
    return out


@dataclass
class SyncResult:
    """One two-way sync: the pull, the conflicts resolved in between, the push."""

    pull: ReplicationResult
    push: ReplicationResult
    conflicts: list[ConflictRecord]


class Sync:
    """The tablet's two-way sync: pull, resolve conflicts with the policy, push.

    Only documents the tablet may write (`contracts.couch.tablet_writes`) are resolved here; a
    conflict on a server-owned document stays visible in ``_conflicts`` until the server resolves it.
    """

    def __init__(
        self,
        store: Store,
        remote: RemoteDB,
        *,
        policy: ConflictPolicy | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        should_resolve: Callable[[str], bool] | None = tablet_writes,
    ) -> None:
        self.store = store
        self.remote = remote
        self.policy: ConflictPolicy = policy or KeepWinner()
        self.should_resolve = should_resolve
        local = LocalPeer(store)
        self.pull = Replicator(remote, local, batch_size=batch_size)
        self.push = Replicator(local, remote, batch_size=batch_size)
        self.error: BaseException | None = None

    def resolve(self) -> list[ConflictRecord]:
        """Resolve the store's conflicts with the policy (only documents the tablet may write)."""
        return self.store.resolve_conflicts(self.policy, should_resolve=self.should_resolve)

    def run_once(self) -> SyncResult:
        """Pull, resolve, push: one complete two-way sync."""
        pull = self.pull.run()
        conflicts = self.resolve()
        push = self.push.run()
        return SyncResult(pull=pull, push=push, conflicts=conflicts)

    def run_live(self, stop: threading.Event, **live_options: Any) -> None:
        """Pull and push continuously in two threads until `stop` is set or credentials fail.

        An AuthError in either direction stops both and is kept in `self.error` (and re-raised).
        """

        def direction(replicator: Replicator, after: Callable[[ReplicationResult], None] | None) -> None:
            try:
                replicator.run_live(stop, on_result=after, **live_options)
            except BaseException as exc:
                self.error = exc
                stop.set()

        threads = [
            threading.Thread(target=direction, args=(self.pull, lambda _r: self.resolve()), daemon=True),
            threading.Thread(target=direction, args=(self.push, None), daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.error is not None:
            raise self.error
