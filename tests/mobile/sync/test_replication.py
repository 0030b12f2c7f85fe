"""Replication conformance against a real pouchdb-server (or COUCHDB_URL): both directions, every edge case."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mobile.sync import (
    AuthError,
    DatabaseNotFound,
    Forbidden,
    RemoteDB,
    Replicator,
    Store,
    Sync,
    TransientError,
    Unauthorized,
    revtree,
)
from mobile.sync.devserver import CouchServer
from mobile.sync.peers import LocalPeer
from mobile.sync.remote import doc_path
from mobile.sync.store import attachment_digest
from tests.mobile.sync.tcpproxy import CuttingProxy

pytestmark = pytest.mark.couchdb


def local_state(store: Store, ids: list[str]) -> dict[str, Any]:
    """Winner, conflicts and deleted conflicts of each id in the store (None when deleted/missing)."""
    out: dict[str, Any] = {}
    for doc_id in ids:
        tree = store.revs_tree(doc_id)
        win = revtree.winning_rev(tree)
        live, dead = revtree.conflicts(tree)
        out[doc_id] = (win, tree[win].deleted, sorted(live), sorted(dead))
    return out


def remote_state(db: RemoteDB, ids: list[str]) -> dict[str, Any]:
    """The same view of the remote database, from its `_changes` feed and open_revs."""
    out: dict[str, Any] = {}
    rows, _ = db.changes(0, 100_000, doc_ids=ids)
    leaves = {r["id"]: [c["rev"] for c in r["changes"]] for r in rows}
    for doc_id in ids:
        docs = db.call(
            "GET", doc_path(doc_id), params={"open_revs": "all"}, headers={"Accept": "application/json"}
        )
        revs = {d["ok"]["_rev"]: bool(d["ok"].get("_deleted")) for d in docs if "ok" in d}
        assert set(revs) == set(leaves[doc_id])
        ranked = sorted(revs, key=lambda r: revtree.winner_key(r, revs[r]), reverse=True)
        win = ranked[0]
        out[doc_id] = (
            win,
            revs[win],
            sorted(r for r in ranked[1:] if not revs[r]),
            sorted(r for r in ranked[1:] if revs[r]),
        )
    return out


def test_remote_winner_rule_matches_ours(remote_db: RemoteDB):
    """The server's own winner and _conflicts equal what our revision tree picks for the same leaves."""
    remote_db.bulk_docs(
        [
            {"_id": "w", "_rev": "1-" + "a" * 32},
            {"_id": "w", "_rev": "2-" + "b" * 32, "_revisions": {"start": 2, "ids": ["b" * 32, "a" * 32]}},
            {"_id": "w", "_rev": "2-" + "c" * 32, "_revisions": {"start": 2, "ids": ["c" * 32, "a" * 32]}},
            {
                "_id": "w",
                "_rev": "3-" + "0" * 32,
                "_revisions": {"start": 3, "ids": ["0" * 32, "b" * 32]},
                "_deleted": True,
            },
            {"_id": "w", "_rev": "2-" + "1" * 32, "_revisions": {"start": 2, "ids": ["1" * 32, "a" * 32]}},
        ]
    )
    doc = remote_db.get("w", conflicts=True, deleted_conflicts=True)
    store = Store()
    Replicator(remote_db, LocalPeer(store)).run()
    ours = store.get("w", conflicts=True)
    assert doc["_rev"] == ours["_rev"] == "2-" + "c" * 32
    assert doc["_conflicts"] == ours["_conflicts"] == ["2-" + "1" * 32]
    assert ours["_deleted_conflicts"] == ["3-" + "0" * 32]  # pouchdb-server omits _deleted_conflicts
    assert remote_state(remote_db, ["w"]) == local_state(store, ["w"])


