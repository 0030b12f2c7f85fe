"""The tablet's document store: SQLite with CouchDB revision trees, attachments and `_local` documents.

The app reads and writes only this store; `mobile.sync.replicator` moves its revisions to and from
CouchDB. Semantics follow CouchDB: the same winning revision, `_conflicts` / `_deleted_conflicts`,
409 on a stale `_rev`, attachment stubs with digest/length/revpos, a changes feed with sequences.

Tables
------
docs         one row per document: its revision tree (JSON), winner, deleted/conflicted flags, last seq
bodies       the JSON body of every leaf revision (bodies of non-leaves are dropped, as CouchDB compacts)
attachments  attachment bytes by digest (``md5-<base64>``), shared by every revision that names them
local_docs   `_local/...` documents: not replicated, no history (checkpoints, app settings)
conflict_log every conflict the store resolved or noticed, with the policy that decided it
sync_problems revisions replication could not prove landed (or the other side refused), until they do
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mobile.sync import revtree
from mobile.sync.errors import BadRequest, Conflict, MissingStub, NotFound
from mobile.sync.revtree import RevNode, RevTree

Doc = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    doc_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    winner TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    conflicted INTEGER NOT NULL,
    tree TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS docs_by_seq ON docs(seq);
CREATE INDEX IF NOT EXISTS docs_conflicted ON docs(conflicted) WHERE conflicted = 1;
CREATE TABLE IF NOT EXISTS bodies (
    doc_id TEXT NOT NULL, rev TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (doc_id, rev)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attachments (digest TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS local_docs (doc_id TEXT PRIMARY KEY, rev INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conflict_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    winner TEXT NOT NULL,
    losers TEXT NOT NULL,
    policy TEXT NOT NULL,
    resolved_rev TEXT,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_problems (
    direction TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    rev TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (direction, doc_id, rev)
) WITHOUT ROWID;
"""

LOCAL_PREFIX = "_local/"


def attachment_digest(data: bytes) -> str:
    """CouchDB's attachment digest: ``md5-`` and the base64 of the md5 of the bytes."""
    return "md5-" + base64.b64encode(hashlib.md5(data).digest()).decode()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ConflictRecord:
    """One entry of the conflict log: which leaves lost to which winner, and who decided."""

    doc_id: str
    kind: str  # "resolved" (losing live leaves tombstoned) or "revived" (a live edit beat a delete)
    winner: str
    losers: list[str]
    policy: str
    resolved_rev: str | None
    recorded_at: str


@dataclass(frozen=True, slots=True)
class SyncProblem:
    """A revision sync could not prove is on the other side, kept until it is (or is gone here).

    `direction` is ``push`` or ``pull``; `kind` is ``not_stored`` (sent, answered as written, not
    there: retried on every sync), ``refused`` (the other side's validation said no: not retried),
    or ``not_sent`` (listed in the source's changes but not delivered: fetched again on every sync).
    """

    direction: str
    doc_id: str
    rev: str
    kind: str
    reason: str
    first_seen: str
    last_seen: str
    attempts: int


class ConflictPolicy(Protocol):
    """Decides what a conflicted document becomes. Must be deterministic: both sides may run it."""

    name: str

    def merge(self, doc_id: str, winner: Doc, losers: Sequence[Doc]) -> Mapping[str, Any] | None:
        """Return a new body to write on top of the winner, or None to keep the winner unchanged."""
        ...


class KeepWinner:
    """Default policy: CouchDB's winner stays; losing branches are tombstoned and logged with their bodies."""

    name = "keep_winner"

    def merge(self, doc_id: str, winner: Doc, losers: Sequence[Doc]) -> Mapping[str, Any] | None:
        """Keep the winner's body as it is."""
        return None


@dataclass(slots=True)
class _Loaded:
    tree: RevTree
    winner: str
    deleted: bool
    leaves: list[str]


@dataclass(slots=True)
class _Pending:
    """Rows a batch of writes will send to SQLite in three executemany calls."""

    docs: list[tuple[Any, ...]] = field(default_factory=list)
    bodies: list[tuple[str, str, str]] = field(default_factory=list)
    gone: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class WriteResult:
    """What a replicated write did: how many revisions were new, and the per-document errors."""

    written: int = 0
    errors: list[Doc] = field(default_factory=list)


