"""Server side of sync against a real pouchdb-server: provisioning, security, publisher, follower."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from contracts.codes import Role
from server.config import Settings, get_settings
from server.meters.models import MeterRead
from server.orders.models import WorkOrder
from server.sync import service
from server.sync.couch import CouchAdmin, CouchConfig
from server.sync.models import FieldResult, SyncCheckpoint

pytestmark = pytest.mark.couchdb
SECRET = "test-secret-key-that-is-long-enough-for-hs256"


@pytest.fixture(scope="module")
def couch(tmp_path_factory) -> Iterator[CouchConfig]:
    """A pouchdb-server for this module (or COUCHDB_URL), as an admin config."""
    import os

    from mobile.sync.devserver import from_url, start_pouchdb_server

    if os.environ.get("COUCHDB_URL"):
        server = from_url(os.environ["COUCHDB_URL"])
        yield CouchConfig(url=server.url, username=server.username, password=server.password)
        return
    server = start_pouchdb_server(data_dir=tmp_path_factory.mktemp("pouch"))
    try:
        yield CouchConfig(url=server.url, username=server.username, password=server.password)
    finally:
        server.stop()


@pytest.fixture
def admin(couch) -> Iterator[CouchAdmin]:
    client = CouchAdmin(couch)
    yield client
    client.close()


@pytest.fixture
def tech(make_technician):
    """A CSFR with a unique code (the CouchDB server is shared by the module)."""
    return make_technician(code=f"S{uuid.uuid4().hex[:8]}", skills=["read", "turn_on_off"])


def tablet(couch: CouchConfig, tech, secret: str = SECRET) -> httpx.Client:
    """An HTTP client with the CSFR's CouchDB credentials, on their database."""
    db = service.database_for(tech)
    return httpx.Client(
        base_url=f"{couch.url}/{db}", auth=(db, service.couch_password(db, secret)), timeout=10
    )


@pytest.fixture
def dispatched(db_session, make_account, make_meter, tech):
    """A reread dispatched to `tech`, with a meter and a read history."""
    account = make_account()
    meter = make_meter(service_point_id=account.service_point_id, dials=6)
    db_session.add(
        MeterRead(
            meter_id=meter.id, read_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC), reading=1000.0, source="cis"
        )
    )
    order = WorkOrder(
        order_type="reread",
        priority="reread",
        account_id=account.id,
        service_point_id=account.service_point_id,
        meter_id=meter.id,
        technician_id=tech.id,
        status="dispatched",
        route_sequence=1,
        idempotency_key=f"sync-{uuid.uuid4().hex}",
        reason="high read",
    )
    db_session.add(order)
    db_session.flush()
    return order


def test_provisioning_isolates_each_csfr(admin, couch, db_session, tech, make_technician):
    """Each CSFR gets a database only they (and the server) can open; another CSFR is refused."""
    other = make_technician(code=f"S{uuid.uuid4().hex[:8]}")
    for t in (tech, other):
        service.provision(admin=admin, tech=t, secret=SECRET)
    with tablet(couch, tech) as mine:
        assert mine.get("").status_code == 200
    with httpx.Client(
        auth=(service.database_for(other), service.couch_password(service.database_for(other), SECRET)),
        timeout=10,
    ) as intruder:
        resp = intruder.get(f"{couch.url}/{service.database_for(tech)}/_all_docs")
        assert resp.status_code in (401, 403)
    with httpx.Client(auth=(service.database_for(tech), "wrong-password"), timeout=10) as guesser:
        assert guesser.get(f"{couch.url}/{service.database_for(tech)}").status_code == 401
    # Provisioning again changes nothing and does not fail.
    service.provision(admin=admin, tech=tech, secret=SECRET)


def test_tablet_may_create_results_but_never_touch_orders(admin, couch, db_session, tech, dispatched):
    """validate_doc_update: results and events are created once; order documents are the server's."""
    service.provision(admin=admin, tech=tech, secret=SECRET)
    service.publish_pending(db_session=db_session, admin=admin)
    with tablet(couch, tech) as t:
        order = t.get(f"/order:{dispatched.id}").json()
        order["status"] = "completed"
        edit = t.put(f"/order:{dispatched.id}", json=order)
        assert edit.status_code == 403 and "belongs to the server" in edit.text
        forged = t.put("/order:999999", json={"doc_type": "order"})
        assert forged.status_code == 403
        created = t.put(
            "/event:e1",
            json={
                "doc_type": "event",
                "event_id": "e1",
                "order_id": str(dispatched.id),
                "kind": "en_route",
                "at": "2026-12-02T16:00:00Z",
                "csfr_id": tech.code,
                "device_id": "tab-1",
            },
        )
        assert created.status_code == 201, created.text
        changed = t.put(
            "/event:e1", json={"_rev": created.json()["rev"], "doc_type": "event", "kind": "on_site"}
        )
        assert changed.status_code == 403 and "never edited" in changed.text