def test_concurrent_edits_two_way_same_winner_and_conflicts(remote_db: RemoteDB):
    """Both sides edit the same documents offline; after pull+push everyone has the same winner and conflicts."""
    tablet, other_tablet = Store(), Store()
    ids = [f"result:o{i}:x" for i in range(5)]
    for doc_id in ids:
        remote_db.put({"_id": doc_id, "v": 0})
    Sync(tablet, remote_db, should_resolve=None).pull.run()
    for doc_id in ids:
        base = tablet.get(doc_id)
        tablet.put({**base, "v": "tablet"})
        remote_db.put({**remote_db.get(doc_id), "v": "server"})
    tablet.put({"_id": "event:new", "kind": "on_site"})
    sync = Sync(tablet, remote_db, should_resolve=lambda _id: False)
    sync.run_once()
    Sync(other_tablet, remote_db).pull.run()
    all_ids = [*ids, "event:new"]
    expected = remote_state(remote_db, all_ids)
    assert local_state(tablet, all_ids) == expected == local_state(other_tablet, all_ids)
    assert all(len(expected[i][2]) == 1 for i in ids)


def test_delete_versus_update_revives_and_is_logged(remote_db: RemoteDB):
    """Server deletes while the tablet edits offline: the edit wins everywhere and the revival is logged."""
    tablet = Store()
    rev = remote_db.put({"_id": "result:1:a", "v": 1})
    Sync(tablet, remote_db).pull.run()
    remote_db.call("DELETE", doc_path("result:1:a"), params={"rev": rev})
    tablet.put({**tablet.get("result:1:a"), "v": 2})
    Sync(tablet, remote_db).run_once()
    remote_doc = remote_db.get("result:1:a")
    local_doc = tablet.get("result:1:a", conflicts=True)
    assert remote_doc["v"] == local_doc["v"] == 2 and len(local_doc["_deleted_conflicts"]) == 1
    assert remote_state(remote_db, ["result:1:a"]) == local_state(tablet, ["result:1:a"])
    assert [e.kind for e in tablet.conflict_log()] == ["revived"]


def test_resolving_a_conflict_reaches_the_server_and_other_tablets(remote_db: RemoteDB):
    """A conflict resolved on the tablet is pushed: the server and a second tablet see no conflict left."""
    tablet = Store()
    remote_db.put({"_id": "event:e1", "v": 0})
    Sync(tablet, remote_db).pull.run()
    tablet.put({**tablet.get("event:e1"), "v": "tablet"})
    remote_db.put({**remote_db.get("event:e1"), "v": "server"})
    result = Sync(tablet, remote_db).run_once()
    assert [c.doc_id for c in result.conflicts] == ["event:e1"]
    assert "_conflicts" not in remote_db.get("event:e1", conflicts=True)
    other = Store()
    Sync(other, remote_db).pull.run()
    assert "_conflicts" not in other.get("event:e1", conflicts=True)
    assert (
        other.get("event:e1")
        == tablet.get("event:e1")
        == {k: v for k, v in remote_db.get("event:e1").items() if k != "_conflicts"}
    )


def test_server_owned_conflict_is_left_visible_on_the_tablet(remote_db: RemoteDB):
    """The tablet never resolves an order conflict (it may not write orders); it stays in _conflicts."""
    remote_db.bulk_docs(
        [
            {"_id": "order:9", "_rev": "1-" + "a" * 32, "v": 1},
            {"_id": "order:9", "_rev": "1-" + "b" * 32, "v": 2},
        ]
    )
    tablet = Store()
    result = Sync(tablet, remote_db).run_once()
    assert result.conflicts == [] and result.push.bulk_docs_calls == 0
    assert tablet.get("order:9", conflicts=True)["_conflicts"] == ["1-" + "a" * 32]


def test_rerun_of_finished_replication_is_a_noop(remote_db: RemoteDB):
    """A second run with nothing new reads the checkpoints and one changes page: no _bulk_docs, no checkpoint write."""
    tablet = Store()
    for i in range(30):
        remote_db.put({"_id": f"order:{i}", "n": i})
        tablet.put({"_id": f"result:{i}:x", "n": i})
    sync = Sync(tablet, remote_db, batch_size=7)
    sync.run_once()
    sync.run_once()  # the push of what was pulled (and vice versa) settles the checkpoints
    remote_db.request_log.clear()
    seq_before = tablet.update_seq
    result = sync.run_once()
    writes = [r for r in remote_db.request_log if r[0] in ("PUT", "POST") and r[1] != "_revs_diff"]
    assert writes == []
    assert result.pull.bulk_docs_calls == result.push.bulk_docs_calls == 0
    assert result.pull.checkpoints_written == result.push.checkpoints_written == 0
    assert tablet.update_seq == seq_before


