"""The SQLite store's CouchDB semantics without a server: writes, conflicts, attachments, changes, _local."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from mobile.sync import Conflict, MissingStub, NotFound, Store
from mobile.sync.peers import LocalPeer
from mobile.sync.replicator import Replicator
from mobile.sync.store import attachment_digest


@pytest.fixture
def store() -> Iterator[Store]:
    """An in-memory store."""
    s = Store()
    yield s
    s.close()


def test_put_get_update_with_rev_check(store: Store):
    """Creating, reading and updating follow CouchDB: a stale or missing _rev is a 409."""
    rev1 = store.put({"_id": "a", "x": 1})
    assert store.get("a") == {"_id": "a", "_rev": rev1, "x": 1}
    with pytest.raises(Conflict):
        store.put({"_id": "a", "x": 2})
    rev2 = store.put({"_id": "a", "_rev": rev1, "x": 2})
    with pytest.raises(Conflict):
        store.put({"_id": "a", "_rev": rev1, "x": 3})
    assert rev2.startswith("2-") and store.get("a")["x"] == 2
    with pytest.raises(Conflict):
        store.put({"_id": "nope", "_rev": rev1})


def test_delete_then_recreate_extends_the_tombstone(store: Store):
    """A deleted document reads as NotFound; writing it again without _rev continues after the tombstone."""
    rev1 = store.put({"_id": "a", "x": 1})
    tomb = store.delete("a", rev1)
    with pytest.raises(NotFound):
        store.get("a")
    assert store.get("a", rev=tomb)["_deleted"] is True
    rev3 = store.put({"_id": "a", "x": 9})
    assert rev3.startswith("3-") and store.get("a")["x"] == 9
    assert store.conflict_log() == []  # a re-creation is not a revival


def test_persistence_and_uuid(tmp_path: Path):
    """A file store keeps documents, sequence and its replication uuid across reopen."""
    path = tmp_path / "t.sqlite"
    s = Store(path)
    s.put({"_id": "a"})
    uid, seq = s.uuid, s.update_seq
    s.close()
    again = Store(path)
    assert (again.uuid, again.update_seq, again.doc_count()) == (uid, seq, 1)
    again.close()


def test_changes_feed_has_every_leaf_and_one_row_per_doc(store: Store):
    """The changes feed lists each document once at its latest seq, with all leaves (style=all_docs)."""
    rev_a = store.put({"_id": "a"})
    store.put({"_id": "b"})
    store.put({"_id": "a", "_rev": rev_a, "v": 2})
    store.bulk_docs_replicated(
        [{"_id": "a", "_rev": "2-ffff", "_revisions": {"start": 2, "ids": ["ffff", rev_a[2:]]}}]
    )
    rows, last = store.changes(0)
    assert [r["id"] for r in rows] == ["b", "a"] and last == store.update_seq
    assert len(rows[1]["changes"]) == 2
    assert store.changes(last) == ([], last)
    limited, mid = store.changes(0, limit=1)
    assert [r["id"] for r in limited] == ["b"] and store.changes(mid)[0][0]["id"] == "a"


def test_conflicts_and_deleted_conflicts_are_reported(store: Store):
    """get(conflicts=True) shows _conflicts and _deleted_conflicts the way CouchDB does."""
    store.bulk_docs_replicated(
        [
            {"_id": "d", "_rev": "1-aa"},
            {"_id": "d", "_rev": "2-bb", "_revisions": {"start": 2, "ids": ["bb", "aa"]}, "v": "b"},
            {"_id": "d", "_rev": "2-cc", "_revisions": {"start": 2, "ids": ["cc", "aa"]}, "v": "c"},
            {"_id": "d", "_rev": "2-dd", "_revisions": {"start": 2, "ids": ["dd", "aa"]}, "_deleted": True},
        ]
    )
    doc = store.get("d", conflicts=True)
    assert doc["_rev"] == "2-cc" and doc["v"] == "c"
    assert doc["_conflicts"] == ["2-bb"] and doc["_deleted_conflicts"] == ["2-dd"]
    assert store.conflicted_ids() == ["d"]


def test_replicated_write_is_idempotent(store: Store):
    """Writing the same replicated revision twice changes nothing and takes no new sequence."""
    docs = [{"_id": "a", "_rev": "1-aa", "v": 1}]
    assert store.bulk_docs_replicated(docs).written == 1
    seq = store.update_seq
    assert store.bulk_docs_replicated(docs).written == 0
    assert store.update_seq == seq


def test_resolve_keep_winner_tombstones_losers_and_logs(store: Store):
    """The default policy keeps CouchDB's winner, tombstones the losers and records them."""
    store.bulk_docs_replicated(
        [
            {"_id": "r", "_rev": "1-aa"},
            {"_id": "r", "_rev": "2-bb", "_revisions": {"start": 2, "ids": ["bb", "aa"]}},
            {"_id": "r", "_rev": "2-cc", "_revisions": {"start": 2, "ids": ["cc", "aa"]}},
        ]
    )
    records = store.resolve_conflicts()
    assert [(r.doc_id, r.winner, r.losers, r.policy) for r in records] == [
        ("r", "2-cc", ["2-bb"], "keep_winner")
    ]
    doc = store.get("r", conflicts=True)
    assert doc["_rev"] == "2-cc" and "_conflicts" not in doc and len(doc["_deleted_conflicts"]) == 1
    assert store.conflicted_ids() == [] and store.conflict_log() == records


