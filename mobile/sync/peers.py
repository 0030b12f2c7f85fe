"""The two ends a replication runs between, behind one interface: the local store and a remote CouchDB.

`Replicator` only talks to a `Peer`, so pull (remote -> local) and push (local -> remote) are the
same code with the arguments swapped. `RemoteDB` lives in `mobile.sync.remote`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mobile.sync.store import Doc, Store

# A changes-feed sequence exactly as the peer sent it. CouchDB 2+/3 sends opaque strings
# ("12-g1AAAA..."), pouchdb-server and the local store send integers. Never compare or do
# arithmetic on one; only hand it back as `since`.
Seq = int | str


class Peer(Protocol):
    """What the replicator needs from either end (the subset of the CouchDB API replication uses)."""

    def peer_id(self) -> str:
        """A stable identity for the replication id (no credentials)."""
        ...

    def get_local(self, doc_id: str) -> Doc | None:
        """A `_local/...` document (checkpoints), or None."""
        ...

    def put_local(self, doc: Mapping[str, Any]) -> str:
        """Write a `_local/...` document; return its new `_rev`."""
        ...

    def changes(self, since: Seq, limit: int, doc_ids: Sequence[str] | None = None) -> tuple[list[Doc], Seq]:
        """``_changes?style=all_docs`` rows after `since` and the feed's last_seq."""
        ...

    def wait_for_changes(self, since: Seq, timeout_s: float) -> bool:
        """Block until something changed after `since` (True) or `timeout_s` passed (False)."""
        ...

    def revs_diff(self, revs: Mapping[str, Sequence[str]]) -> dict[str, Doc]:
        """``_revs_diff``: ids with missing revisions (and possible_ancestors where known)."""
        ...

    def bulk_get(self, requests: Sequence[Mapping[str, Any]]) -> tuple[list[Doc], list[Doc]]:
        """Fetch leaf revisions with `_revisions` and attachment data: (documents, errors)."""
        ...

    def bulk_docs(self, docs: Sequence[Mapping[str, Any]]) -> list[Doc]:
        """Write revisions with ``new_edits: false``; return only the per-document failures."""
        ...


class LocalPeer:
    """A `Store` seen as a replication peer."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def peer_id(self) -> str:
        """``local:<the store's persisted uuid>``."""
        return f"local:{self.store.uuid}"

    def get_local(self, doc_id: str) -> Doc | None:
        """A `_local/...` document of the store."""
        return self.store.get_local(doc_id)

    def put_local(self, doc: Mapping[str, Any]) -> str:
        """Write a `_local/...` document to the store."""
        return self.store.put_local(doc)

    def changes(self, since: Seq, limit: int, doc_ids: Sequence[str] | None = None) -> tuple[list[Doc], Seq]:
        """The store's changes feed (filtered by `doc_ids` when given)."""
        if doc_ids is None:
            return self.store.changes(since, limit=limit)
        wanted = set(doc_ids)
        while True:  # filter after the limit, so keep reading until a row passes or the feed ends
            rows, last = self.store.changes(since, limit=limit)
            kept = [r for r in rows if r["id"] in wanted]
            if kept or len(rows) < limit:
                return kept, last
            since = last

    def wait_for_changes(self, since: Seq, timeout_s: float) -> bool:
        """Wait on the store's change condition."""
        return self.store.wait_for_change(since, timeout_s)

    def revs_diff(self, revs: Mapping[str, Sequence[str]]) -> dict[str, Doc]:
        """The store's `_revs_diff`."""
        return self.store.revs_diff(revs)

    def bulk_get(self, requests: Sequence[Mapping[str, Any]]) -> tuple[list[Doc], list[Doc]]:
        """The store's `_bulk_get`, flattened into (docs, errors)."""
        docs: list[Doc] = []
        errors: list[Doc] = []
        for result in self.store.bulk_get(requests):
            for entry in result["docs"]:
                if "ok" in entry:
                    docs.append(entry["ok"])
                else:
                    errors.append(entry.get("error") or entry)
        return docs, errors

    def bulk_docs(self, docs: Sequence[Mapping[str, Any]]) -> list[Doc]:
        """Graft replicated revisions into the store."""
        return self.store.bulk_docs_replicated(docs).errors