def test_resume_after_connection_cut_mid_batch(
    remote_db: RemoteDB, couch_server: CouchServer, closing: Callable[[RemoteDB], RemoteDB]
):
    """A pull cut mid-way resumes from its last checkpoint (not 0), which never passes unwritten documents."""
    remote_db.bulk_docs(
        [{"_id": f"order:{i:05d}", "_rev": f"1-{uuid.uuid4().hex}", "n": i} for i in range(3000)]
    )
    host, port = couch_server.url.removeprefix("http://").split(":")
    with CuttingProxy((host, int(port)), seed=7, max_bytes_before_cut=400_000) as proxy:
        via_proxy = closing(RemoteDB(proxy.url, remote_db.db, auth=couch_server.auth))
        tablet = Store()
        pull = Replicator(via_proxy, LocalPeer(tablet), batch_size=200)
        proxy.cutting = True
        failures = 0
        while True:
            try:
                pull.run()
                break
            except TransientError:
                failures += 1
                checkpoint = tablet.get_local(pull.checkpoint_id)
                if checkpoint is not None:
                    # Everything up to the checkpoint is in the store.
                    rows, _ = remote_db.changes(0, int(checkpoint["source_last_seq"]))
                    assert all(tablet.revs_tree(r["id"]) for r in rows)
                if failures >= 3:
                    proxy.cutting = False
        assert failures >= 1 and proxy.cuts >= 1
        proxy.cutting = False
        final = pull.run()
        assert final.start_seq != 0 and final.docs_written == 0
        assert tablet.doc_count() == 3000
        via_proxy.close()


def test_recreated_remote_database_gets_everything_again(remote_db: RemoteDB):
    """After the server's database is restored empty, the tablet re-pushes all it has (not just new docs)."""
    tablet = Store()
    for i in range(25):
        tablet.put({"_id": f"result:{i}:x", "n": i})
    Sync(tablet, remote_db).run_once()
    remote_db.destroy()
    with pytest.raises(DatabaseNotFound):
        Sync(tablet, remote_db).run_once()
    remote_db.create()
    tablet.put({"_id": "result:new:x"})
    result = Sync(tablet, remote_db).run_once()
    assert result.push.docs_written == 26
    assert remote_db.info()["doc_count"] == 26


def test_stemmed_histories_replicate_without_false_conflicts(remote_db: RemoteDB):
    """A tablet with a short revs_limit follows a long server history and pushes back without a conflict."""
    tablet = Store(revs_limit=10)
    rev = remote_db.put({"_id": "result:s:x", "n": 0})
    for n in range(1, 40):
        rev = remote_db.put({"_id": "result:s:x", "_rev": rev, "n": n})
    sync = Sync(tablet, remote_db)
    sync.run_once()
    assert len(tablet.revs_tree("result:s:x")) == 10
    for n in range(5):  # fewer offline edits than the limit: the pushed path still overlaps
        local_rev = tablet.put({**tablet.get("result:s:x"), "n": f"tablet-{n}"})
    sync.run_once()
    remote_doc = remote_db.get("result:s:x", conflicts=True)
    assert remote_doc["_rev"] == local_rev and "_conflicts" not in remote_doc
    remote_db.put({**remote_doc, "n": "server"})
    sync.run_once()
    assert "_conflicts" not in tablet.get("result:s:x", conflicts=True)
    assert tablet.get("result:s:x")["n"] == "server"


def test_history_stemmed_past_overlap_gives_a_false_conflict_that_is_resolved(remote_db: RemoteDB):
    """More offline edits than revs_limit make a false conflict on the server (as CouchDB would); sync resolves it."""
    tablet = Store(revs_limit=5)
    remote_db.put({"_id": "result:f:x", "n": 0})
    sync = Sync(tablet, remote_db)
    sync.run_once()
    for n in range(12):
        local_rev = tablet.put({**tablet.get("result:f:x"), "n": n})
    sync.run_once()
    assert len(remote_db.get("result:f:x", conflicts=True)["_conflicts"]) == 1  # the false conflict
    result = sync.run_once()  # pull sees it, the policy resolves it, push carries the resolution
    assert [c.doc_id for c in result.conflicts] == ["result:f:x"]
    remote_doc = remote_db.get("result:f:x", conflicts=True)
    assert remote_doc["_rev"] == local_rev and "_conflicts" not in remote_doc