def test_resolution_is_deterministic_across_stores():
    """Two stores resolving the same conflict with a merge policy write identical revisions."""

    class Union:
        name = "union"

        def merge(
            self, doc_id: str, winner: Mapping[str, Any], losers: Sequence[Mapping[str, Any]]
        ) -> dict[str, Any]:
            tags = set(winner.get("tags", []))
            for loser in losers:
                tags |= set(loser.get("tags", []))
            return {"tags": sorted(tags)}

    revs = []
    for _ in range(2):
        s = Store()
        s.bulk_docs_replicated(
            [
                {"_id": "t", "_rev": "1-aa", "tags": []},
                {"_id": "t", "_rev": "2-bb", "_revisions": {"start": 2, "ids": ["bb", "aa"]}, "tags": ["x"]},
                {"_id": "t", "_rev": "2-cc", "_revisions": {"start": 2, "ids": ["cc", "aa"]}, "tags": ["y"]},
            ]
        )
        (record,) = s.resolve_conflicts(Union())
        assert s.get("t")["tags"] == ["x", "y"]
        revs.append((record.resolved_rev, sorted(s.revs_tree("t"))))
    assert revs[0] == revs[1]


def test_should_resolve_leaves_other_documents_alone(store: Store):
    """A document the caller may not write (an order on the tablet) keeps its conflict, visible."""
    store.bulk_docs_replicated([{"_id": "order:1", "_rev": "1-aa"}, {"_id": "order:1", "_rev": "1-bb"}])
    assert store.resolve_conflicts(should_resolve=lambda doc_id: not doc_id.startswith("order:")) == []
    assert store.get("order:1", conflicts=True)["_conflicts"] == ["1-aa"]


def test_offline_edit_reviving_a_delete_is_logged(store: Store):
    """When a live edit from another branch beats a delete, the document comes back and the log says so."""
    store.bulk_docs_replicated(
        [
            {"_id": "o", "_rev": "1-aa"},
            {"_id": "o", "_rev": "2-bb", "_revisions": {"start": 2, "ids": ["bb", "aa"]}, "_deleted": True},
        ]
    )
    store.bulk_docs_replicated(
        [{"_id": "o", "_rev": "2-cc", "_revisions": {"start": 2, "ids": ["cc", "aa"]}, "v": 1}]
    )
    assert store.get("o")["v"] == 1
    (entry,) = store.conflict_log()
    assert (entry.kind, entry.winner, entry.losers) == ("revived", "2-cc", ["2-bb"])


