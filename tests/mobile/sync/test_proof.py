"""The replicator proves what landed: a write answered as done but not stored is found, retried once,
recorded as a sync problem, reported to the server, and cleared once it lands. Server-owned documents
win on the tablet. Against FakeCouch (an httpx MockTransport CouchDB that can drop writes) and the dev
server with the project's validate_doc_update.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mobile.background import SyncRunner
from mobile.core.sync_state import SyncState, SyncStatus
from mobile.sync import RemoteDB, Replicator, Store, Sync, TransientError
from mobile.sync.devserver import CouchServer
from mobile.sync.peers import LocalPeer
from mobile.sync.replicator import REPORT_ID
from mobile.sync.store import Doc
from server.sync.couch import DESIGN_ID, VALIDATE_DOC_UPDATE
from tests.mobile.sync.fakecouch import FakeCouch


def remote_for(fake: FakeCouch) -> RemoteDB:
    """A RemoteDB whose HTTP goes to the fake."""
    return RemoteDB(fake.url, fake.db, auth=("csfr-1", "pw"), transport=fake.transport())


def test_push_finds_a_write_answered_201_but_not_stored_retries_once_and_records_it():
    """The fake answers `201 []` and drops one result: the push sends it twice, then records it.

    Before, the push counted it as written, checkpointed past it, and later syncs did nothing.
    """
    fake = FakeCouch()
    fake.drop = lambda doc: doc["_id"] == "result:2:x"
    tablet = Store()
    for i in range(5):
        tablet.put({"_id": f"result:{i}:x", "n": i})
    result = Sync(tablet, remote_for(fake), batch_size=10).run_once()
    rev = tablet.get("result:2:x")["_rev"]
    assert result.push.docs_written == 4
    assert [(u["id"], u["rev"]) for u in result.push.unconfirmed] == [("result:2:x", rev)]
    assert fake.dropped == [("result:2:x", rev)] * 2  # sent, then sent once more
    assert [(p.direction, p.doc_id, p.rev, p.kind) for p in result.problems] == [
        ("push", "result:2:x", rev, "not_stored")
    ]
    report = fake.store.get_local(REPORT_ID)
    assert report is not None
    [entry] = report["devices"].values()
    assert [(p["id"], p["kind"]) for p in entry["problems"]] == [("result:2:x", "not_stored")]


def test_a_recorded_problem_is_sent_again_each_sync_and_cleared_when_it_lands():
    """Later syncs keep trying the missing revision (the checkpoint moved on); once stored it is cleared."""
    fake = FakeCouch()
    fake.drop = lambda doc: doc["_id"] == "event:lost"
    tablet = Store()
    tablet.put({"_id": "event:lost", "kind": "on_site"})
    sync = Sync(tablet, remote_for(fake))
    assert len(sync.run_once().problems) == 1
    again = sync.run_once()  # still dropping: one more attempt, still open, attempts counted
    assert [p.attempts for p in again.problems] == [2]
    assert len(fake.dropped) == 4
    fake.drop = None
    healed = sync.run_once()
    assert healed.problems == [] and tablet.sync_problems() == []
    assert fake.store.get("event:lost")["kind"] == "on_site"
    [entry] = fake.store.get_local(REPORT_ID)["devices"].values()
    assert entry["problems"] == []  # the server hears it is resolved too


def test_nothing_to_report_writes_no_report():
    """A device that never had a problem does not write the report document (no extra round trip)."""
    fake = FakeCouch()
    tablet = Store()
    tablet.put({"_id": "event:fine", "kind": "on_site"})
    sync = Sync(tablet, remote_for(fake))
    sync.run_once()
    sync.run_once()
    assert fake.store.get_local(REPORT_ID) is None


class DroppingPeer(LocalPeer):
    """A local store that answers writes as done but drops the ids `drop` names (a broken disk, a bug)."""

    def __init__(self, store: Store, drop: set[str]) -> None:
        super().__init__(store)
        self.drop = drop

    def bulk_docs(self, docs: Sequence[Mapping[str, Any]]) -> list[Doc]:
        """Write all but the dropped ids; report no failure."""
        return super().bulk_docs([d for d in docs if d["_id"] not in self.drop])


def test_pull_proves_what_it_stored_locally_too():
    """The pull checks the local store with `_revs_diff` the same way; a dropped revision is listed."""
    fake = FakeCouch()
    for i in range(4):
        fake.store.put({"_id": f"order:{i}", "n": i})
    tablet = Store()
    result = Replicator(remote_for(fake), DroppingPeer(tablet, {"order:1"})).run()
    assert result.docs_written == 3
    assert [u["id"] for u in result.unconfirmed] == ["order:1"]
    assert result.revs_diff_checks == 2  # the batch, then the retry


def test_a_clean_push_costs_one_revs_diff_per_batch():
    """Proof is one `_revs_diff` per written batch and nothing when there is nothing to write."""
    fake = FakeCouch()
    tablet = Store()
    for i in range(9):
        tablet.put({"_id": f"result:{i}:x"})
    sync = Sync(tablet, remote_for(fake), batch_size=4)
    first = sync.run_once()
    assert first.push.batches == 3 and first.push.revs_diff_checks == 3 and not first.push.unconfirmed
    assert sync.run_once().push.revs_diff_checks == 0


# -- the dev server with the project's validation -----------------------------------------------------


@pytest.fixture
def provisioned(couch_server: CouchServer) -> Iterator[tuple[RemoteDB, RemoteDB]]:
    """(the tablet's connection as the CSFR user, the server admin's) on a provisioned database."""
    name = f"csfr-p{uuid.uuid4().hex[:10]}"
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


@pytest.mark.couchdb
def test_an_order_edited_on_the_tablet_gives_way_to_the_servers(provisioned: tuple[RemoteDB, RemoteDB]):
    """A tablet's refused edit of an order never stays its winner: the server's order comes back.

    The tablet's edit would win locally (a child of the server's revision); the server refuses it; the
    tablet then holds exactly the server's leaves, logs the refusal, and converges on later syncs.
    """
    tablet_db, admin = provisioned
    admin.put({"_id": "order:9", "status": "dispatched", "v": 1})
    tablet = Store()
    sync = Sync(tablet, tablet_db)
    sync.run_once()
    server_rev = tablet.get("order:9")["_rev"]
    tablet.put({**tablet.get("order:9"), "status": "completed"})  # what the app must not do
    result = sync.run_once()
    assert [(f["id"], f["error"]) for f in result.push.forbidden] == [("order:9", "forbidden")]
    assert tablet.get("order:9")["_rev"] == server_rev and tablet.get("order:9")["status"] == "dispatched"
    assert [(r.doc_id, r.kind) for r in result.restored] == [("order:9", "refused")]
    assert result.problems == []  # resolved: the server's copy is back
    assert tablet.conflict_log()[-1].kind == "refused"
    # A later server edit arrives as an ordinary update, with no conflict.
    admin.put({**admin.get("order:9"), "status": "cancelled"})
    sync.run_once()
    assert tablet.get("order:9", conflicts=True).get("_conflicts") is None
    assert tablet.get("order:9")["status"] == "cancelled"


@pytest.mark.couchdb
def test_a_competing_branch_of_an_order_never_wins_on_the_tablet(provisioned: tuple[RemoteDB, RemoteDB]):
    """Server and tablet both edit an order offline; whatever the hashes say, the tablet ends on the server's."""
    tablet_db, admin = provisioned
    admin.put({"_id": "order:5", "status": "dispatched"})
    tablets = [Store() for _ in range(6)]
    for store in tablets:
        Sync(store, tablet_db).run_once()
    base = admin.get("order:5")
    admin.put({**base, "status": "cancelled"})
    for i, store in enumerate(tablets):  # different bodies: some local revision ids beat the server's
        store.put({**store.get("order:5"), "status": "completed", "note": str(i)})
    server_winner = admin.get("order:5")["_rev"]
    for store in tablets:
        Sync(store, tablet_db).run_once()
        doc = store.get("order:5", conflicts=True)
        assert doc["_rev"] == server_winner and doc["status"] == "cancelled" and "_conflicts" not in doc


