"""Replicated writes into a provisioned ``csfr-*`` database with the project's validate_doc_update.

CouchDB 3 validates a replicated write (``_bulk_docs`` with ``new_edits: false``) against the nearest
stored ancestor on the incoming revision's own path, or against nothing for a new branch. pouchdb-server
4.2.0 as published replaced the incoming ``_revisions`` with the current winner's, so a second branch
or a tombstone on a losing revision was not stored while the answer was ``201 []``; the project's npm
install patches it (patches/pouchdb-validation+4.2.0.patch). These tests pin CouchDB 3's behaviour.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mobile.sync import RemoteDB, Store, Sync, revtree
from mobile.sync.devserver import CouchServer
from mobile.sync.remote import doc_path
from server.sync.couch import DESIGN_ID, VALIDATE_DOC_UPDATE

pytestmark = pytest.mark.couchdb

A = "a" * 32
B = "b" * 32
C = "c" * 32


def rev(gen: int, h: str) -> str:
    return f"{gen}-{h}"


def revisions(*path: str) -> dict[str, Any]:
    """``_revisions`` for a path given newest first as full rev ids."""
    return {"start": int(path[0].split("-")[0]), "ids": [p.split("-", 1)[1] for p in path]}


@pytest.fixture
def csfr(couch_server: CouchServer) -> Iterator[tuple[RemoteDB, RemoteDB]]:
    """A provisioned CSFR database: (the tablet's connection as its member user, the admin's)."""
    name = f"csfr-v{uuid.uuid4().hex[:10]}"
    admin_db = couch_server.database(name)
    password = uuid.uuid4().hex
    couch_server.create_user(name, password)
    couch_server.set_security(name, members=[name])
    admin_db.put({"_id": DESIGN_ID, "validate_doc_update": VALIDATE_DOC_UPDATE, "language": "javascript"})
    tablet_db = RemoteDB(couch_server.url, name, auth=(name, password))
    try:
        yield tablet_db, admin_db
    finally:
        tablet_db.close()
        admin_db.destroy()
        admin_db.close()


def leaves(db: RemoteDB, doc_id: str) -> dict[str, bool]:
    """Every leaf revision of `doc_id` on the server -> deleted."""
    docs = db.call(
        "GET", doc_path(doc_id), params={"open_revs": "all"}, headers={"Accept": "application/json"}
    )
    return {d["ok"]["_rev"]: bool(d["ok"].get("_deleted")) for d in docs if "ok" in d}


def test_a_second_branch_and_a_tombstone_on_a_losing_branch_are_stored(csfr: tuple[RemoteDB, RemoteDB]):
    """A tablet replicating a second branch of a result, then a tombstone on its losing branch: both stored.

    Failed on pouchdb-server 4.2.0 unpatched: both writes answered ``201 []`` and stored nothing.
    """
    tablet, admin = csfr
    doc_id = "result:o1:same"
    assert tablet.bulk_docs([{"_id": doc_id, "_rev": rev(1, A), "v": "device a"}]) == []
    assert tablet.bulk_docs([{"_id": doc_id, "_rev": rev(1, B), "v": "device b"}]) == []
    assert leaves(admin, doc_id) == {rev(1, A): False, rev(1, B): False}
    assert tablet.revs_diff({doc_id: [rev(1, A), rev(1, B)]}) == {}
    tombstone = {
        "_id": doc_id,
        "_rev": rev(2, C),
        "_revisions": revisions(rev(2, C), rev(1, A)),
        "_deleted": True,
    }
    assert tablet.bulk_docs([tombstone]) == []
    assert leaves(admin, doc_id) == {rev(2, C): True, rev(1, B): False}
    assert admin.get(doc_id)["_rev"] == rev(1, B)


def test_an_edit_of_a_result_is_refused_loudly_not_dropped(csfr: tuple[RemoteDB, RemoteDB]):
    """Extending a stored result with a live revision is refused with `forbidden` (the old doc is its parent)."""
    tablet, admin = csfr
    doc_id = "result:o2:x"
    tablet.bulk_docs([{"_id": doc_id, "_rev": rev(1, A), "v": 1}])
    edit = {"_id": doc_id, "_rev": rev(2, B), "_revisions": revisions(rev(2, B), rev(1, A)), "v": 2}
    failures = tablet.bulk_docs([edit])
    assert [f["error"] for f in failures] == ["forbidden"]
    assert leaves(admin, doc_id) == {rev(1, A): False}


def test_a_replayed_revision_is_accepted_without_validation(csfr: tuple[RemoteDB, RemoteDB]):
    """Sending a revision the server already has is a success and changes nothing (CouchDB skips it)."""
    tablet, admin = csfr
    doc_id = "event:replay"
    body = {"_id": doc_id, "_rev": rev(1, A), "kind": "on_site"}
    assert tablet.bulk_docs([body]) == []
    assert tablet.bulk_docs([body]) == []
    assert leaves(admin, doc_id) == {rev(1, A): False}


def test_orders_stay_the_servers_under_replication(csfr: tuple[RemoteDB, RemoteDB]):
    """A tablet's branch of an order, a new order, or a tombstone on an order: each refused with `forbidden`."""
    tablet, admin = csfr
    admin.put({"_id": "order:7", "status": "dispatched"})
    server_rev = admin.get("order:7")["_rev"]
    branch = {"_id": "order:7", "_rev": rev(1, A), "status": "completed"}
    child = {
        "_id": "order:7",
        "_rev": rev(2, B),
        "_revisions": {"start": 2, "ids": [B, server_rev.split("-", 1)[1]]},
        "_deleted": True,
    }
    fresh = {"_id": "order:8", "_rev": rev(1, C), "status": "new"}
    failures = tablet.bulk_docs([branch, child, fresh])
    assert sorted((f["id"], f["error"]) for f in failures) == [
        ("order:7", "forbidden"),
        ("order:7", "forbidden"),
        ("order:8", "forbidden"),
    ]
    assert leaves(admin, "order:7") == {server_rev: False}