class Store:
    """A CouchDB-like document database in one SQLite file (or in memory); safe to share between threads."""

    def __init__(
        self, path: str | Path = ":memory:", *, revs_limit: int = revtree.DEFAULT_REVS_LIMIT
    ) -> None:
        if revs_limit < 1:
            raise ValueError(f"revs_limit must be at least 1, got {revs_limit}")
        self.path = str(path)
        self.revs_limit = revs_limit
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'uuid'").fetchone()
        if row is None:
            self.uuid = uuid.uuid4().hex
            self._db.execute("INSERT INTO meta VALUES ('uuid', ?)", (self.uuid,))
        else:
            self.uuid = str(row[0])
        self._seq = int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM docs").fetchone()[0])

    # -- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._db.close()

    @property
    def update_seq(self) -> int:
        """The sequence number of the latest change."""
        return self._seq

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            before = self._seq
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                self._seq = before
                raise
            self._db.execute("COMMIT")
            if self._seq != before:
                self._changed.notify_all()

    def _load(self, doc_id: str) -> _Loaded | None:
        row = self._db.execute(
            "SELECT tree, winner, deleted FROM docs WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            return None
        tree = revtree.loads_tree(row[0])
        # Leaves before the caller edits the tree in place: their bodies may need dropping on save.
        return _Loaded(tree=tree, winner=row[1], deleted=bool(row[2]), leaves=revtree.leaves(tree))

    def _body(self, doc_id: str, rev: str) -> Doc | None:
        row = self._db.execute(
            "SELECT body FROM bodies WHERE doc_id = ? AND rev = ?", (doc_id, rev)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def _save(
        self, doc_id: str, tree: RevTree, new_bodies: Mapping[str, Doc], previous: _Loaded | None
    ) -> None:
        """Stem, recompute winner and flags, keep bodies of leaves only, give the document a new seq."""
        pending = _Pending()
        self._stage(pending, doc_id, tree, new_bodies, previous)
        self._flush(pending)

    def _stage(
        self,
        pending: _Pending,
        doc_id: str,
        tree: RevTree,
        new_bodies: Mapping[str, Doc],
        previous: _Loaded | None,
    ) -> None:
        """Compute one document's new row; the SQL is batched in `_flush`."""
        if len(tree) > self.revs_limit:  # a path can only be too long when the tree is
            revtree.stem(tree, self.revs_limit)
        leaf_list = revtree.leaves(tree)
        leaves = set(leaf_list)
        winner = max(leaf_list, key=lambda r: revtree.winner_key(r, tree[r].deleted))
        has_live_conflict = any(not tree[r].deleted for r in leaf_list if r != winner)
        if previous is not None:
            # Only leaves have bodies; drop those of revisions that stopped being leaves.
            pending.gone.extend((doc_id, rev) for rev in previous.leaves if rev not in leaves)
            if (
                previous.deleted
                and not tree[winner].deleted
                and previous.winner not in revtree.ancestry(tree, winner)
            ):
                # An edit on another branch beat a delete: CouchDB revives the document. Record it.
                self._log(doc_id, "revived", winner, [previous.winner], "couchdb_winner", None)
        if not tree[winner].deleted and len(leaf_list) > 1:
            # A delete that arrives after (or beside) a live edit loses to it. Tombstones written by
            # conflict resolution carry `resolved_by` and are expected; any other is recorded.
            lost = [
                rev
                for rev, body in new_bodies.items()
                if rev in leaves and tree[rev].deleted and "resolved_by" not in body and rev != winner
            ]
            if lost:
                self._log(doc_id, "revived", winner, lost, "couchdb_winner", None)
        pending.bodies.extend(
            (doc_id, rev, _dumps(body)) for rev, body in new_bodies.items() if rev in leaves
        )
        self._seq += 1
        pending.docs.append(
            (
                doc_id,
                self._seq,
                winner,
                int(tree[winner].deleted),
                int(has_live_conflict),
                revtree.dumps_tree(tree),
            )
        )

    def _flush(self, pending: _Pending) -> None:
        if pending.gone:
            self._db.executemany("DELETE FROM bodies WHERE doc_id = ? AND rev = ?", pending.gone)
        self._db.executemany("INSERT OR REPLACE INTO bodies VALUES (?, ?, ?)", pending.bodies)
        self._db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?, ?)", pending.docs)

    def _load_many(self, doc_ids: Sequence[str]) -> dict[str, _Loaded]:
        """Load many documents' trees with few queries (for replicated batches)."""
        out: dict[str, _Loaded] = {}
        unique = list(dict.fromkeys(doc_ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for doc_id, tree_text, winner, deleted in self._db.execute(
                f"SELECT doc_id, tree, winner, deleted FROM docs WHERE doc_id IN ({marks})", chunk
            ):
                tree = revtree.loads_tree(tree_text)
                out[doc_id] = _Loaded(
                    tree=tree, winner=winner, deleted=bool(deleted), leaves=revtree.leaves(tree)
                )
        return out

    def _log(
        self, doc_id: str, kind: str, winner: str, losers: list[str], policy: str, resolved: str | None
    ) -> ConflictRecord:
        record = ConflictRecord(
            doc_id=doc_id,
            kind=kind,
            winner=winner,
            losers=losers,
            policy=policy,
            resolved_rev=resolved,
            recorded_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        self._db.execute(
            "INSERT INTO conflict_log (doc_id, kind, winner, losers, policy, resolved_rev, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc_id, kind, winner, _dumps(losers), policy, resolved, record.recorded_at),
        )
        return record

    # -- attachments ------------------------------------------------------------------------------

    def _prepare_attachments(
        self, doc_id: str, given: Mapping[str, Any], parent_atts: Mapping[str, Any], gen: int
    ) -> tuple[dict[str, Any], dict[str, bytes]]:
        """Turn a put's ``_attachments`` into stored stubs; new data gets revpos = the new generation."""
        out: dict[str, Any] = {}
        blobs: dict[str, bytes] = {}
        for name, att in given.items():
            if not isinstance(att, Mapping):
                raise BadRequest(f"attachment {name!r} must be an object", doc_id=doc_id)
            if att.get("stub"):
                kept = parent_atts.get(name)
                if kept is None:
                    raise MissingStub(
                        f"attachment {name!r} is a stub but the parent revision has none", doc_id=doc_id
                    )
                out[name] = dict(kept)
                continue
            raw = att.get("data")
            if raw is None:
                raise BadRequest(f"attachment {name!r} needs 'data' or 'stub': true", doc_id=doc_id)
            data = raw if isinstance(raw, bytes) else base64.b64decode(raw, validate=True)
            digest = attachment_digest(data)
            old = parent_atts.get(name)
            revpos = old["revpos"] if old is not None and old.get("digest") == digest else gen
            out[name] = {
                "content_type": att.get("content_type", "application/octet-stream"),
                "digest": digest,
                "length": len(data),
                "revpos": revpos,
                "stub": True,
            }
            blobs[digest] = data
        return out, blobs

    def _store_blobs(self, blobs: Mapping[str, bytes]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO attachments VALUES (?, ?)", list(blobs.items()))

    def _has_blob(self, digest: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM attachments WHERE digest = ?", (digest,)).fetchone() is not None
        )

    def _blob(self, digest: str) -> bytes:
        row = self._db.execute("SELECT data FROM attachments WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            raise NotFound(f"attachment data {digest} is missing")
        return bytes(row[0])

    # -- the app's API ----------------------------------------------------------------------------

    def put(self, doc: Mapping[str, Any]) -> str:
        """Write a new revision of `doc` (CouchDB's PUT); return the new `_rev`. 409 on a stale `_rev`."""
        doc_id = doc.get("_id")
        if not isinstance(doc_id, str) or not doc_id:
            raise BadRequest("a document needs a non-empty string _id")
        if doc_id.startswith(LOCAL_PREFIX):
            return self.put_local(doc)
        if doc_id.startswith("_") and not doc_id.startswith("_design/"):
            raise BadRequest(f"document id {doc_id!r} may not start with '_'", doc_id=doc_id)
        rev = doc.get("_rev")
        deleted = bool(doc.get("_deleted"))
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        with self._tx():
            loaded = self._load(doc_id)
            tree: RevTree = {} if loaded is None else loaded.tree
            parent: str | None
            if loaded is None:
                if rev is not None:
                    raise Conflict(
                        f"document {doc_id!r} does not exist; cannot update revision {rev}", doc_id=doc_id
                    )
                parent = None
            elif rev is None:
                if not loaded.deleted:
                    raise Conflict(f"document {doc_id!r} exists; an update must name its _rev", doc_id=doc_id)
                parent = loaded.winner  # re-creating a deleted document extends the tombstone
            else:
                if rev not in tree or rev not in revtree.leaves(tree):
                    raise Conflict(f"revision {rev} is not the current revision of {doc_id!r}", doc_id=doc_id)
                parent = rev
            parent_body = (self._body(doc_id, parent) or {}) if parent else {}
            gen = revtree.generation(parent) + 1 if parent else 1
            atts: dict[str, Any] = {}
            blobs: dict[str, bytes] = {}
            if not deleted:
                atts, blobs = self._prepare_attachments(
                    doc_id, doc.get("_attachments") or {}, parent_body.get("_attachments", {}), gen
                )
            new = revtree.new_rev(
                parent,
                deleted=deleted,
                body=body,
                attachment_digests={n: a["digest"] for n, a in atts.items()},
            )
            if new in tree:
                raise Conflict(f"revision {new} of {doc_id!r} already exists", doc_id=doc_id)
            tree[new] = RevNode(parent=parent, deleted=deleted)
            stored = dict(body)
            if atts:
                stored["_attachments"] = atts
            self._store_blobs(blobs)
            self._save(doc_id, tree, {new: stored}, loaded)
            return new

    def delete(self, doc_id: str, rev: str) -> str:
        """Delete by writing a tombstone child of `rev`; return the tombstone's revision."""
        return self.put({"_id": doc_id, "_rev": rev, "_deleted": True})

    def put_attachment(self, doc_id: str, rev: str | None, name: str, data: bytes, content_type: str) -> str:
        """Add or replace one attachment (a photo), creating the document if `rev` is None."""
        current: Doc = {"_id": doc_id} if rev is None else self.get(doc_id, rev=rev)
        atts: dict[str, dict[str, Any]] = {n: {"stub": True} for n in current.get("_attachments", {})}
        atts[name] = {"content_type": content_type, "data": data}
        current["_attachments"] = atts
        return self.put(current)

    def get(
        self,
        doc_id: str,
        *,
        rev: str | None = None,
        conflicts: bool = False,
        revs: bool = False,
        attachments: bool = False,
    ) -> Doc:
        """The winning revision (or `rev`) as CouchDB returns it; NotFound if missing or deleted."""
        if doc_id.startswith(LOCAL_PREFIX):
            local = self.get_local(doc_id)
            if local is None:
                raise NotFound(f"{doc_id} is missing", doc_id=doc_id)
            return local
        with self._lock:
            loaded = self._load(doc_id)
            if loaded is None:
                raise NotFound(f"document {doc_id!r} is missing", doc_id=doc_id)
            if rev is None:
                if loaded.deleted:
                    raise NotFound(f"document {doc_id!r} is deleted", doc_id=doc_id)
                rev = loaded.winner
            return self._render(
                doc_id, loaded.tree, rev, conflicts=conflicts, revs=revs, attachments=attachments
            )

    def _render(
        self, doc_id: str, tree: RevTree, rev: str, *, conflicts: bool, revs: bool, attachments: bool
    ) -> Doc:
        body = self._body(doc_id, rev) if rev in tree else None
        if body is None:
            raise NotFound(f"revision {rev} of {doc_id!r} is missing", doc_id=doc_id)
        doc: Doc = {"_id": doc_id, "_rev": rev, **body}
        if tree[rev].deleted:
            doc["_deleted"] = True
        if "_attachments" in doc:
            if attachments:
                doc["_attachments"] = {
                    name: {k: v for k, v in att.items() if k != "stub"}
                    | {"data": base64.b64encode(self._blob(att["digest"])).decode()}
                    for name, att in doc["_attachments"].items()
                }
            else:
                doc["_attachments"] = {name: dict(att) for name, att in doc["_attachments"].items()}
        if conflicts:
            live, dead = revtree.conflicts(tree)
            if live:
                doc["_conflicts"] = live
            if dead:
                doc["_deleted_conflicts"] = dead
        if revs:
            doc["_revisions"] = revtree.revisions_field(tree, rev)
        return doc

    def get_attachment(self, doc_id: str, name: str, *, rev: str | None = None) -> bytes:
        """The bytes of one attachment of the winning revision (or `rev`)."""
        doc = self.get(doc_id, rev=rev)
        att = doc.get("_attachments", {}).get(name)
        if att is None:
            raise NotFound(f"document {doc_id!r} has no attachment {name!r}", doc_id=doc_id)
        with self._lock:
            return self._blob(att["digest"])

    def revs_tree(self, doc_id: str) -> RevTree:
        """A copy of the document's revision tree (for tests and diagnostics)."""
        with self._lock:
            loaded = self._load(doc_id)
            if loaded is None:
                raise NotFound(f"document {doc_id!r} is missing", doc_id=doc_id)
            return loaded.tree

    def all_docs(self, *, include_docs: bool = False, prefix: str | None = None) -> list[Doc]:
        """Rows ``{id, key, value: {rev}, doc?}`` of live documents by id (CouchDB's `_all_docs`)."""
        sql = "SELECT doc_id, winner FROM docs WHERE deleted = 0"
        params: tuple[Any, ...] = ()
        if prefix:
            sql += " AND doc_id >= ? AND doc_id < ?"
            params = (prefix, prefix + "\uffff")
        with self._lock:
            rows: list[Doc] = []
            for doc_id, winner in self._db.execute(sql + " ORDER BY doc_id", params).fetchall():
                row: Doc = {"id": doc_id, "key": doc_id, "value": {"rev": winner}}
                if include_docs:
                    row["doc"] = self.get(doc_id)
                rows.append(row)
            return rows

    def changes(
        self, since: int | str = 0, *, limit: int | None = None, include_docs: bool = False
    ) -> tuple[list[Doc], int]:
        """Changes after `since`, one row per document with every leaf (style=all_docs); and last_seq."""
        since_seq = self._parse_seq(since)
        sql = "SELECT doc_id, seq, winner, deleted, tree FROM docs WHERE seq > ? ORDER BY seq"
        params: tuple[Any, ...] = (since_seq,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        with self._lock:
            rows: list[Doc] = []
            last = since_seq
            for doc_id, seq, winner, deleted, tree_text in self._db.execute(sql, params).fetchall():
                tree = revtree.loads_tree(tree_text)
                leaves = sorted(
                    revtree.leaves(tree), key=lambda r: revtree.winner_key(r, tree[r].deleted), reverse=True
                )
                row: Doc = {"seq": seq, "id": doc_id, "changes": [{"rev": r} for r in leaves]}
                if deleted:
                    row["deleted"] = True
                if include_docs:
                    row["doc"] = self._render(
                        doc_id, tree, winner, conflicts=False, revs=False, attachments=False
                    )
                rows.append(row)
                last = seq
            return rows, last

    @staticmethod
    def _parse_seq(since: int | str) -> int:
        if isinstance(since, int) and not isinstance(since, bool):
            return since
        if isinstance(since, str) and since.isdigit():
            return int(since)
        if since == "now":
            raise BadRequest("use store.update_seq instead of since='now'")
        raise BadRequest(f"invalid local sequence {since!r}")

    def wait_for_change(self, since: int | str, timeout_s: float) -> bool:
        """Block until the store has a change after `since` or `timeout_s` passes; True if it has."""
        since_seq = self._parse_seq(since)
        with self._changed:
            return self._changed.wait_for(lambda: self._seq > since_seq, timeout=timeout_s)

    def conflicted_ids(self) -> list[str]:
        """Ids of documents that have live conflicting leaves."""
        with self._lock:
            return [
                r[0] for r in self._db.execute("SELECT doc_id FROM docs WHERE conflicted = 1 ORDER BY doc_id")
            ]

    def doc_count(self) -> int:
        """How many live documents the store holds."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM docs WHERE deleted = 0").fetchone()[0])

    # -- _local documents -------------------------------------------------------------------------

    def get_local(self, doc_id: str) -> Doc | None:
        """A `_local/...` document, or None."""
        doc_id = doc_id if doc_id.startswith(LOCAL_PREFIX) else LOCAL_PREFIX + doc_id
        with self._lock:
            row = self._db.execute("SELECT rev, body FROM local_docs WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        return {"_id": doc_id, "_rev": f"0-{row[0]}", **json.loads(row[1])}

    def put_local(self, doc: Mapping[str, Any]) -> str:
        """Write a `_local/...` document; its `_rev` must match the stored one (409 otherwise)."""
        doc_id = str(doc["_id"])
        if not doc_id.startswith(LOCAL_PREFIX):
            doc_id = LOCAL_PREFIX + doc_id
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        with self._tx() as db:
            row = db.execute("SELECT rev FROM local_docs WHERE doc_id = ?", (doc_id,)).fetchone()
            current = None if row is None else f"0-{row[0]}"
            if doc.get("_rev") != current:
                raise Conflict(f"{doc_id} is at revision {current}, not {doc.get('_rev')}", doc_id=doc_id)
            if doc.get("_deleted"):
                db.execute("DELETE FROM local_docs WHERE doc_id = ?", (doc_id,))
                return "0-0"
            number = 1 if row is None else int(row[0]) + 1
            db.execute("INSERT OR REPLACE INTO local_docs VALUES (?, ?, ?)", (doc_id, number, _dumps(body)))
            return f"0-{number}"

    # -- what replication needs -------------------------------------------------------------------

    def revs_diff(self, revs: Mapping[str, Sequence[str]]) -> dict[str, Doc]:
        """CouchDB's `_revs_diff`: for each id with missing revisions, ``{missing, possible_ancestors}``."""
        out: dict[str, Doc] = {}
        with self._lock:
            loaded_many = self._load_many(list(revs))
            for doc_id, wanted in revs.items():
                loaded = loaded_many.get(doc_id)
                tree: RevTree = {} if loaded is None else loaded.tree
                missing = revtree.missing_revs(tree, wanted)
                if missing:
                    entry: Doc = {"missing": missing}
                    ancestors = revtree.possible_ancestors(tree, missing)
                    if ancestors:
                        entry["possible_ancestors"] = ancestors
                    out[doc_id] = entry
        return out

    def bulk_get(self, requests: Sequence[Mapping[str, Any]]) -> list[Doc]:
        """CouchDB's `_bulk_get?revs=true&latest=true&attachments=true` (data inline unless in `atts_since`)."""
        results: list[Doc] = []
        with self._lock:
            loaded_many = self._load_many([str(req["id"]) for req in requests])
            for req in requests:
                doc_id = str(req["id"])
                loaded = loaded_many.get(doc_id)
                docs: list[Doc] = []
                if loaded is None:
                    docs.append(
                        {
                            "error": {
                                "id": doc_id,
                                "rev": req.get("rev"),
                                "error": "not_found",
                                "reason": "missing",
                            }
                        }
                    )
                    results.append({"id": doc_id, "docs": docs})
                    continue
                tree = loaded.tree
                rev = req.get("rev") or loaded.winner
                leaves = revtree.leaves(tree)
                if rev in leaves:
                    wanted = [rev]
                elif rev in tree:  # latest=true: the leaves that descend from it
                    wanted = [leaf for leaf in leaves if rev in revtree.ancestry(tree, leaf)]
                else:
                    wanted = []
                if not wanted:
                    docs.append(
                        {"error": {"id": doc_id, "rev": rev, "error": "not_found", "reason": "missing"}}
                    )
                since_gen = max((revtree.generation(a) for a in req.get("atts_since") or ()), default=0)
                for leaf in wanted:
                    doc = self._render(doc_id, tree, leaf, conflicts=False, revs=False, attachments=False)
                    doc["_revisions"] = revtree.revisions_field(tree, leaf, self.revs_limit)
                    for att in doc.get("_attachments", {}).values():
                        if att["revpos"] > since_gen:
                            del att["stub"]
                            att["data"] = base64.b64encode(self._blob(att["digest"])).decode()
                    docs.append({"ok": doc})
                results.append({"id": doc_id, "docs": docs})
        return results

    def bulk_docs_replicated(self, docs: Sequence[Mapping[str, Any]]) -> WriteResult:
        """CouchDB's `_bulk_docs` with ``new_edits: false``: graft each revision with its history.

        Idempotent: a revision already present changes nothing and takes no new sequence number.
        A document whose attachment stub names data this store lacks gets a ``missing_stub`` error.
        """
        with self._tx():
            return self._graft(docs)

    def _graft(self, docs: Sequence[Mapping[str, Any]]) -> WriteResult:
        """The body of `bulk_docs_replicated`, inside the caller's transaction."""
        result = WriteResult()
        loaded_many = self._load_many([str(d.get("_id")) for d in docs])
        staged: dict[str, tuple[RevTree, dict[str, Doc]]] = {}
        for doc in docs:
            doc_id = doc.get("_id")
            rev = doc.get("_rev")
            if not isinstance(doc_id, str) or not isinstance(rev, str):
                raise BadRequest(f"a replicated document needs _id and _rev, got {doc_id!r} {rev!r}")
            if doc_id.startswith(LOCAL_PREFIX):
                continue
            revisions = doc.get("_revisions")
            path = revtree.path_from_revisions(revisions) if revisions else [rev]
            if path[0] != rev:
                raise BadRequest(f"_revisions of {doc_id!r} does not start at {rev}", doc_id=doc_id)
            deleted = bool(doc.get("_deleted"))
            loaded = loaded_many.get(doc_id)
            # A second revision of the same document in this batch continues the staged tree.
            tree, new_bodies = staged.get(doc_id, ({} if loaded is None else loaded.tree, {}))
            if rev in tree:
                continue  # already here: nothing to do
            stored = {k: v for k, v in doc.items() if not k.startswith("_")}
            atts: dict[str, Any] = {}
            blobs: dict[str, bytes] = {}
            missing_stub = False
            for name, att in (doc.get("_attachments") or {}).items():
                meta = {k: v for k, v in att.items() if k not in ("data", "stub", "follows", "encoding")}
                if "data" in att:
                    data = base64.b64decode(att["data"])
                    meta.setdefault("digest", attachment_digest(data))
                    meta["length"] = len(data)
                    blobs[meta["digest"]] = data
                elif not self._has_blob(str(att.get("digest"))):
                    missing_stub = True
                    break
                meta.setdefault("revpos", revtree.generation(rev))
                meta["stub"] = True
                atts[name] = meta
            if missing_stub:
                result.errors.append(
                    {
                        "id": doc_id,
                        "rev": rev,
                        "error": "missing_stub",
                        "reason": "attachment data not present",
                    }
                )
                continue
            if atts:
                stored["_attachments"] = atts
            revtree.merge_path(tree, path, deleted=deleted)
            if blobs:
                self._store_blobs(blobs)
            new_bodies[rev] = stored
            staged[doc_id] = (tree, new_bodies)
            result.written += 1
        pending = _Pending()
        for doc_id, (tree, new_bodies) in staged.items():
            self._stage(pending, doc_id, tree, new_bodies, loaded_many.get(doc_id))
        self._flush(pending)
        return result

    # -- conflicts --------------------------------------------------------------------------------

    def resolve_conflicts(
        self, policy: ConflictPolicy | None = None, *, should_resolve: Callable[[str], bool] | None = None
    ) -> list[ConflictRecord]:
        """Resolve every live conflict with `policy` (default KeepWinner) and log each one.

        `should_resolve(doc_id)` limits it to documents this side may write (the tablet must not
        write server-owned order documents; their conflicts wait for the server).

        Losing leaves get tombstone children and the policy may write a merged body on the winner.
        Both writes use deterministic revision ids, so the server and the tablet resolving the same
        conflict produce the same revisions and replication converges without a new conflict.
        """
        chosen: ConflictPolicy = policy or KeepWinner()
        records: list[ConflictRecord] = []
        for doc_id in self.conflicted_ids():
            if should_resolve is not None and not should_resolve(doc_id):
                continue
            with self._tx():
                loaded = self._load(doc_id)
                if loaded is None:
                    continue
                tree = loaded.tree
                live, _dead = revtree.conflicts(tree)
                if not live:
                    continue
                winner = self._render(
                    doc_id, tree, loaded.winner, conflicts=False, revs=False, attachments=False
                )
                losers = [
                    self._render(doc_id, tree, r, conflicts=False, revs=False, attachments=False)
                    for r in live
                ]
                merged = chosen.merge(doc_id, winner, losers)
                new_bodies: dict[str, Doc] = {}
                for loser in live:
                    # Same body on every side that resolves this conflict, so the same tombstone revision.
                    tomb_body = {"resolved_by": chosen.name, "winner": loaded.winner}
                    tomb = revtree.new_rev(loser, deleted=True, body=tomb_body, attachment_digests={})
                    tree[tomb] = RevNode(parent=loser, deleted=True)
                    new_bodies[tomb] = tomb_body
                resolved: str | None = None
                if merged is not None:
                    body = {k: v for k, v in merged.items() if not k.startswith("_")}
                    atts = winner.get("_attachments", {})
                    resolved = revtree.new_rev(
                        loaded.winner,
                        deleted=False,
                        body=body,
                        attachment_digests={n: a["digest"] for n, a in atts.items()},
                    )
                    if resolved not in tree:
                        tree[resolved] = RevNode(parent=loaded.winner, deleted=False)
                        new_bodies[resolved] = body | ({"_attachments": atts} if atts else {})
                self._save(doc_id, tree, new_bodies, loaded)
                records.append(self._log(doc_id, "resolved", loaded.winner, live, chosen.name, resolved))
        return records

    def conflict_log(self) -> list[ConflictRecord]:
        """Every conflict the store has resolved or noticed, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT doc_id, kind, winner, losers, policy, resolved_rev, recorded_at FROM conflict_log ORDER BY id"
            ).fetchall()
        return [
            ConflictRecord(
                doc_id=r[0],
                kind=r[1],
                winner=r[2],
                losers=json.loads(r[3]),
                policy=r[4],
                resolved_rev=r[5],
                recorded_at=r[6],
            )
            for r in rows
        ]

    # -- sync problems ----------------------------------------------------------------------------

    def record_sync_problems(self, direction: str, problems: Sequence[Mapping[str, Any]]) -> None:
        """Record (or refresh) problems ``{id, rev, kind, reason}`` of one direction."""
        if not problems:
            return
        now = dt.datetime.now(dt.UTC).isoformat()
        with self._tx() as db:
            db.executemany(
                "INSERT INTO sync_problems VALUES (?, ?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (direction, doc_id, rev) DO UPDATE SET kind = excluded.kind,"
                " reason = excluded.reason, last_seen = excluded.last_seen, attempts = attempts + 1",
                [
                    (direction, str(p["id"]), str(p["rev"]), str(p["kind"]), str(p["reason"]), now, now)
                    for p in problems
                ],
            )

    def clear_sync_problems(self, direction: str, keys: Sequence[tuple[str, str]]) -> None:
        """Forget problems of `direction` by (doc id, rev): they are resolved."""
        if not keys:
            return
        with self._tx() as db:
            db.executemany(
                "DELETE FROM sync_problems WHERE direction = ? AND doc_id = ? AND rev = ?",
                [(direction, doc_id, rev) for doc_id, rev in keys],
            )

    def sync_problems(self, direction: str | None = None) -> list[SyncProblem]:
        """Open sync problems (of one direction, or all), oldest first."""
        sql = (
            "SELECT direction, doc_id, rev, kind, reason, first_seen, last_seen, attempts FROM sync_problems"
        )
        params: tuple[Any, ...] = ()
        if direction is not None:
            sql += " WHERE direction = ?"
            params = (direction,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY first_seen, doc_id, rev", params).fetchall()
        return [SyncProblem(*row) for row in rows]

    # -- documents another side owns --------------------------------------------------------------

    def adopt(
        self, doc_id: str, leaves: Sequence[Mapping[str, Any]], *, refused: Sequence[str]
    ) -> ConflictRecord:
        """Make `doc_id` exactly the owner's copy: its `leaves` (with ``_revisions``), nothing of ours.

        For documents this side may not write (a tablet's refused edit of an order): every local
        revision is dropped and the owner's leaves are grafted again, so the owner's revision is
        the winner here too. With no leaves (the owner never had it) the document is removed. The
        refused revisions are logged (kind ``refused``) with the winner that replaced them.
        """
        with self._tx() as db:
            db.execute("DELETE FROM bodies WHERE doc_id = ?", (doc_id,))
            db.execute("DELETE FROM docs WHERE doc_id = ?", (doc_id,))
            self._seq += 1  # the app's views must see the change even when the document goes
            if leaves:
                result = self._graft(leaves)
                if result.errors:
                    raise BadRequest(f"cannot adopt {doc_id!r}: {result.errors}", doc_id=doc_id)
            loaded = self._load(doc_id)
            winner = "" if loaded is None else loaded.winner
            return self._log(doc_id, "refused", winner, list(refused), "owner_wins", None)
