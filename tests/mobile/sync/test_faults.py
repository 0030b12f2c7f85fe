"""Fault tests: a loopback proxy cuts the tablet's connection at random points while both sides keep writing."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from mobile.sync import RemoteDB, Store, Sync, SyncError, revtree
from mobile.sync.devserver import CouchServer
from tests.mobile.sync.tcpproxy import CuttingProxy

pytestmark = [pytest.mark.couchdb, pytest.mark.slow]


def snapshot_remote(db: RemoteDB) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every live document's winning rev and its other leaves, from the server."""
    rows, _ = db.changes(0, 1_000_000)
    winners = {r["id"]: r["value"]["rev"] for r in db.all_docs()}
    return {
        row["id"]: (winners[row["id"]], tuple(sorted(c["rev"] for c in row["changes"])))
        for row in rows
        if not row.get("deleted")
    }


def snapshot_local(store: Store) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The same view of the tablet's store."""
    out = {}
    for row in store.all_docs():
        tree = store.revs_tree(row["id"])
        out[row["id"]] = (row["value"]["rev"], tuple(sorted(revtree.leaves(tree))))
    return out


def test_random_cuts_while_both_sides_write_lose_and_duplicate_nothing(
    remote_db: RemoteDB, couch_server: CouchServer, closing: Callable[[RemoteDB], RemoteDB]
):
    """Many random cuts during two-way sync with writers on both sides: both end with the same documents."""
    host, port = couch_server.url.removeprefix("http://").split(":")
    rng = random.Random(11)
    tablet = Store()
    expected: dict[str, object] = {}  # doc id -> last body its single writer wrote
    lock = threading.Lock()
    stop = threading.Event()

    def tablet_writer() -> None:
        n = 0
        while not stop.is_set():
            doc_id = f"result:{n % 40}:{n}"
            body = {"n": n, "photo_note": "x" * rng.randint(0, 2000)}
            tablet.put({"_id": doc_id, **body})
            with lock:
                expected[doc_id] = body
            n += 1
            time.sleep(0.01)

    def server_writer() -> None:
        revs: dict[str, str] = {}
        n = 0
        while not stop.is_set():
            doc_id = f"order:{n % 150}"
            body = {"v": n, "status": "dispatched"}
            doc = {"_id": doc_id, **body} | ({"_rev": revs[doc_id]} if doc_id in revs else {})
            revs[doc_id] = remote_db.put(doc)  # the server is the only writer of orders: updates chain
            with lock:
                expected[doc_id] = body
            n += 1
            time.sleep(0.01)

    with CuttingProxy((host, int(port)), seed=3, max_bytes_before_cut=150_000) as proxy:
        via_proxy = closing(RemoteDB(proxy.url, remote_db.db, auth=couch_server.auth))
        sync = Sync(tablet, via_proxy, batch_size=50)
        writers = [threading.Thread(target=tablet_writer), threading.Thread(target=server_writer)]
        for w in writers:
            w.start()
        proxy.cutting = True
        failures = rounds = 0
        # At least 8 s, and on until the cuts asserted below happened: a loaded machine syncs slower
        # and so sees fewer cuts per second (was a fixed 8 s, which failed under load).
        started = time.monotonic()

        def go_on() -> bool:
            elapsed = time.monotonic() - started
            return elapsed < 8 or (elapsed < 90 and (proxy.cuts < 20 or failures < 10))

        try:
            while go_on():
                rounds += 1
                try:
                    sync.run_once()
                except SyncError:  # a cut: the next round resumes from the checkpoints
                    failures += 1
        finally:
            stop.set()
            for w in writers:
                w.join()
        proxy.cutting = False
        for _ in range(5):  # settle: pull, push until nothing moves
            result = sync.run_once()
            if result.pull.docs_written == result.push.docs_written == 0:
                break
        via_proxy.close()

    assert proxy.cuts >= 20 and failures >= 10, (proxy.cuts, failures, rounds)
    remote, local = snapshot_remote(remote_db), snapshot_local(tablet)
    assert remote == local
    assert set(local) == set(expected)
    for doc_id, body in expected.items():
        doc = tablet.get(doc_id)
        assert {k: v for k, v in doc.items() if not k.startswith("_")} == body, doc_id
    assert all(len(leaves) == 1 for _rev, leaves in local.values())  # no duplicated branches
