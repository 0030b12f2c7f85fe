"""The CouchDB replication protocol between two `Peer`s, one-shot or live, and the tablet's two-way `Sync`.

One run (CouchDB docs, "Replication Protocol"):

1. Replication id: md5 over canonical JSON of both peers' ids (the local one carries the store's
   persisted uuid, the remote one its URL without credentials and the database) and any filter.
2. Read ``_local/<id>`` on both sides; resume from the source's ``source_last_seq`` when both
   sessions match, else from the newest session both histories share, else from the start.
3. Per batch: ``_changes?style=all_docs&since=S&limit=N`` -> ``_revs_diff`` on the target ->
   ``_bulk_get`` on the source -> ``_bulk_docs`` with ``new_edits: false`` on the target ->
   ``_revs_diff`` on the target again, to prove every revision sent is stored (a server may answer
   ``201 []`` and store nothing); what is missing is sent once more, and what is still missing is
   listed in ``ReplicationResult.unconfirmed`` -> checkpoint (target first, then source) at the
   batch's last_seq. A checkpoint is only written after the batch's documents are; a run that finds
   no changes writes nothing.

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
from mobile.sync.store import ConflictPolicy, ConflictRecord, Doc, KeepWinner, Store, SyncProblem

REPLICATOR = "curbstop-mobile-sync"
CHECKPOINT_VERSION = 1
HISTORY_LIMIT = 50  # sessions kept in a checkpoint's history, as CouchDB does
DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_REQUEST_BYTES = 1 << 20
# Per-document errors that are final: report, count, never retry (SYNC-NOTES).
REJECTED = frozenset({"forbidden", "unauthorized"})


def replication_id(
    source_id: str, target_id: str, doc_ids: Sequence[str] | None = None, *, attachments: bool = True
) -> str:
    """md5 of canonical JSON of the version, both peer ids (direction = their order) and the filter."""
    spec: dict[str, Any] = {
        "version": CHECKPOINT_VERSION,
        "source": source_id,
        "target": target_id,
        "filter": {"doc_ids": sorted(doc_ids)} if doc_ids is not None else None,
    }
    if not attachments:
        spec["filter"] = {**(spec["filter"] or {}), "attachments": False}
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
    # Sent (twice), answered as written, and still not on the target: {id, rev, reason}.
    unconfirmed: list[Doc] = field(default_factory=list)
    revs_diff_checks: int = 0
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
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        attachments: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if max_request_bytes < 1:
            raise ValueError(f"max_request_bytes must be at least 1, got {max_request_bytes}")
        # Attachment data per _bulk_docs request: what a cut can cost (a photo is ~400 KB of base64).
        self.max_request_bytes = max_request_bytes
        # False: a pass that leaves documents carrying new attachment data for a later full pass
        # (its own replication id and checkpoint): what a metered link sends first.
        self.attachments = attachments
        self.source = source
        self.target = target
        self.batch_size = batch_size
        self.prefetch = prefetch  # batches fetched ahead of the writer (0: strictly one at a time)
        self.doc_ids = list(doc_ids) if doc_ids is not None else None
        self.id = replication_id(source.peer_id(), target.peer_id(), self.doc_ids, attachments=attachments)
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
            if not self.attachments:  # left for the full pass
                batch.docs = [d for d in batch.docs if not _attachment_bytes(d)]
        return batch

    def _write(self, docs: list[Doc], requests: list[Doc], result: ReplicationResult) -> None:
        if not docs:
            return
        rejected: set[tuple[str, str]] = set()
        sent: list[Doc] = []
        for part in self._parts(docs):
            part, failures = self._send(part, requests, result)
            sent.extend(part)
            rejected |= self._rejections(failures, part, result)
        docs = sent
        missing = self._not_stored(docs, rejected, result)
        if missing:  # answered as written but not there: send those once more, then check again
            for part in self._parts(missing):
                result.bulk_docs_calls += 1
                rejected |= self._rejections(self.target.bulk_docs(part), part, result)
            missing = self._not_stored(missing, rejected, result)
            for doc in missing:
                result.unconfirmed.append(
                    {
                        "id": doc["_id"],
                        "rev": doc["_rev"],
                        "reason": "sent twice and answered as written, but the target does not have it",
                    }
                )
        result.docs_written += len(docs) - len(rejected) - len(missing)

    def _parts(self, docs: Sequence[Doc]) -> Iterator[list[Doc]]:
        """The batch as requests of at most `max_request_bytes` of attachment data each.

        Documents without attachment data go first (events and results without photos reach the
        server before any photo), then documents with photos, smallest first, in requests that a
        cut interrupts without losing the ones before: the next run's ``_revs_diff`` skips them.
        A document larger than the limit goes alone.
        """
        light = [d for d in docs if not _attachment_bytes(d)]
        heavy = sorted((d for d in docs if _attachment_bytes(d)), key=_attachment_bytes)
        if light:
            yield light
        part: list[Doc] = []
        size = 0
        for doc in heavy:
            n = _attachment_bytes(doc)
            if part and size + n > self.max_request_bytes:
                yield part
                part, size = [], 0
            part.append(doc)
            size += n
        if part:
            yield part

    def _send(
        self, docs: list[Doc], requests: Sequence[Doc], result: ReplicationResult
    ) -> tuple[list[Doc], list[Doc]]:
        """One ``_bulk_docs`` request (stubs the target lacks are sent again inline); (docs sent, failures)."""
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
            docs = [d for d in docs if d["_id"] not in stubbed] + retry
        return docs, failures

    def _rejections(
        self, failures: Sequence[Doc], docs: Sequence[Doc], result: ReplicationResult
    ) -> set[tuple[str, str]]:
        """Count per-document refusals; raise on any other failure. Returns the refused (id, rev)s."""
        revs_of: dict[str, list[str]] = {}
        for doc in docs:
            revs_of.setdefault(doc["_id"], []).append(doc["_rev"])
        refused: set[tuple[str, str]] = set()
        for failure in failures:
            if failure.get("error") in REJECTED:
                doc_id = str(failure.get("id"))
                # pouchdb-server names no rev in a refusal: then it is every revision of that id sent.
                revs = [str(failure["rev"])] if failure.get("rev") else revs_of.get(doc_id, [])
                for rev in revs:
                    if (doc_id, rev) not in refused:
                        refused.add((doc_id, rev))
                        result.forbidden.append({**failure, "id": doc_id, "rev": rev})
            else:
                # Unknown per-document failure: stop before the checkpoint, so nothing is skipped.
                raise SyncError(
                    f"target refused {failure.get('id')} {failure.get('rev')}: "
                    f"{failure.get('error')}: {failure.get('reason')}",
                    doc_id=failure.get("id"),
                )
        return refused

    def _not_stored(
        self, docs: Sequence[Doc], rejected: set[tuple[str, str]], result: ReplicationResult
    ) -> list[Doc]:
        """The documents sent (and not refused) that the target's ``_revs_diff`` says it lacks."""
        sent: dict[str, list[str]] = {}
        for doc in docs:
            if (doc["_id"], doc["_rev"]) not in rejected:
                sent.setdefault(doc["_id"], []).append(doc["_rev"])
        if not sent:
            return []
        result.revs_diff_checks += 1
        diff = self.target.revs_diff(sent)
        lacking = {(doc_id, rev) for doc_id, entry in diff.items() for rev in entry.get("missing", [])}
        return [d for d in docs if (d["_id"], d["_rev"]) in lacking]

    def recheck(
        self, revisions: Sequence[tuple[str, str]]
    ) -> tuple[list[tuple[str, str]], ReplicationResult]:
        """Check revisions an earlier run could not prove landed; send what is still missing, once.

        Returns the (id, rev)s now on the target and the result of the attempt (its `unconfirmed`,
        `forbidden` and `missing_on_source` name what is still not there).
        """
        result = ReplicationResult(replication_id=self.id, session_id=uuid.uuid4().hex)
        wanted: dict[str, list[str]] = {}
        for doc_id, rev in revisions:
            wanted.setdefault(doc_id, []).append(rev)
        if not wanted:
            return [], result
        result.revs_diff_checks += 1
        diff = self.target.revs_diff(wanted)
        missing = {(doc_id, rev) for doc_id, entry in diff.items() for rev in entry.get("missing", [])}
        landed = [(doc_id, rev) for doc_id, rev in revisions if (doc_id, rev) not in missing]
        if missing:
            requests: list[Doc] = [{"id": doc_id, "rev": rev} for doc_id, rev in sorted(missing)]
            # latest=true: a revision edited since comes back as its leaves, whose history carries it.
            docs, result.missing_on_source = self.source.bulk_get(requests)
            docs = _unique(docs)
            result.docs_read = len(docs)
            self._write(docs, requests, result)
            still: dict[str, list[str]] = {}
            for doc_id, rev in missing:
                still.setdefault(doc_id, []).append(rev)
            result.revs_diff_checks += 1
            diff = self.target.revs_diff(still)
            lacking = {(doc_id, rev) for doc_id, entry in diff.items() for rev in entry.get("missing", [])}
            landed.extend(sorted(missing - lacking))
        return landed, result

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