def test_attachments_digest_revpos_and_stubs(store: Store):
    """A photo gets CouchDB's md5 digest and revpos; later edits keep the stub and its revpos."""
    photo = b"\xff\xd8\xff" + bytes(range(256)) * 4
    rev1 = store.put_attachment("result:1:a", None, "meter.jpg", photo, "image/jpeg")
    rev2 = store.put({**store.get("result:1:a"), "notes": "ok"})
    att = store.get("result:1:a")["_attachments"]["meter.jpg"]
    assert att == {
        "content_type": "image/jpeg",
        "digest": attachment_digest(photo),
        "length": len(photo),
        "revpos": 1,
        "stub": True,
    }
    assert rev1.startswith("1-") and rev2.startswith("2-")
    assert store.get_attachment("result:1:a", "meter.jpg") == photo
    full = store.get("result:1:a", attachments=True)["_attachments"]["meter.jpg"]
    assert base64.b64decode(full["data"]) == photo
    with pytest.raises(MissingStub):
        store.put({"_id": "x", "_attachments": {"nope": {"stub": True}}})


def test_bulk_get_sends_data_only_after_atts_since(store: Store):
    """Attachment data is inline unless the receiver already has a revision at or after its revpos."""
    store.put_attachment("p", None, "a.bin", b"abc", "application/octet-stream")
    rev2 = store.put({**store.get("p"), "v": 2})
    (full,) = store.bulk_get([{"id": "p", "rev": rev2}])
    assert "data" in full["docs"][0]["ok"]["_attachments"]["a.bin"]
    (stubbed,) = store.bulk_get([{"id": "p", "rev": rev2, "atts_since": ["1-x"]}])
    assert stubbed["docs"][0]["ok"]["_attachments"]["a.bin"]["stub"] is True


def test_missing_stub_in_replicated_write_is_a_per_doc_error(store: Store):
    """A replicated revision whose stub names unknown data is refused as missing_stub, others go in."""
    result = store.bulk_docs_replicated(
        [
            {
                "_id": "a",
                "_rev": "1-aa",
                "_attachments": {"f": {"stub": True, "digest": "md5-nope", "revpos": 1}},
            },
            {"_id": "b", "_rev": "1-bb"},
        ]
    )
    assert result.written == 1 and [e["error"] for e in result.errors] == ["missing_stub"]


def test_local_docs_are_not_in_changes_and_check_rev(store: Store):
    """_local documents are outside the changes feed and need the current _rev to update."""
    rev = store.put_local({"_id": "_local/ck", "seq": 1})
    assert store.get_local("ck") == {"_id": "_local/ck", "_rev": rev, "seq": 1}
    with pytest.raises(Conflict):
        store.put_local({"_id": "_local/ck", "seq": 2})
    store.put_local({"_id": "_local/ck", "_rev": rev, "seq": 2})
    assert store.changes(0) == ([], 0)


def test_stemming_respects_revs_limit():
    """A store with revs_limit N keeps the last N revisions of a document's history."""
    s = Store(revs_limit=5)
    rev = s.put({"_id": "a", "n": 0})
    for n in range(1, 20):
        rev = s.put({"_id": "a", "_rev": rev, "n": n})
    assert len(s.revs_tree("a")) == 5
    assert s.get("a", revs=True)["_revisions"]["start"] == 20
    assert len(s.get("a", revs=True)["_revisions"]["ids"]) == 5


def test_local_to_local_replication_converges():
    """Two stores edited concurrently converge to the same winner and conflicts after two-way replication."""
    a, b = Store(), Store()
    base = a.put({"_id": "d", "v": 0})
    Replicator(LocalPeer(a), LocalPeer(b)).run()
    a.put({"_id": "d", "_rev": base, "v": "a"})
    b.put({"_id": "d", "_rev": base, "v": "b"})
    b.put({"_id": "only-b"})
    for src, dst in ((a, b), (b, a)):
        Replicator(LocalPeer(src), LocalPeer(dst)).run()
    da, db = a.get("d", conflicts=True), b.get("d", conflicts=True)
    assert da == db and len(da["_conflicts"]) == 1
    assert a.get("only-b") == b.get("only-b")


def test_wait_for_change_wakes_on_write(store: Store):
    """wait_for_change returns True as soon as another thread writes, False on timeout."""
    assert store.wait_for_change(store.update_seq, 0.01) is False
    since = store.update_seq
    timer = threading.Timer(0.05, lambda: store.put({"_id": "w"}))
    timer.start()
    assert store.wait_for_change(since, 5.0) is True
    timer.join()
