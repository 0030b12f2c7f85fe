"""One order lifecycle: every move and every state-bound edit goes through server.orders.lifecycle.

Every legal move through the API; a table of illegal ones (409 with the reason, nothing written); held
shut-offs (awaiting review, medical hold) refuse a technician, a lock, a new date and dispatch; every
writer (API, dispatch, sync, generation, review) audits in the same transaction with `via`; sync and
dispatch go through it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from contracts.codes import ORDER_TRANSITIONS, OrderStatus, Role
from server.accounts.models import ShutoffHold
from server.audit.models import AuditEvent
from server.dispatch import service as dispatch
from server.dispatch.models import DispatchPlan
from server.dispatch.problem import build
from server.orders import generation, lifecycle, review
from server.orders.lifecycle import LifecycleError
from server.orders.models import ShutoffBatch, WorkOrder
from server.sync import service as sync
from server.sync.couch import CouchAdmin, CouchConfig

_keys = itertools.count(1)
DAY = dt.date(2026, 12, 2)  # a Wednesday
ZONE = ZoneInfo("America/Los_Angeles")
LEGAL = sorted((a, b) for a, targets in ORDER_TRANSITIONS.items() for b in targets)
ILLEGAL = sorted(
    (a, b) for a in OrderStatus for b in OrderStatus if b not in ORDER_TRANSITIONS[a]
)  # includes a -> a


@pytest.fixture
def dispatcher(login):
    return login(Role.DISPATCHER, username=f"disp{next(_keys)}")


@pytest.fixture
def tech(make_technician):
    return make_technician(code=f"L{uuid.uuid4().hex[:8]}", skills=["read", "turn_on_off"])


@pytest.fixture
def make_order(db_session, make_account):
    """Factory: an order of a type in a status (a technician when given), straight into the table."""

    def make(status: OrderStatus = OrderStatus.NEW, order_type: str = "reread", **kw) -> WorkOrder:
        account = kw.pop("account", None) or make_account()
        order = WorkOrder(
            order_type=order_type,
            priority="shut_off" if order_type == "shut_off_nonpay" else "reread",
            account_id=account.id,
            service_point_id=account.service_point_id,
            status=status.value,
            required_skills=kw.pop(
                "required_skills", ["turn_on_off"] if order_type != "reread" else ["read"]
            ),
            idempotency_key=f"life:{next(_keys)}:{uuid.uuid4().hex[:6]}",
            **kw,
        )
        db_session.add(order)
        db_session.flush()
        return order

    return make


def events(db_session, order: WorkOrder) -> list[AuditEvent]:
    return list(
        db_session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "work_order", AuditEvent.entity_id == str(order.id))
            .order_by(AuditEvent.id)
        )
    )


def medical_hold(db_session, order: WorkOrder, *, start=dt.date(2020, 1, 1), end=None) -> ShutoffHold:
    hold = ShutoffHold(
        cis_hold_id=f"H{uuid.uuid4().hex[:10]}",
        account_id=order.account_id,
        kind="medical_certificate",
        start_date=start,
        end_date=end,
    )
    db_session.add(hold)
    db_session.flush()
    return hold


def etag(client, order: WorkOrder, headers) -> str:
    return client.get(f"/api/orders/{order.id}", headers=headers).headers["ETag"]


# --- moves through the API ------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "target"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_every_legal_move_through_the_api(client, dispatcher, db_session, make_order, tech, start, target):
    """Each move of the table is 200 through the API, audited (from, to, reason, via=api) and bumps the version by one."""
    order = make_order(start, technician_id=tech.id)
    version = order.version
    body = {"to": target.value, "reason": "because"}
    if target is OrderStatus.UNABLE_TO_COMPLETE:
        body["unable_code"] = "dog"
    resp = client.post(f"/api/orders/{order.id}/transitions", json=body, headers=dispatcher)
    assert resp.status_code == 200, resp.text
    db_session.refresh(order)
    assert order.status == target.value and order.status_reason == "because"
    assert order.version == version + 1 and resp.headers["ETag"] == f'"{version + 1}"'
    (event,) = events(db_session, order)
    assert event.action == "transition"
    assert {k: event.detail[k] for k in ("from", "to", "reason", "via")} == {
        "from": start.value,
        "to": target.value,
        "reason": "because",
        "via": "api",
    }
    assert event.actor.startswith("disp")


@pytest.mark.parametrize(("start", "target"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_illegal_moves_are_409_with_the_reason(
    client, dispatcher, db_session, make_order, tech, start, target
):
    """A move outside the table is 409 `illegal_transition` saying why; status, version and audit are untouched."""
    order = make_order(start, technician_id=tech.id)
    version = order.version
    body = {"to": target.value}
    if target is OrderStatus.UNABLE_TO_COMPLETE:
        body["unable_code"] = "dog"
    resp = client.post(f"/api/orders/{order.id}/transitions", json=body, headers=dispatcher)
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "illegal_transition"
    assert f"order {order.id}: " in error["message"]
    if start is target:
        assert f"already {start.value}" in error["message"]
    elif start in (OrderStatus.COMPLETED, OrderStatus.CANCELLED):
        assert "a closed order cannot move" in error["message"]
    else:
        assert f"from {start.value} to {target.value}" in error["message"]
        assert "it may go to:" in error["message"]
    db_session.refresh(order)
    assert order.status == start.value and order.version == version
    assert events(db_session, order) == []


def test_assigned_and_dispatched_need_a_technician(client, dispatcher, make_order):
    """Assigning or dispatching an order without a technician is 409 naming what is missing."""
    order = make_order(OrderStatus.NEW)
    resp = client.post(f"/api/orders/{order.id}/transitions", json={"to": "assigned"}, headers=dispatcher)
    assert resp.status_code == 409 and "has no technician" in resp.json()["error"]["message"]


def test_back_to_dispatch_after_unable_clears_technician_and_lock(
    client, dispatcher, db_session, make_order, tech
):
    """unable_to_complete -> new returns the order unassigned and unlocked; a locked order pulled back keeps its CSFR."""
    failed = make_order(OrderStatus.UNABLE_TO_COMPLETE, technician_id=tech.id, locked=True, route_sequence=2)
    resp = client.post(f"/api/orders/{failed.id}/transitions", json={"to": "new"}, headers=dispatcher)
    assert resp.status_code == 200
    assert resp.json()["technician_id"] is None and resp.json()["locked"] is False
    assert resp.json()["route_sequence"] is None
    pinned = make_order(OrderStatus.DISPATCHED, technician_id=tech.id, locked=True, route_sequence=2)
    resp = client.post(f"/api/orders/{pinned.id}/transitions", json={"to": "new"}, headers=dispatcher)
    assert resp.json()["technician_id"] == tech.id and resp.json()["locked"] is True
    assert resp.json()["route_sequence"] is None


# --- held orders ------------------------------------------------------------------------------------


@pytest.fixture(params=["awaiting_review", "on_hold"])
def held_shutoff(request, db_session, make_order):
    """A shut-off held back: awaiting its batch's review, or its account under a medical-certificate hold."""
    if request.param == "awaiting_review":
        batch = ShutoffBatch(service_date=DAY)
        db_session.add(batch)
        db_session.flush()
        order = make_order(
            OrderStatus.NEW,
            order_type="shut_off_nonpay",
            scheduled_date=DAY,
            review_hold=f"awaiting review in shut-off batch {batch.id}",
            batch_id=batch.id,
        )
    else:
        order = make_order(OrderStatus.NEW, order_type="shut_off_nonpay", scheduled_date=DAY)
        medical_hold(db_session, order)
    return request.param, order


