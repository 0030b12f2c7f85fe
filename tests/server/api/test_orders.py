"""Work orders over the API: create, idempotency, lifecycle, concurrency, CSFR isolation, validation."""

import pytest

from contracts.codes import Role
from server.orders.models import WorkOrder


@pytest.fixture
def dispatcher(login):
    return login(Role.DISPATCHER)


@pytest.fixture
def order_payload(make_account):
    account = make_account()
    return {"order_type": "reread", "account_id": account.id, "reason": "high read"}


def test_create_defaults_by_type(client, dispatcher, order_payload, db_session):
    """A new order takes priority, skills and minutes from its type and lands in status new, with an audit event."""
    resp = client.post("/api/orders", json=order_payload, headers=dispatcher)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "new" and body["priority"] == "reread"
    assert body["required_skills"] == ["read"] and body["estimated_minutes"] == 8
    assert resp.headers["ETag"] == '"1"'
    from server.audit.models import AuditEvent

    events = db_session.query(AuditEvent).filter_by(entity_type="work_order", entity_id=str(body["id"])).all()
    assert [e.action for e in events] == ["created"]


def test_idempotency_key_makes_one_order(client, dispatcher, order_payload, db_session):
    """The same Idempotency-Key twice returns the first order (200), and only one row exists."""
    headers = {**dispatcher, "Idempotency-Key": "cis-123"}
    first = client.post("/api/orders", json=order_payload, headers=headers)
    second = client.post("/api/orders", json=order_payload, headers=headers)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert db_session.query(WorkOrder).filter_by(idempotency_key="cis-123").count() == 1


def test_idempotency_key_reused_for_other_request_is_409(client, dispatcher, order_payload):
    """Reusing a key for a different order is refused, naming the order that owns the key."""
    headers = {**dispatcher, "Idempotency-Key": "cis-124"}
    client.post("/api/orders", json=order_payload, headers=headers)
    other = {**order_payload, "order_type": "meter_test"}
    resp = client.post("/api/orders", json=other, headers=headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"order_type": "teleport"}, "order_type"),
        ({"estimated_minutes": 0}, "estimated_minutes"),
        ({"window_start": "2026-12-01T10:00:00Z", "window_end": "2026-12-01T09:00:00Z"}, "window_end"),
        ({"window_start": "2026-12-01T10:00:00"}, "window_start"),  # no time zone
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_payload_is_422_naming_the_field(client, dispatcher, order_payload, patch, field):
    """A bad payload is a 422 whose message and field list name what is wrong."""
    resp = client.post("/api/orders", json={**order_payload, **patch}, headers=dispatcher)
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert field in err["message"]
    assert err["fields"]


def test_unknown_account_is_422(client, dispatcher):
    """An order for an account that does not exist is refused, naming account_id."""
    resp = client.post("/api/orders", json={"order_type": "reread", "account_id": 999999}, headers=dispatcher)
    assert resp.status_code == 422 and resp.json()["error"]["fields"][0]["field"] == "account_id"


def test_lifecycle_and_illegal_transition(client, dispatcher, order_payload, make_technician):
    """Orders walk the lifecycle; an illegal move is a 409 saying where the order may go."""
    order = client.post("/api/orders", json=order_payload, headers=dispatcher).json()
    oid = order["id"]
    bad = client.post(f"/api/orders/{oid}/transitions", json={"to": "completed"}, headers=dispatcher)
    assert bad.status_code == 409
    assert "from new to completed" in bad.json()["error"]["message"]
    no_tech = client.post(f"/api/orders/{oid}/transitions", json={"to": "assigned"}, headers=dispatcher)
    assert no_tech.status_code == 409 and "no technician" in no_tech.json()["error"]["message"]
    tech = make_technician(skills=["read"])
    etag = client.get(f"/api/orders/{oid}", headers=dispatcher).headers["ETag"]
    client.patch(
        f"/api/orders/{oid}", json={"technician_id": tech.id}, headers={**dispatcher, "If-Match": etag}
    )
    for target in ("assigned", "dispatched", "en_route", "on_site", "completed"):
        resp = client.post(f"/api/orders/{oid}/transitions", json={"to": target}, headers=dispatcher)
        assert resp.status_code == 200, resp.text
    final = client.get(f"/api/orders/{oid}", headers=dispatcher).json()
    assert final["status"] == "completed" and final["completed_at"]
    again = client.post(f"/api/orders/{oid}/transitions", json={"to": "cancelled"}, headers=dispatcher)
    assert again.status_code == 409 and "closed order" in again.json()["error"]["message"]


def test_unable_to_complete_needs_a_code(client, dispatcher, order_payload):
    """Marking an order unable to complete without a code is a 422 naming unable_code."""
    oid = client.post("/api/orders", json=order_payload, headers=dispatcher).json()["id"]
    resp = client.post(
        f"/api/orders/{oid}/transitions", json={"to": "unable_to_complete"}, headers=dispatcher
    )
    assert resp.status_code == 422 and "unable_code" in resp.json()["error"]["message"]