def test_attachments_round_trip_with_revpos(remote_db: RemoteDB):
    """A photo pushed inline keeps digest and revpos; edits keep the stub; a server attachment comes back."""
    photo = bytes(range(256)) * 300
    tablet = Store()
    rev1 = tablet.put_attachment("result:p:x", None, "meter.jpg", photo, "image/jpeg")
    tablet.put({**tablet.get("result:p:x"), "notes": "edited after the photo"})
    sync = Sync(tablet, remote_db)
    sync.run_once()
    remote_doc = remote_db.get("result:p:x")
    att = remote_doc["_attachments"]["meter.jpg"]
    assert rev1.startswith("1-") and remote_doc["_rev"].startswith("2-")
    assert att["digest"] == attachment_digest(photo) and att["length"] == len(photo)
    # We send revpos 1 (where the photo was added); pouchdb-server re-stamps inline data with the
    # current generation, CouchDB keeps ours. Either way it is never 0 and never past the revision.
    (sent,) = LocalPeer(tablet).bulk_get([{"id": "result:p:x", "rev": remote_doc["_rev"]}])[0]
    assert sent["_attachments"]["meter.jpg"]["revpos"] == 1
    assert 1 <= att["revpos"] <= 2
    raw = remote_db.request("GET", doc_path("result:p:x") + "/meter.jpg")
    assert raw.content == photo
    # an attachment added on the server comes down with its bytes
    plan = b"%PDF-1.4 plan"
    remote_db.request(
        "PUT",
        doc_path("result:p:x") + "/plan.pdf",
        params={"rev": remote_doc["_rev"]},
        content=plan,
        headers={"Content-Type": "application/pdf"},
    )
    sync.run_once()
    assert tablet.get_attachment("result:p:x", "plan.pdf") == plan
    assert tablet.get_attachment("result:p:x", "meter.jpg") == photo
    other = Store()
    Sync(other, remote_db).pull.run()
    assert other.get_attachment("result:p:x", "meter.jpg") == photo


@pytest.mark.slow
def test_ten_thousand_documents_in_batches(remote_db: RemoteDB):
    """10,000 orders pulled and 10,000 results pushed in batches; counts and revisions match exactly."""
    remote_db.bulk_docs(
        [
            {"_id": f"order:{i:05d}", "_rev": f"1-{uuid.uuid4().hex}", "n": i, "pad": "x" * 200}
            for i in range(10_000)
        ]
    )
    tablet = Store()
    for i in range(10_000):
        tablet.put({"_id": f"result:{i:05d}:x", "n": i})
    result = Sync(tablet, remote_db, batch_size=500).run_once()
    assert result.pull.docs_written == 10_000 and result.pull.batches == 20
    assert result.push.docs_written == 10_000
    remote_rows = {r["id"]: r["value"]["rev"] for r in remote_db.all_docs()}
    local_rows = {r["id"]: r["value"]["rev"] for r in tablet.all_docs()}
    assert remote_rows == local_rows and len(local_rows) == 20_000


def test_wrong_password_is_a_typed_error_without_retries(
    remote_db: RemoteDB, couch_server: CouchServer, closing: Callable[[RemoteDB], RemoteDB]
):
    """401 raises Unauthorized at once, also from live mode, after a couple of requests, not a retry loop."""
    bad = closing(RemoteDB(couch_server.url, remote_db.db, auth=(couch_server.username, "wrong")))
    tablet = Store()
    tablet.put({"_id": "result:1:x"})
    with pytest.raises(Unauthorized):
        Sync(tablet, bad).run_once()
    assert len(bad.request_log) == 1
    stop = threading.Event()
    with pytest.raises(AuthError):
        Sync(tablet, bad).run_live(stop, poll_s=0.5, min_backoff_s=0.05)
    assert len(bad.request_log) <= 3
    bad.close()