@pytest.mark.parametrize(
    "patch",
    [{"technician_id": "TECH"}, {"locked": True}, {"scheduled_date": "2026-12-09"}],
    ids=["technician", "lock", "reschedule"],
)
def test_held_shutoff_patch_is_409(client, dispatcher, db_session, held_shutoff, tech, patch):
    """PATCH giving a held shut-off a technician, a lock or a new date is 409 with the hold's reason (was 200)."""
    code, order = held_shutoff
    body = {k: (tech.id if v == "TECH" else v) for k, v in patch.items()}
    version = order.version
    resp = client.patch(
        f"/api/orders/{order.id}",
        json=body,
        headers={**dispatcher, "If-Match": etag(client, order, dispatcher)},
    )
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == code
    assert "it is held" in error["message"]
    if code == "awaiting_review":
        assert "awaiting review in shut-off batch" in error["message"]
    else:
        assert "medical certificate hold" in error["message"]
    db_session.refresh(order)
    assert order.technician_id is None and order.locked is False and order.scheduled_date == DAY
    assert order.version == version and events(db_session, order) == []


def test_held_shutoff_accepts_harmless_edits_and_cancellation(client, dispatcher, db_session, held_shutoff):
    """A held order may still get notes and be cancelled (which lifts a review hold); it may not be scheduled."""
    code, order = held_shutoff
    headers = {**dispatcher, "If-Match": etag(client, order, dispatcher)}
    assert (
        client.patch(f"/api/orders/{order.id}", json={"notes": "call first"}, headers=headers).status_code
        == 200
    )
    scheduled = client.post(
        f"/api/orders/{order.id}/transitions", json={"to": "scheduled"}, headers=dispatcher
    )
    assert scheduled.status_code == 409 and scheduled.json()["error"]["code"] == code
    cancelled = client.post(
        f"/api/orders/{order.id}/transitions", json={"to": "cancelled", "reason": "paid"}, headers=dispatcher
    )
    assert cancelled.status_code == 200
    db_session.refresh(order)
    assert order.status == "cancelled" and order.review_hold == ""