@pytest.mark.couchdb
def test_a_refused_result_edit_is_a_problem_the_server_hears_about(
    provisioned: tuple[RemoteDB, RemoteDB],
):
    """Editing a result after it synced is refused by validation: recorded, not retried, reported."""
    tablet_db, admin = provisioned
    tablet = Store()
    rev = tablet.put({"_id": "result:4:x", "outcome": "completed"})
    sync = Sync(tablet, tablet_db)
    sync.run_once()
    tablet.put({"_id": "result:4:x", "_rev": rev, "outcome": "unable_to_complete"})
    result = sync.run_once()
    assert [(p.doc_id, p.kind) for p in result.problems] == [("result:4:x", "refused")]
    report = admin.get_local(REPORT_ID)
    assert report is not None
    assert report["devices"][tablet.uuid]["problems"][0]["kind"] == "refused"
    again = sync.run_once()  # checked, not sent again
    assert again.push.bulk_docs_calls == 0 and [p.attempts for p in again.problems] == [2]


def test_the_app_shows_what_did_not_land():
    """The background round puts open problems on the sync state; the route screen's label counts them."""
    fake = FakeCouch()
    fake.drop = lambda doc: doc["_id"].startswith("result:")
    tablet = Store()
    tablet.put({"_id": "result:1:x", "outcome": "completed"})
    state = SyncState()
    runner = SyncRunner(tablet, lambda: remote_for(fake), state)
    assert runner.run_round()
    assert state.status is SyncStatus.SYNCED and len(state.problems) == 1
    assert "result:1:x push not_stored" in state.problems[0]
    now = dt.datetime.now(dt.UTC)
    assert state.label(now, ZoneInfo("America/Los_Angeles")).endswith("1 document not on the server")
    fake.drop = None
    runner.run_round()
    assert state.problems == []
    assert "not on the server" not in state.label(now, ZoneInfo("America/Los_Angeles"))


class FlakyRestore(RemoteDB):
    """A RemoteDB whose first `open_revs_all` is cut by the network."""

    failed = False

    def open_revs_all(self, doc_id: str) -> list[Doc]:
        """Fail once with a transient error, then answer."""
        if not self.failed:
            self.failed = True
            raise TransientError("cut while reading the server's copy")
        return super().open_revs_all(doc_id)


@pytest.mark.couchdb
def test_a_restore_cut_by_the_network_is_finished_by_the_next_sync(
    couch_server: CouchServer, provisioned: tuple[RemoteDB, RemoteDB]
):
    """The push checkpoint has moved past the refused order when the restore is cut: the next run restores it."""
    tablet_db, admin = provisioned
    admin.put({"_id": "order:3", "status": "dispatched"})
    tablet = Store()
    with FlakyRestore(couch_server.url, tablet_db.db, auth=tablet_db.auth) as flaky:
        sync = Sync(tablet, flaky)
        sync.run_once()
        server_rev = tablet.get("order:3")["_rev"]
        tablet.put({**tablet.get("order:3"), "status": "completed"})
        with pytest.raises(TransientError):
            sync.run_once()
        assert [(p.doc_id, p.kind) for p in tablet.sync_problems()] == [("order:3", "refused")]
        result = sync.run_once()
    assert tablet.get("order:3")["_rev"] == server_rev and result.problems == []