def test_publisher_writes_changes_reassignments_and_cancellations(
    admin, couch, db_session, tech, dispatched, make_technician
):
    """Dispatched orders appear; edits are republished; a reassigned order moves; a cancelled one says so."""
    service.provision(admin=admin, tech=tech, secret=SECRET)
    first = service.publish_pending(db_session=db_session, admin=admin)
    assert first.published >= 1
    doc = admin.get_doc(service.database_for(tech), f"order:{dispatched.id}")
    assert (
        doc["status"] == "dispatched"
        and doc["csfr_id"] == tech.code
        and doc["meters"][0]["last_read"] == 1000.0
    )
    assert "balance" not in str(doc).lower()
    assert service.publish_pending(db_session=db_session, admin=admin).published == 0  # nothing changed
    dispatched.notes = "call ahead"
    dispatched.route_sequence = 3
    db_session.flush()
    service.publish_pending(db_session=db_session, admin=admin)
    assert admin.get_doc(service.database_for(tech), f"order:{dispatched.id}")["sequence"] == 3
    other = make_technician(code=f"S{uuid.uuid4().hex[:8]}")
    service.provision(admin=admin, tech=other, secret=SECRET)
    dispatched.technician_id = other.id
    db_session.flush()
    moved = service.publish_pending(db_session=db_session, admin=admin)
    assert moved.published == 1 and moved.withdrawn == 1
    assert admin.get_doc(service.database_for(other), f"order:{dispatched.id}")["status"] == "dispatched"
    gone = admin.get_doc(service.database_for(tech), f"order:{dispatched.id}")
    assert gone["status"] == "cancelled" and gone["reason"] == "reassigned to another CSFR"
    dispatched.status = "cancelled"
    db_session.flush()
    service.publish_pending(db_session=db_session, admin=admin)
    assert admin.get_doc(service.database_for(other), f"order:{dispatched.id}")["status"] == "cancelled"


def _result(order, tech, outcome="completed", **kw):
    rid = uuid.uuid4().hex
    body = {
        "_id": f"result:{order.id}:{rid}",
        "doc_type": "result",
        "result_id": rid,
        "order_id": str(order.id),
        "outcome": outcome,
        "csfr_id": tech.code,
        "device_id": "tab-1",
        "completed_at": "2026-12-02T17:00:00Z",
        **kw,
    }
    return body


def test_follower_ingests_results_and_events_once(admin, couch, db_session, tech, dispatched):
    """An en-route event and a completed result move the order and store the reading; a second pass changes nothing."""
    service.provision(admin=admin, tech=tech, secret=SECRET)
    with tablet(couch, tech) as t:
        t.put(
            "/event:ev1",
            json={
                "doc_type": "event",
                "event_id": "ev1",
                "order_id": str(dispatched.id),
                "kind": "en_route",
                "at": "2026-12-02T16:00:00Z",
                "csfr_id": tech.code,
                "device_id": "tab-1",
                "gps": {"lat": 38.5, "lon": -121.4},
            },
        )
        reading = {"meter_id": str(dispatched.meter_id), "value": 1450.0, "read_at": "2026-12-02T16:55:00Z"}
        body = _result(dispatched, tech, readings=[reading], fields={"form": "reread"})
        assert t.put(f"/{body['_id']}", json=body).status_code == 201
    out = service.follow(db_session=db_session, admin=admin, techs=[tech])
    assert (out.results, out.events) == (1, 1)
    db_session.refresh(dispatched)
    assert dispatched.status == "completed" and dispatched.outcome["readings"] == 1
    assert dispatched.outcome["en_route_gps"]["lat"] == 38.5
    field_reads = db_session.scalars(select(MeterRead).where(MeterRead.source == "field")).all()
    assert [r.reading for r in field_reads] == [1450.0]
    again = service.follow(db_session=db_session, admin=admin, techs=[tech])
    assert (again.results, again.events) == (0, 0)
    assert db_session.get(SyncCheckpoint, service.database_for(tech)).last_seq
    # Re-reading the whole feed from the start (a lost checkpoint) still ingests nothing twice.
    db_session.delete(db_session.get(SyncCheckpoint, service.database_for(tech)))
    db_session.flush()
    replay = service.follow(db_session=db_session, admin=admin, techs=[tech])
    assert replay.skipped == 2 and replay.results == 0
    assert len(db_session.scalars(select(MeterRead).where(MeterRead.source == "field")).all()) == 1