def test_medical_hold_counts_only_on_its_days(db_session, make_order):
    """An account hold holds a shut-off on the days it runs, and never holds a reread."""
    cut = make_order(OrderStatus.NEW, order_type="shut_off_nonpay")
    medical_hold(db_session, cut, start=dt.date(2026, 12, 1), end=dt.date(2026, 12, 10))
    assert lifecycle.hold_of(db_session=db_session, order=cut, on=dt.date(2026, 11, 30)) is None
    hold = lifecycle.hold_of(db_session=db_session, order=cut, on=DAY)
    assert hold is not None and hold.code == "on_hold" and "until 2026-12-10" in hold.reason
    assert lifecycle.hold_of(db_session=db_session, order=cut, on=dt.date(2026, 12, 11)) is None
    reread = make_order(OrderStatus.NEW, account=None)
    medical_hold(db_session, reread)
    assert lifecycle.hold_of(db_session=db_session, order=reread, on=DAY) is None


@pytest.mark.parametrize(
    ("status", "patch", "code"),
    [
        (OrderStatus.ON_SITE, {"technician_id": "OTHER"}, "illegal_edit"),
        (OrderStatus.EN_ROUTE, {"scheduled_date": "2026-12-09"}, "illegal_edit"),
        (OrderStatus.DISPATCHED, {"technician_id": None}, "illegal_edit"),
        (OrderStatus.UNABLE_TO_COMPLETE, {"locked": True}, "illegal_edit"),
        (OrderStatus.COMPLETED, {"notes": "late note"}, "order_closed"),
        (OrderStatus.CANCELLED, {"priority": "emergency"}, "order_closed"),
    ],
    ids=[
        "reassign-on-site",
        "reschedule-en-route",
        "unassign-dispatched",
        "lock-unable",
        "completed",
        "cancelled",
    ],
)
def test_edits_only_legal_in_some_states(
    client, dispatcher, db_session, make_order, tech, make_technician, status, patch, code
):
    """Technician, lock and date edits are for work not yet in the field; a closed order takes no edit."""
    other = make_technician(skills=["read"])
    order = make_order(status, technician_id=tech.id)
    body = {k: (other.id if v == "OTHER" else v) for k, v in patch.items()}
    resp = client.patch(
        f"/api/orders/{order.id}",
        json=body,
        headers={**dispatcher, "If-Match": etag(client, order, dispatcher)},
    )
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == code and f"it is {status.value}" in resp.json()["error"]["message"]


def test_reassigning_a_dispatched_order_is_an_audited_edit(
    client, dispatcher, db_session, make_order, tech, make_technician
):
    """A dispatcher may give a dispatched order to another CSFR; the edit is audited with via=api."""
    other = make_technician(skills=["read"])
    order = make_order(OrderStatus.DISPATCHED, technician_id=tech.id)
    resp = client.patch(
        f"/api/orders/{order.id}",
        json={"technician_id": other.id},
        headers={**dispatcher, "If-Match": etag(client, order, dispatcher)},
    )
    assert resp.status_code == 200
    (event,) = events(db_session, order)
    assert event.action == "updated" and event.detail == {"technician_id": other.id, "via": "api"}


# --- every writer, in the same transaction ------------------------------------------------------------