def converged(stores: list[Store], db: RemoteDB, ids: list[str]) -> dict[str, Any]:
    """Assert every store and the server hold the same leaves per id; return them."""
    server = {doc_id: leaves(db, doc_id) for doc_id in ids}
    for store in stores:
        for doc_id in ids:
            tree = store.revs_tree(doc_id)
            ours = {r: tree[r].deleted for r in revtree.leaves(tree)}
            assert ours == server[doc_id], f"{doc_id}: tablet {ours} != server {server[doc_id]}"
    return server


def test_two_devices_writing_the_same_event_converge(
    csfr: tuple[RemoteDB, RemoteDB], closing: Callable[[RemoteDB], RemoteDB]
):
    """Two tablets write the same event id with different bodies; after syncing, both and the server agree.

    The loser is tombstoned by whichever device resolves it, the tombstone is stored on the server, and
    every side ends with one live leaf (the same one). Failed before: the second device's branch and
    its tombstone were dropped while the push reported them written.
    """
    tablet, admin = csfr
    first, second = Store(), Store()
    ids = ["event:shared", "event:only-first", "event:only-second"]
    first.put({"_id": "event:shared", "kind": "on_site", "device": "first"})
    second.put({"_id": "event:shared", "kind": "on_site", "device": "second"})
    first.put({"_id": "event:only-first", "kind": "en_route"})
    second.put({"_id": "event:only-second", "kind": "en_route"})
    sync_first, sync_second = Sync(first, tablet), Sync(second, tablet)
    for _ in range(2):
        for sync in (sync_first, sync_second):
            result = sync.run_once()
            assert result.push.doc_write_failures == 0
            assert not result.push.unconfirmed and not result.pull.unconfirmed
    server = converged([first, second], admin, ids)
    live = [r for r, dead in server["event:shared"].items() if not dead]
    assert len(live) == 1
    assert first.get("event:shared")["_rev"] == second.get("event:shared")["_rev"] == live[0]
    assert first.conflicted_ids() == second.conflicted_ids() == []