def _attachment_bytes(doc: Mapping[str, Any]) -> int:
    """Bytes of inline attachment data (base64 text) the document carries."""
    atts = doc.get("_attachments") or {}
    return sum(len(a.get("data") or "") for a in atts.values() if isinstance(a, Mapping))


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


PUSH = "push"
PULL = "pull"
# A `_local` document in the CSFR's database where each device reports its open sync problems;
# `_local` documents do not replicate and skip validation, and the server reads it by id.
REPORT_ID = "_local/curbstop-sync-report"
_REPORTED = "_local/curbstop-sync-report-sent"  # in the store: what this device last reported


@dataclass
class SyncResult:
    """One two-way sync: the pull, the conflicts resolved in between, the push, what is still open."""

    pull: ReplicationResult
    push: ReplicationResult
    conflicts: list[ConflictRecord]
    # Server-owned documents whose refused local edits were replaced by the server's copy.
    restored: list[ConflictRecord] = field(default_factory=list)
    # Every open sync problem after this run (also kept in the store until resolved).
    problems: list[SyncProblem] = field(default_factory=list)


def _problems(result: ReplicationResult, *, refusals: Sequence[Doc] = ()) -> list[Doc]:
    """The store's problem rows for what one run could not prove landed."""
    rows: list[Doc] = [
        {"id": u["id"], "rev": u["rev"], "kind": "not_stored", "reason": u["reason"]}
        for u in result.unconfirmed
    ]
    rows += [
        {
            "id": f["id"],
            "rev": f["rev"],
            "kind": "refused",
            "reason": f"{f.get('error')}: {f.get('reason') or 'refused by the other side'}",
        }
        for f in refusals
    ]
    rows += [
        {
            "id": e.get("id"),
            "rev": e.get("rev"),
            "kind": "not_sent",
            "reason": f"listed in the changes but not delivered: {e.get('error') or 'missing'}",
        }
        for e in result.missing_on_source
        if e.get("id") and e.get("rev")
    ]
    return rows