def _api_writer(db_session, order, tech):
    from server.auth.service import Principal
    from server.orders import service as orders
    from server.orders.schemas import OrderTransition

    orders.transition(
        db_session=db_session,
        order=order,
        body=OrderTransition(to=OrderStatus.EN_ROUTE),
        principal=Principal(name="disp", role=Role.DISPATCHER),
    )
    return OrderStatus.EN_ROUTE


def _dispatch_writer(db_session, order, tech):
    plan = DispatchPlan(
        plan_date=DAY,
        routes=[
            {
                "technician_id": tech.id,
                "visits": [{"order_id": order.id, "sequence": 1, "arrival_at": "2026-12-02T17:00:00+00:00"}],
            }
        ],
        unassigned=[],
        order_versions={str(order.id): order.version},
    )
    db_session.add(plan)
    db_session.flush()
    dispatch.publish(db_session=db_session, plan=plan, actor="disp")
    return OrderStatus.DISPATCHED


def _sync_writer(db_session, order, tech):
    doc = {
        "_id": f"result:{order.id}:r1",
        "doc_type": "result",
        "result_id": "r1",
        "order_id": str(order.id),
        "outcome": "unable_to_complete",
        "unable_code": "locked_gate",
        "csfr_id": tech.code,
        "device_id": "tab-1",
        "completed_at": "2026-12-02T17:00:00Z",
    }
    outcome = sync._ingest_result(db_session, doc["_id"], doc, tech, f"sync:{sync.database_for(tech)}")
    assert outcome == f"order {order.id} unable_to_complete"
    return OrderStatus.NEW  # unable to complete, then back to dispatch: two audited moves


def _generation_writer(db_session, order, tech):
    assert generation.cancel(db_session, order.id, reason="pulled: paid", actor="system:pull")
    return OrderStatus.CANCELLED


