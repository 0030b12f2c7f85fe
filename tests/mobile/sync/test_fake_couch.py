"""Protocol paths pouchdb-server cannot exercise, against FakeCouch (an httpx MockTransport fake of CouchDB 3)."""

from __future__ import annotations

import pytest

from mobile.sync import Forbidden, RemoteDB, Replicator, Store, Sync
from mobile.sync.peers import LocalPeer
from tests.mobile.sync.fakecouch import FakeCouch


def remote_for(fake: FakeCouch) -> RemoteDB:
    """A RemoteDB whose HTTP goes to the fake."""
    return RemoteDB(fake.url, fake.db, auth=("csfr-1", "pw"), transport=fake.transport())


@pytest.mark.parametrize("batch_size", [1, 3, 50])
def test_opaque_string_seqs_are_stored_and_sent_back_verbatim(batch_size: int):
    """Pull with opaque string seqs and replayed rows: all docs once, checkpoint holds the server's string."""
    fake = FakeCouch()
    for i in range(10):
        fake.store.put({"_id": f"order:{i}", "n": i})
    tablet = Store()
    pull = Replicator(remote_for(fake), LocalPeer(tablet), batch_size=batch_size)
    result = pull.run()
    assert tablet.doc_count() == 10 and result.docs_written == 10
    checkpoint = tablet.get_local(pull.checkpoint_id)
    assert checkpoint is not None and isinstance(checkpoint["source_last_seq"], str)
    assert checkpoint["source_last_seq"] in fake.tokens  # exactly a token the server handed out
    assert fake.store.get_local(pull.checkpoint_id)["session_id"] == checkpoint["session_id"]
    for i in range(10, 13):
        fake.store.put({"_id": f"order:{i}", "n": i})
    again = pull.run()
    assert again.start_seq == checkpoint["source_last_seq"] and again.docs_written == 3
    seq_before = tablet.update_seq
    noop = pull.run()
    assert noop.docs_written == noop.checkpoints_written == 0 and tablet.update_seq == seq_before


def test_push_to_couchdb3_counts_empty_bulk_docs_answer_as_success():
    """CouchDB 3 answers _bulk_docs with [] when all went in: every document counts as written."""
    fake = FakeCouch()
    tablet = Store()
    for i in range(7):
        tablet.put({"_id": f"result:{i}:x", "n": i})
    result = Sync(tablet, remote_for(fake), batch_size=3).run_once()
    assert result.push.docs_written == 7 and result.push.doc_write_failures == 0
    assert fake.store.doc_count() == 7


def test_bulk_get_missing_falls_back_to_open_revs():
    """A server without _bulk_get is read with GET ?open_revs=[...] and gives the same documents."""
    fake = FakeCouch(bulk_get=False)
    rev = fake.store.put({"_id": "order:1", "v": 1})
    fake.store.put({"_id": "order:1", "_rev": rev, "v": 2})
    fake.store.put_attachment("order:2", None, "map.png", b"\x89PNG....", "image/png")
    tablet = Store()
    remote = remote_for(fake)
    Replicator(remote, LocalPeer(tablet)).run()
    assert tablet.get("order:1") == fake.store.get("order:1")
    assert tablet.get_attachment("order:2", "map.png") == b"\x89PNG...."
    methods = [(m, p) for m, p in fake.requests if p in ("_bulk_get", "order:1")]
    assert methods[0] == ("POST", "_bulk_get") and ("GET", "order:1") in methods
    assert sum(1 for m in methods if m == ("POST", "_bulk_get")) == 1  # remembered, not retried per batch


def test_unknown_since_is_rejected_by_the_fake():
    """The fake refuses a since it never sent, so any client-side seq arithmetic would fail these tests."""
    fake = FakeCouch()
    remote = remote_for(fake)
    with pytest.raises(Exception, match="malformed sequence"):
        remote.changes("1", 10)


def test_missing_stub_is_retried_with_the_data_inline():
    """When the target lost an attachment it claims to have, the per-doc missing_stub is resent inline."""
    fake = FakeCouch()
    tablet = Store()
    photo = b"\xff\xd8" + b"photo" * 100
    rev1 = tablet.put_attachment("result:1:x", None, "meter.jpg", photo, "image/jpeg")
    sync = Sync(tablet, remote_for(fake))
    sync.run_once()
    fake.store._db.execute("DELETE FROM attachments")  # the server "lost" the bytes it has a stub for
    tablet.put({**tablet.get("result:1:x", rev=rev1), "notes": "second visit"})
    result = sync.run_once()
    assert result.push.docs_written == 1 and result.push.bulk_docs_calls == 2  # stubbed, then inline
    assert fake.store.get_attachment("result:1:x", "meter.jpg") == photo


class ReadOnlySource(LocalPeer):
    """A fake read-only source: reading works, writing its checkpoint is forbidden (CouchDB reader role)."""

    def put_local(self, doc):  # type: ignore[no-untyped-def]
        """Refuse like CouchDB refuses a reader."""
        raise Forbidden("only readers here")


def test_read_only_source_resumes_from_the_target_checkpoint():
    """A 403 on the source's checkpoint is fine: the target's checkpoint alone resumes the next run."""
    source_store, tablet = Store(), Store()
    for i in range(10):
        source_store.put({"_id": f"order:{i}"})
    replicator = Replicator(ReadOnlySource(source_store), LocalPeer(tablet), batch_size=4)
    first = replicator.run()
    assert first.docs_written == 10
    assert tablet.get_local(replicator.checkpoint_id)["source_checkpoint"] is False
    source_store.put({"_id": "order:new"})
    second = Replicator(ReadOnlySource(source_store), LocalPeer(tablet), batch_size=4).run()
    assert second.start_seq == first.last_seq and second.docs_written == 1 and second.changes_read == 1