class Sync:
    """The tablet's two-way sync: pull, resolve conflicts with the policy, push, prove what landed.

    Only documents the tablet may write (`contracts.couch.tablet_writes`) are resolved here; a
    conflict on a server-owned document stays visible in ``_conflicts`` until the server resolves it.
    A local edit of a server-owned document that the server refuses is replaced by the server's
    copy (`Store.adopt`), so the tablet never keeps showing its own refused branch.

    Revisions that could not be proved on the other side (sent twice and still missing, refused,
    or listed but never delivered) are kept in the store (`Store.sync_problems`), checked and sent
    again at the start of every later run, and reported to the server in ``_local/curbstop-sync-report``.
    """

    def __init__(
        self,
        store: Store,
        remote: RemoteDB,
        *,
        policy: ConflictPolicy | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        should_resolve: Callable[[str], bool] | None = tablet_writes,
        device: str | None = None,
        photos_last: bool = False,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self.store = store
        self.remote = remote
        self.policy: ConflictPolicy = policy or KeepWinner()
        self.should_resolve = should_resolve
        self.device = device or store.uuid
        local = LocalPeer(store)
        self.pull = Replicator(remote, local, batch_size=batch_size)
        self.push = Replicator(local, remote, batch_size=batch_size, max_request_bytes=max_request_bytes)
        # Metered links: a first push leaves every document with photos for the full push after it,
        # so the whole backlog of events and photo-less results lands before any photo is sent.
        self.push_first = (
            Replicator(local, remote, batch_size=batch_size, attachments=False) if photos_last else None
        )
        self.error: BaseException | None = None

    def resolve(self) -> list[ConflictRecord]:
        """Resolve the store's conflicts with the policy (only documents the tablet may write)."""
        return self.store.resolve_conflicts(self.policy, should_resolve=self.should_resolve)

    def run_once(self) -> SyncResult:
        """Recheck earlier problems, pull, resolve, push, settle what the push could not land."""
        self.recheck()
        pull = self.pull.run()
        self.settle_pull(pull)
        conflicts = self.resolve()
        restored: list[ConflictRecord] = []
        if self.push_first is not None:
            restored += self.settle_push(self.push_first.run())
        push = self.push.run()
        restored += self.settle_push(push)
        problems = self.store.sync_problems()
        self.report(problems)
        return SyncResult(pull=pull, push=push, conflicts=conflicts, restored=restored, problems=problems)

    def owned_by_server(self, doc_id: str) -> bool:
        """Whether the tablet may not write `doc_id` (its refused edits give way to the server's copy)."""
        return self.should_resolve is not None and not self.should_resolve(doc_id)

    def settle_pull(self, pull: ReplicationResult) -> None:
        """Record what the pull could not prove it stored locally."""
        self.store.record_sync_problems(PULL, _problems(pull, refusals=pull.forbidden))

    def settle_push(self, push: ReplicationResult) -> list[ConflictRecord]:
        """Replace refused server-owned documents by the server's copy; record every other problem."""
        # Recorded first: if restoring fails (a cut), the next run's recheck restores it.
        self.store.record_sync_problems(PUSH, _problems(push, refusals=push.forbidden))
        refused_here: dict[str, list[str]] = {}
        for failure in push.forbidden:
            if self.owned_by_server(str(failure["id"])):
                refused_here.setdefault(str(failure["id"]), []).append(str(failure["rev"]))
        return self._restore(refused_here)

    def _restore(self, refused: Mapping[str, Sequence[str]]) -> list[ConflictRecord]:
        """Give each server-owned document the server's copy; clear its refusals."""
        restored: list[ConflictRecord] = []
        for doc_id, revs in refused.items():
            restored.append(self.store.adopt(doc_id, self.remote.open_revs_all(doc_id), refused=revs))
            self.store.clear_sync_problems(PUSH, [(doc_id, rev) for rev in revs])
        return restored

    def recheck(self) -> None:
        """Check earlier problems: clear what is now there, send again (once) what is still missing.

        Refused revisions are only checked, never sent again: retrying cannot change the answer.
        """
        owned: dict[str, list[str]] = {}
        for problem in self.store.sync_problems(PUSH):
            if problem.kind == "refused" and self.owned_by_server(problem.doc_id):
                owned.setdefault(problem.doc_id, []).append(problem.rev)
        self._restore(owned)  # a restore an earlier run could not finish
        for direction, replicator in ((PULL, self.pull), (PUSH, self.push)):
            open_problems = self.store.sync_problems(direction)
            if not open_problems:
                continue
            retry = [(p.doc_id, p.rev) for p in open_problems if p.kind != "refused"]
            refused = [(p.doc_id, p.rev) for p in open_problems if p.kind == "refused"]
            landed, attempt = replicator.recheck(retry)
            if refused:
                diff = replicator.target.revs_diff({d: [r for i, r in refused if i == d] for d, _ in refused})
                lacking = {(d, r) for d, e in diff.items() for r in e.get("missing", [])}
                landed += [key for key in refused if key not in lacking]
            self.store.clear_sync_problems(direction, landed)
            still = (set(retry) | set(refused)) - set(landed)
            rows = [r for r in _problems(attempt, refusals=attempt.forbidden) if (r["id"], r["rev"]) in still]
            listed = {(r["id"], r["rev"]) for r in rows}
            rows += [
                {"id": p.doc_id, "rev": p.rev, "kind": p.kind, "reason": p.reason}
                for p in open_problems
                if (p.doc_id, p.rev) in still and (p.doc_id, p.rev) not in listed
            ]
            self.store.record_sync_problems(direction, rows)

    def report(self, problems: Sequence[SyncProblem]) -> bool:
        """Tell the server this device's open problems (only when they changed); True if written.

        Best effort: a failure here is retried on the next run and never fails the sync.
        """
        entry = {
            "problems": [
                {
                    "direction": p.direction,
                    "id": p.doc_id,
                    "rev": p.rev,
                    "kind": p.kind,
                    "reason": p.reason,
                    "first_seen": p.first_seen,
                    "attempts": p.attempts,
                }
                for p in problems
            ]
        }
        sent = self.store.get_local(_REPORTED)
        if sent is not None and sent.get("entry") == entry:
            return False
        if sent is None and not problems:
            return False  # nothing ever went wrong: nothing to report
        try:
            current = self.remote.get_local(REPORT_ID) or {"_id": REPORT_ID}
            devices = dict(current.get("devices", {}))
            devices[self.device] = entry | {"reported_at": dt.datetime.now(dt.UTC).isoformat()}
            self.remote.put_local({**current, "_id": REPORT_ID, "devices": devices})
        except SyncError:
            return False
        self.store.put_local(
            {"_id": _REPORTED, "_rev": None if sent is None else sent["_rev"], "entry": entry}
        )
        return True

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

        def after_pull(result: ReplicationResult) -> None:
            self.settle_pull(result)
            self.resolve()

        def after_push(result: ReplicationResult) -> None:
            self.settle_push(result)
            self.report(self.store.sync_problems())

        threads = [
            threading.Thread(target=direction, args=(self.pull, after_pull), daemon=True),
            threading.Thread(target=direction, args=(self.push, after_push), daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.error is not None:
            raise self.error