def test_other_csfr_cannot_replicate(
    remote_db: RemoteDB, couch_server: CouchServer, closing: Callable[[RemoteDB], RemoteDB]
):
    """A CSFR who is not a member of the database gets an AuthError (CouchDB 403, pouchdb-server 401)."""
    couch_server.create_user("csfr-a", "pw-a")
    couch_server.create_user("csfr-b", "pw-b")
    couch_server.set_security(remote_db.db, members=["csfr-a"])
    remote_db.put({"_id": "order:1"})
    own = closing(RemoteDB(couch_server.url, remote_db.db, auth=("csfr-a", "pw-a")))
    tablet_a = Store()
    Sync(tablet_a, own).run_once()
    assert tablet_a.get("order:1")
    intruder = closing(RemoteDB(couch_server.url, remote_db.db, auth=("csfr-b", "pw-b")))
    with pytest.raises((Unauthorized, Forbidden)):
        Sync(Store(), intruder).run_once()
    own.close()
    intruder.close()


VALIDATE = """function (newDoc, oldDoc, userCtx) {
  if (newDoc._id.indexOf('order:') === 0) { throw({forbidden: 'tablets may not write order documents'}); }
}"""


def test_forbidden_document_is_counted_reported_and_not_retried(remote_db: RemoteDB):
    """A validate_doc_update rejection is counted and listed; the rest are written; a re-run does not retry it."""
    remote_db.put({"_id": "_design/rules", "validate_doc_update": VALIDATE})
    tablet = Store()
    tablet.put({"_id": "order:forged", "status": "completed"})
    for i in range(5):
        tablet.put({"_id": f"result:{i}:x"})
    sync = Sync(tablet, remote_db)
    result = sync.run_once()
    assert result.push.doc_write_failures == 1
    assert result.push.forbidden[0]["id"] == "order:forged"
    assert result.push.docs_written == 5
    again = sync.run_once()
    assert again.push.bulk_docs_calls == 0


def test_live_mode_moves_changes_both_ways_and_stops(remote_db: RemoteDB):
    """Live sync carries a tablet write up and a server write down within seconds, and stops on request."""
    tablet = Store()
    sync = Sync(tablet, remote_db)
    stop = threading.Event()
    thread = threading.Thread(target=sync.run_live, args=(stop,), kwargs={"poll_s": 0.5}, daemon=True)
    thread.start()
    try:
        tablet.put({"_id": "event:live", "kind": "en_route"})
        remote_db.put({"_id": "order:live", "status": "dispatched"})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                tablet.get("order:live")
                remote_db.get("event:live")
                break
            except Exception:
                time.sleep(0.1)
        else:
            pytest.fail("live sync did not move both documents within 15 s")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive() and sync.error is None


def test_live_mode_backs_off_while_offline(
    couch_server: CouchServer, closing: Callable[[RemoteDB], RemoteDB]
):
    """With the server unreachable, live mode reports transient errors and waits longer each time."""
    with CuttingProxy(("127.0.0.1", 9), seed=1) as dead:  # upstream port 9 refuses: every connect fails
        offline = closing(RemoteDB(dead.url, "csfr-offline", auth=couch_server.auth))
        errors: list[float] = []
        stop = threading.Event()

        def on_error(_exc: Exception) -> None:
            errors.append(time.monotonic())
            if len(errors) >= 4:
                stop.set()

        Replicator(offline, LocalPeer(Store())).run_live(
            stop, min_backoff_s=0.05, max_backoff_s=1.0, on_error=on_error
        )
        gaps = [b - a for a, b in itertools.pairwise(errors)]
        assert len(errors) == 4 and gaps[-1] > gaps[0]
        offline.close()


@pytest.fixture
def two_dbs(couch_server: CouchServer) -> Iterator[tuple[RemoteDB, RemoteDB]]:
    """Two scratch databases."""
    a = couch_server.database(f"csfr-a-{uuid.uuid4().hex[:8]}")
    b = couch_server.database(f"csfr-b-{uuid.uuid4().hex[:8]}")
    yield a, b
    for db in (a, b):
        db.destroy()
        db.close()


def test_remote_to_remote_uses_the_same_replicator(two_dbs: tuple[RemoteDB, RemoteDB]):
    """The Peer interface lets the same code replicate server database to server database."""
    a, b = two_dbs
    for i in range(20):
        a.put({"_id": f"order:{i}", "n": i})
    result = Replicator(a, b, batch_size=6).run()
    assert result.docs_written == 20 and b.info()["doc_count"] == 20