def test_unable_to_complete_goes_back_to_dispatch(admin, couch, db_session, tech, dispatched):
    """An unable-to-complete result records the code and returns the order to dispatch, unassigned."""
    service.provision(admin=admin, tech=tech, secret=SECRET)
    with tablet(couch, tech) as t:
        body = _result(
            dispatched, tech, outcome="unable_to_complete", unable_code="dog", notes="large dog loose"
        )
        t.put(f"/{body['_id']}", json=body)
    service.follow(db_session=db_session, admin=admin, techs=[tech])
    db_session.refresh(dispatched)
    assert dispatched.status == "new" and dispatched.technician_id is None
    assert "dog" in dispatched.status_reason and dispatched.outcome["unable_code"] == "dog"


def test_follower_rejects_work_on_someone_elses_order(
    admin, couch, db_session, tech, dispatched, make_technician
):
    """A result in one CSFR's database for an order assigned to another changes nothing and is recorded as rejected."""
    other = make_technician(code=f"S{uuid.uuid4().hex[:8]}")
    service.provision(admin=admin, tech=other, secret=SECRET)
    with tablet(couch, other) as t:
        body = _result(dispatched, other)
        t.put(f"/{body['_id']}", json=body)
    service.follow(db_session=db_session, admin=admin, techs=[other])
    db_session.refresh(dispatched)
    assert dispatched.status == "dispatched"
    ingested = db_session.get(FieldResult, body["_id"])
    assert ingested.outcome.startswith("rejected")


def test_session_endpoint_gives_a_csfr_their_database(client, app, login, couch, tech, settings):
    """GET /api/sync/session returns the caller's database, working CouchDB credentials and the utility's
    time zone (the tablet shows times and picks "today" in it); office roles get 403."""
    configured = Settings(
        var_dir=settings.var_dir,
        secret_key=SECRET,
        couchdb_url=f"{couch.url.replace('://', f'://{couch.username}:{couch.password}@')}",
        timezone="America/Denver",
    )
    app.dependency_overrides[get_settings] = lambda: configured
    headers = login(Role.CSFR, technician=tech)
    body = client.get("/api/sync/session", headers=headers).json()
    assert body["database"] == service.database_for(tech) and body["couchdb_url"] == couch.url
    assert body["time_zone"] == "America/Denver"
    with httpx.Client(auth=(body["username"], body["password"]), timeout=10) as c:
        assert c.get(f"{body['couchdb_url']}/{body['database']}").status_code == 200
    assert client.get("/api/sync/session", headers=login(Role.DISPATCHER)).status_code == 403


def test_status_reports_what_tablets_could_not_land(client, app, login, admin, couch, tech, settings):
    """GET /api/sync/status lists each tablet's open sync problems (here: a refused edit of a result),
    as the tablet reports them in its database; with nothing wrong the list is empty."""
    from mobile.sync import RemoteDB, Store, Sync

    configured = Settings(
        var_dir=settings.var_dir,
        secret_key=SECRET,
        couchdb_url=f"{couch.url.replace('://', f'://{couch.username}:{couch.password}@')}",
    )
    app.dependency_overrides[get_settings] = lambda: configured
    db = service.provision(admin=admin, tech=tech, secret=SECRET)
    headers = login(Role.DISPATCHER)
    assert client.get("/api/sync/status", headers=headers).json()["sync_problems"] == 0
    store = Store()
    rev = store.put({"_id": "result:1:x", "doc_type": "result", "outcome": "completed"})
    with RemoteDB(couch.url, db, auth=(db, service.couch_password(db, SECRET))) as remote:
        sync = Sync(store, remote)
        sync.run_once()
        store.put({"_id": "result:1:x", "_rev": rev, "doc_type": "result", "outcome": "unable_to_complete"})
        sync.run_once()
    status = client.get("/api/sync/status", headers=headers).json()
    assert status["sync_problems"] == 1 and status["devices_error"] is None
    [device] = [d for d in status["devices"] if d["database"] == db]
    assert device["device"] == store.uuid
    assert device["problems"][0]["id"] == "result:1:x" and device["problems"][0]["kind"] == "refused"