def test_patch_needs_if_match_and_rejects_stale(client, dispatcher, order_payload):
    """PATCH without If-Match is 428; with an old ETag it is 412 and nothing changes."""
    created = client.post("/api/orders", json=order_payload, headers=dispatcher)
    oid, etag = created.json()["id"], created.headers["ETag"]
    assert client.patch(f"/api/orders/{oid}", json={"notes": "x"}, headers=dispatcher).status_code == 428
    ok = client.patch(f"/api/orders/{oid}", json={"notes": "first"}, headers={**dispatcher, "If-Match": etag})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    stale = client.patch(
        f"/api/orders/{oid}", json={"notes": "second"}, headers={**dispatcher, "If-Match": etag}
    )
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "stale_version"
    assert client.get(f"/api/orders/{oid}", headers=dispatcher).json()["notes"] == "first"


def test_lost_update_race_is_caught_by_version_column(db_session, make_account):
    """Two sessions editing the same order: the second flush fails instead of overwriting."""
    from sqlalchemy.orm import Session
    from sqlalchemy.orm.exc import StaleDataError

    account = make_account()
    order = WorkOrder(
        order_type="reread",
        priority="reread",
        service_point_id=account.service_point_id,
        idempotency_key="race-1",
    )
    db_session.add(order)
    db_session.flush()
    # Simulate a second writer having bumped the version underneath us.
    db_session.execute(WorkOrder.__table__.update().where(WorkOrder.id == order.id).values(version=5))
    order.notes = "mine"
    with pytest.raises(StaleDataError):
        db_session.flush()
    assert isinstance(db_session, Session)


def test_assigning_unskilled_technician_is_409(client, dispatcher, order_payload, make_technician):
    """A reread cannot be given to a technician without the read skill."""
    created = client.post("/api/orders", json=order_payload, headers=dispatcher)
    tech = make_technician(skills=["meter_test"])
    resp = client.patch(
        f"/api/orders/{created.json()['id']}",
        json={"technician_id": tech.id},
        headers={**dispatcher, "If-Match": created.headers["ETag"]},
    )
    assert resp.status_code == 409 and "lacks the skills" in resp.json()["error"]["message"]


def test_csfr_sees_only_their_own_orders(client, login, make_account, make_technician, db_session):
    """A CSFR lists and reads only orders assigned to them; others' are 404; they cannot create or dispatch."""
    mine, theirs = make_technician(), make_technician()
    csfr = login(Role.CSFR, technician=mine)
    sp = make_account().service_point_id
    own = WorkOrder(
        order_type="reread",
        priority="reread",
        service_point_id=sp,
        technician_id=mine.id,
        status="dispatched",
        idempotency_key="own",
    )
    other = WorkOrder(
        order_type="reread",
        priority="reread",
        service_point_id=sp,
        technician_id=theirs.id,
        status="dispatched",
        idempotency_key="other",
    )
    db_session.add_all([own, other])
    db_session.flush()
    listing = client.get("/api/orders", headers=csfr).json()
    assert [o["id"] for o in listing["items"]] == [own.id] and listing["total"] == 1
    assert client.get(f"/api/orders?technician_id={theirs.id}", headers=csfr).json()["total"] == 0
    assert client.get(f"/api/orders/{other.id}", headers=csfr).status_code == 404
    assert (
        client.post(f"/api/orders/{other.id}/transitions", json={"to": "en_route"}, headers=csfr).status_code
        == 404
    )
    assert (
        client.post(f"/api/orders/{own.id}/transitions", json={"to": "en_route"}, headers=csfr).status_code
        == 200
    )
    cancel = client.post(f"/api/orders/{own.id}/transitions", json={"to": "cancelled"}, headers=csfr)
    assert cancel.status_code == 403
    create = client.post("/api/orders", json={"order_type": "reread", "service_point_id": sp}, headers=csfr)
    assert create.status_code == 403


def test_list_filters_and_paging(client, dispatcher, make_account):
    """Filters by type and status combine; pages hold page_size items and report the total."""
    account = make_account()
    for i in range(7):
        kind = "reread" if i % 2 else "meter_test"
        client.post(
            "/api/orders",
            json={"order_type": kind, "account_id": account.id},
            headers={**dispatcher, "Idempotency-Key": f"k{i}"},
        )
    rereads = client.get("/api/orders?order_type=reread&status=new&page_size=2", headers=dispatcher).json()
    assert rereads["total"] == 3 and len(rereads["items"]) == 2
    page2 = client.get("/api/orders?order_type=reread&page_size=2&page=2", headers=dispatcher).json()
    assert len(page2["items"]) == 1
    assert client.get("/api/orders?page=0", headers=dispatcher).status_code == 422