# writer -> (the status it starts from, whether the order starts with the technician, the writer)
WRITERS = {
    "api": (OrderStatus.DISPATCHED, True, _api_writer),
    "dispatch": (OrderStatus.NEW, False, _dispatch_writer),
    "sync": (OrderStatus.DISPATCHED, True, _sync_writer),
    "generation": (OrderStatus.DISPATCHED, True, _generation_writer),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_every_writer_audits_in_the_same_transaction(db_session, make_order, tech, writer):
    """Each writer's status change and its audit event (with `via`) land together; a rollback leaves neither."""
    start, with_tech, write = WRITERS[writer]
    order = make_order(start, technician_id=tech.id if with_tech else None)
    attempt = db_session.begin_nested()
    target = write(db_session, order, tech)
    db_session.flush()
    assert order.status == target.value
    assert [e.detail["via"] for e in events(db_session, order)] != []
    attempt.rollback()
    db_session.expire_all()
    assert db_session.get(WorkOrder, order.id).status == start.value
    assert events(db_session, order) == []
    with db_session.begin_nested():
        write(db_session, order, tech)
    db_session.expire_all()
    order = db_session.get(WorkOrder, order.id)
    moves = [e for e in events(db_session, order) if e.action == "transition"]
    assert order.status == target.value
    assert moves and moves[-1].detail["to"] == target.value
    assert {e.detail["via"] for e in moves} == {writer}


# --- dispatch --------------------------------------------------------------------------------------


def _plan_for(db_session, orders_by_tech, unassigned=()):
    plan = DispatchPlan(
        plan_date=DAY,
        routes=[
            {
                "technician_id": tech_id,
                "visits": [
                    {"order_id": o.id, "sequence": i + 1, "arrival_at": f"2026-12-02T{16 + i}:00:00+00:00"}
                    for i, o in enumerate(orders)
                ],
            }
            for tech_id, orders in orders_by_tech.items()
        ],
        unassigned=[{"order_id": o.id, "reason": "day_full"} for o in unassigned],
        order_versions={str(o.id): o.version for os_ in orders_by_tech.values() for o in os_}
        | {str(o.id): o.version for o in unassigned},
    )
    db_session.add(plan)
    db_session.flush()
    return plan


def test_publish_moves_orders_through_the_lifecycle(db_session, make_order, tech):
    """Publishing walks new -> assigned -> dispatched with audit events via=dispatch; an unplaced order goes back to new."""
    fresh = make_order(OrderStatus.NEW, scheduled_date=DAY)
    dropped = make_order(OrderStatus.DISPATCHED, technician_id=tech.id, route_sequence=4, scheduled_date=DAY)
    plan = _plan_for(db_session, {tech.id: [fresh]}, unassigned=[dropped])
    out = dispatch.publish(db_session=db_session, plan=plan, actor="disp")
    assert out["dispatched"] == 1
    assert fresh.status == "dispatched" and fresh.technician_id == tech.id and fresh.route_sequence == 1
    assert [(e.detail["from"], e.detail["to"], e.detail["via"]) for e in events(db_session, fresh)] == [
        ("new", "assigned", "dispatch"),
        ("assigned", "dispatched", "dispatch"),
    ]
    assert dropped.status == "new" and dropped.technician_id is None and dropped.route_sequence is None
    (back,) = events(db_session, dropped)
    assert back.detail["to"] == "new" and "not planned for 2026-12-02: day_full" in back.detail["reason"]


def test_publish_refuses_an_order_held_since_the_plan(db_session, make_order, tech):
    """A medical hold that arrived after planning makes publishing 409 `on_hold`, and nothing is applied."""
    fine = make_order(OrderStatus.NEW, scheduled_date=DAY)
    cut = make_order(OrderStatus.NEW, order_type="shut_off_nonpay", scheduled_date=DAY)
    plan = _plan_for(db_session, {tech.id: [fine, cut]})
    medical_hold(db_session, cut)
    with pytest.raises(LifecycleError) as refused, db_session.begin_nested():
        dispatch.publish(db_session=db_session, plan=plan, actor="disp")
    assert refused.value.status == 409 and refused.value.code == "on_hold"
    assert f"order {cut.id}: cannot be dispatched for 2026-12-02" in refused.value.message
    db_session.expire_all()
    assert db_session.get(WorkOrder, fine.id).status == "new" and plan.status == "draft"


def test_publish_api_answers_409_with_the_hold(client, dispatcher, db_session, make_order, tech):
    """POST /api/dispatch/plans/{id}/publish with a held order is 409 naming the order and the hold."""
    cut = make_order(OrderStatus.NEW, order_type="shut_off_nonpay", scheduled_date=DAY)
    plan = _plan_for(db_session, {tech.id: [cut]})
    medical_hold(db_session, cut)
    resp = client.post(
        f"/api/dispatch/plans/{plan.id}/publish", headers={**dispatcher, "If-Match": f'"{plan.version}"'}
    )
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "on_hold" and f"order {cut.id}" in error["message"]
    assert "medical certificate hold" in error["message"]
    db_session.expire_all()
    assert db_session.get(WorkOrder, cut.id).status == "new"


def test_planning_leaves_held_shutoffs_out_with_the_reason(db_session, make_order, tech):
    """The day's problem skips a shut-off whose account is on hold that day, reason `on_hold`."""
    cut = make_order(OrderStatus.NEW, order_type="shut_off_nonpay", scheduled_date=DAY)
    free = make_order(OrderStatus.NEW, order_type="shut_off_nonpay", scheduled_date=DAY)
    medical_hold(db_session, cut)
    day = build(db_session=db_session, plan_date=DAY, zone=ZONE)
    assert str(cut.id) not in day.orders and str(free.id) in day.orders
    assert {"order_id": cut.id, "reason": "on_hold"}.items() <= next(
        s for s in day.skipped if s["order_id"] == cut.id
    ).items()


# --- generation and review --------------------------------------------------------------------------


def test_generation_cancel_says_why_it_could_not(db_session, make_order):
    """A pull of an order already completed changes nothing and returns the lifecycle's reason."""
    done = make_order(OrderStatus.COMPLETED, order_type="shut_off_nonpay")
    why = generation.refusal(db_session, done.id, reason="pulled: paid", actor="system:pull")
    assert why is not None and "a closed order cannot move to cancelled" in why
    assert done.status == "completed" and events(db_session, done) == []


def test_batch_approval_releases_holds_through_the_lifecycle(db_session, make_order):
    """Approving a batch lifts each review hold with an audit event via=review; then the order can be planned."""
    from server.accounts.models import Balance
    from server.orders.policy import current_policy

    batch = ShutoffBatch(service_date=DAY)
    db_session.add(batch)
    db_session.flush()
    cut = make_order(
        OrderStatus.NEW,
        order_type="shut_off_nonpay",
        scheduled_date=DAY,
        review_hold=f"awaiting review in shut-off batch {batch.id}",
        batch_id=batch.id,
    )
    db_session.add(
        Balance(
            account_id=cut.account_id,
            balance_cents=50_000,
            past_due_cents=50_000,
            oldest_past_due_date=DAY - dt.timedelta(days=90),
            as_of=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        )
    )
    db_session.flush()
    out = review.approve_batch(
        db_session, batch, exclude=[], note="ok", actor="sup", policy=current_policy(), today=DAY
    )
    assert out["released"] == [cut.id] and cut.review_hold == ""
    (event,) = events(db_session, cut)
    assert event.action == "released" and event.detail["via"] == "review" and event.actor == "sup"
    assert "approved by sup: ok" in event.detail["reason"]
    assert lifecycle.hold_of(db_session=db_session, order=cut, on=DAY) is None


# --- sync, against a real pouchdb-server --------------------------------------------------------------


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


SECRET = "test-secret-key-that-is-long-enough-for-hs256"


def _tablet_put(couch: CouchConfig, tech, doc: dict) -> None:
    db = sync.database_for(tech)
    with httpx.Client(
        base_url=f"{couch.url}/{db}", auth=(db, sync.couch_password(db, SECRET)), timeout=10
    ) as tablet:
        assert tablet.put(f"/{doc['_id']}", json=doc).status_code == 201


@pytest.mark.couchdb
def test_sync_moves_through_the_lifecycle_and_records_refusals(admin, couch, db_session, make_order, tech):
    """Tablet results move orders via=sync (unable -> back to dispatch as its own audited step); a move the
    lifecycle refuses (en route to a held shut-off, a result for an order taken back) is recorded with its reason."""
    service_db = sync.provision(admin=admin, tech=tech, secret=SECRET)
    failed = make_order(OrderStatus.DISPATCHED, technician_id=tech.id, locked=True, route_sequence=1)
    held = make_order(OrderStatus.DISPATCHED, order_type="shut_off_nonpay", technician_id=tech.id)
    medical_hold(db_session, held)
    base = {"csfr_id": tech.code, "device_id": "tab-1"}
    unable = {
        "_id": f"result:{failed.id}:u1",
        "doc_type": "result",
        "result_id": "u1",
        "order_id": str(failed.id),
        "outcome": "unable_to_complete",
        "unable_code": "dog",
        "notes": "large dog loose",
        "completed_at": "2026-12-02T17:00:00Z",
        **base,
    }
    on_way = {
        "_id": f"event:{uuid.uuid4().hex}",
        "doc_type": "event",
        "event_id": "e1",
        "order_id": str(held.id),
        "kind": "en_route",
        "at": "2026-12-02T16:00:00Z",
        **base,
    }
    _tablet_put(couch, tech, unable)
    _tablet_put(couch, tech, on_way)
    sync.follow(db_session=db_session, admin=admin, techs=[tech])
    db_session.refresh(failed)
    db_session.refresh(held)
    assert failed.status == "new" and failed.technician_id is None and not failed.locked
    assert "dog" in failed.status_reason and failed.outcome["unable_code"] == "dog"
    assert [(e.detail["from"], e.detail["to"], e.detail["via"]) for e in events(db_session, failed)] == [
        ("dispatched", "unable_to_complete", "sync"),
        ("unable_to_complete", "new", "sync"),
    ]
    assert held.status == "dispatched" and events(db_session, held) == []
    from server.sync.models import FieldResult

    ignored = db_session.get(FieldResult, on_way["_id"]).outcome
    assert ignored.startswith("ignored: cannot be en_route: it is held") and "medical certificate" in ignored
    # A second result for the order now back in dispatch cannot move it: kept, with the lifecycle's reason.
    late = {**unable, "_id": f"result:{failed.id}:u2", "result_id": "u2", "unable_code": "locked_gate"}
    failed.technician_id = tech.id  # arrange: still on this tablet's list
    db_session.flush()
    version = failed.version
    _tablet_put(couch, tech, late)
    sync.follow(db_session=db_session, admin=admin, techs=[tech])
    kept = db_session.get(FieldResult, late["_id"]).outcome
    assert kept.startswith("kept: cannot move an order from new to unable_to_complete")
    db_session.refresh(failed)
    assert failed.status == "new" and failed.version == version and len(events(db_session, failed)) == 2
    assert service_db == sync.database_for(tech)
