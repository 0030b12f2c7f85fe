"""The review API: who may read and decide, the queue's filters, one item in full, decisions (audited),
the field payment plan pulling the pending shut-off, account history, and 422s naming the field."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from contracts.codes import Role
from server.accounts.models import PaymentArrangement
from server.audit.models import AuditEvent
from server.auth.service import create_api_token
from server.orders.models import WorkOrder
from tests.server.results.conftest import reading, result_doc
from tests.server.results.test_record import ARRANGEMENT


@pytest.fixture
def unable_item(field_order, tech, ingest):
    """A reread the CSFR could not do (dog): back at dispatch, its review item open."""
    order = field_order("reread")
    _, result, item = ingest(
        result_doc(order, tech, "unable_to_complete", unable_code="dog", fields={"form": "unable"})
    )
    return order, result, item


@pytest.mark.parametrize(
    ("role", "read_status", "decide_status"),
    [
        (Role.ADVISOR, 200, 200),
        (Role.SUPERVISOR, 200, 200),
        (Role.ADMIN, 200, 200),
        (Role.DISPATCHER, 200, 403),
        (Role.CSFR, 403, 403),
    ],
)
def test_who_may_read_the_queue_and_decide(client, login, unable_item, role, read_status, decide_status):
    """Advisors, supervisors and admins read and decide; a dispatcher reads only; a CSFR neither."""
    _, _, item = unable_item
    headers = login(role)
    assert client.get("/api/review/items", headers=headers).status_code == read_status
    assert client.get(f"/api/review/items/{item.id}", headers=headers).status_code == read_status
    resp = client.post(f"/api/review/items/{item.id}/decisions", headers=headers,
                       json={"decision": "dismiss", "reason": "customer moved out"})  # fmt: skip
    assert resp.status_code == decide_status, resp.text


def test_a_station_token_is_refused_everything(client, db_session, unable_item, station_headers):
    """A docking station's token gets 403 from the queue, decisions, account history and the CIS feed."""
    order, _, item = unable_item
    assert client.get("/api/review/items", headers=station_headers).status_code == 403
    decided = client.post(
        f"/api/review/items/{item.id}/decisions", headers=station_headers, json={"decision": "accept"}
    )
    assert decided.status_code == 403
    assert client.get(f"/api/accounts/{order.account_id}/history", headers=station_headers).status_code == 403
    assert client.get("/api/cis/export", headers=station_headers).status_code == 403


def test_the_queue_filters_by_kind_status_route_amount_and_age(
    client, login, unable_item, field_order, tech, ingest
):
    """Filters narrow the queue; items list oldest first with their account and route; paging counts all."""
    ingest(
        result_doc(field_order("notice_delivery"), tech, fields={"form": "service", "door_hanger_left": True})
    )
    headers = login(Role.ADVISOR)
    every = client.get("/api/review/items", headers=headers).json()
    assert every["total"] >= 2
    unable = client.get("/api/review/items", headers=headers, params={"kind": "unable"}).json()
    assert {i["kind"] for i in unable["items"]} == {"unable"}
    assert unable["items"][0]["account_id"] == unable_item[0].account_id
    assert (
        client.get("/api/review/items", headers=headers, params={"min_amount_cents": 1}).json()["total"] == 0
    )
    assert client.get("/api/review/items", headers=headers, params={"min_age_days": 3}).json()["total"] == 0
    assert (
        client.get("/api/review/items", headers=headers, params={"route": "no-such-book"}).json()["total"]
        == 0
    )
    paged = client.get("/api/review/items", headers=headers, params={"page_size": 1}).json()
    assert len(paged["items"]) == 1 and paged["total"] == every["total"]
    assert (
        client.get("/api/review/items", headers=headers, params={"status": "dismissed"}).json()["total"] == 0
    )


def test_one_item_carries_its_result_photos_working_and_history(client, login, field_order, tech, ingest):
    """GET one item: the typed result, its photo list, the recommendation, and the account's reads."""
    order = field_order("reread")
    _, result, item = ingest(result_doc(order, tech, fields={"form": "reread"}, readings=[reading(order, 1100.0)],
                                        photos=[{"attachment": "meter.jpg", "caption": "register"}]))  # fmt: skip
    body = client.get(f"/api/review/items/{item.id}", headers=login(Role.ADVISOR)).json()
    assert body["result"]["id"] == result.id and body["result"]["kind"] == "reread"
    assert body["photos"][0]["caption"] == "register" and body["photos"][0]["available"] is False
    assert body["action"] == "none" and body["summary"]
    assert [r["reading"] for r in body["history"]["reads"]] == [1000.0, 1100.0]
    assert body["history"]["series"]["use"][-1][1] == 100.0


def test_sending_an_unable_visit_back_books_the_appointment_on_the_returned_order(
    client, db_session, login, unable_item
):
    """'dispatch' on a dog visit: the order (already back at dispatch) gets the appointment window and the
    reason through the lifecycle; the item is closed as dispatched; one audit event for the decision."""
    order, _, item = unable_item
    assert order.status == "new"
    window = {"window_start": "2026-12-04T17:00:00Z", "window_end": "2026-12-04T19:00:00Z"}
    resp = client.post(f"/api/review/items/{item.id}/decisions", headers=login(Role.ADVISOR, username="ann"),
                       json={"decision": "dispatch", "reason": "customer will tie the dog up", **window})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "dispatched" and resp.json()["new_order_id"] == order.id
    db_session.refresh(order)
    assert order.window_start == dt.datetime(2026, 12, 4, 17, tzinfo=dt.UTC)
    assert "customer will tie the dog up" in order.notes
    events = db_session.scalars(
        select(AuditEvent).where(
            AuditEvent.entity_type == "review_item", AuditEvent.entity_id == str(item.id)
        )
    ).all()
    assert len(events) == 1 and events[0].actor == "ann" and events[0].detail["before"]["status"] == "open"
    again = client.post(f"/api/review/items/{item.id}/decisions", headers=login(Role.ADVISOR),
                        json={"decision": "dismiss", "reason": "twice"})  # fmt: skip
    assert again.status_code == 409 and "only an open item" in again.json()["error"]["message"]


def test_approving_a_field_payment_plan_pulls_the_pending_shut_off(
    client, db_session, login, field_order, tech, ingest
):
    """The customer offered a plan at the door: the shut-off went back to dispatch; accepting the review
    item makes the arrangement and cancels the shut-off through the lifecycle (audited with the reason)."""
    order = field_order("shut_off_nonpay", priority="shut_off")
    notice = field_order("notice_delivery", priority="shut_off")
    notice.account_id = order.account_id
    _, _, item = ingest(result_doc(order, tech, "unable_to_complete", unable_code="arrangement_offered",
                                   fields=ARRANGEMENT))  # fmt: skip
    assert order.status == "new" and item.action == "arrangement"
    assert item.working["total_cents"] == 15000
    resp = client.post(
        f"/api/review/items/{item.id}/decisions", headers=login(Role.ADVISOR), json={"decision": "accept"}
    )
    assert resp.status_code == 200, resp.text
    arrangement = db_session.get(PaymentArrangement, resp.json()["arrangement_id"])
    assert (arrangement.account_id, arrangement.total_cents, arrangement.down_payment_cents) == (
        order.account_id, 15000, 5000,
    )  # fmt: skip
    assert arrangement.end_date == dt.date(2027, 3, 15)
    for pulled in (order, notice):
        db_session.refresh(pulled)
        assert pulled.status == "cancelled" and "payment arrangement" in pulled.status_reason
    moves = db_session.scalars(
        select(AuditEvent).where(
            AuditEvent.entity_type == "work_order",
            AuditEvent.entity_id == str(order.id),
            AuditEvent.detail["to"].as_string() == "cancelled",
        )
    ).all()
    assert len(moves) == 1 and moves[0].detail["via"] == "review"


def test_without_approval_the_shut_off_stays_at_dispatch(
    client, db_session, login, field_order, tech, ingest
):
    """Dismissing the offered plan leaves the shut-off order open at dispatch and makes no arrangement."""
    order = field_order("shut_off_nonpay", priority="shut_off")
    _, _, item = ingest(result_doc(order, tech, "unable_to_complete", unable_code="arrangement_offered",
                                   fields=ARRANGEMENT))  # fmt: skip
    resp = client.post(f"/api/review/items/{item.id}/decisions", headers=login(Role.SUPERVISOR),
                       json={"decision": "dismiss", "reason": "third plan this year"})  # fmt: skip
    assert resp.status_code == 200 and resp.json()["status"] == "dismissed"
    db_session.refresh(order)
    assert order.status == "new"
    assert (
        db_session.scalars(
            select(PaymentArrangement).where(PaymentArrangement.account_id == order.account_id)
        ).all()
        == []
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "maybe"}, "decision"),
        ({"decision": "dismiss"}, "reason"),
        ({"decision": "change", "reason": "too high"}, "amount_cents"),
        ({"decision": "dispatch", "window_start": "2026-12-04T17:00:00Z"}, "window_start"),
        ({"decision": "accept", "surprise": 1}, "surprise"),
        ({"decision": "change", "reason": "x", "amount_cents": "ten"}, "amount_cents"),
    ],
)
def test_bad_decisions_are_422_naming_the_field(client, login, unable_item, body, field):
    """A decision that cannot be carried out as sent is a 422 whose message names the field; never a 500."""
    _, _, item = unable_item
    resp = client.post(f"/api/review/items/{item.id}/decisions", headers=login(Role.ADVISOR), json=body)
    assert resp.status_code == 422, resp.text
    assert field in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/review/items?min_amount_cents=-1", "min_amount_cents"),
        ("/api/review/items?kind=nonsense", "kind"),
        ("/api/review/items?page=0", "page"),
        ("/api/cis/export?cursor=abc", "cursor"),
        ("/api/cis/export?limit=0", "limit"),
    ],
)
def test_bad_queries_are_422_naming_the_field(client, db_session, path, field):
    """Bad query parameters name themselves in a 422."""
    token = create_api_token(db_session=db_session, name="cis-poller", role=Role.ADMIN)
    resp = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 422, resp.text
    assert field in resp.json()["error"]["message"]


def test_unknown_item_or_account_is_404(client, login):
    """An item or account that does not exist is a 404 naming it."""
    headers = login(Role.ADVISOR)
    assert client.get("/api/review/items/999999", headers=headers).status_code == 404
    assert client.get("/api/accounts/999999/history", headers=headers).status_code == 404


def test_account_history_is_shaped_for_graphs(
    client, db_session, login, field_order, tech, ingest, make_bill
):
    """Reads with their validation oldest first, the use series, bills with their lines, payments; a
    dispatcher may read it."""
    from server.accounts.models import Account, Payment
    from server.meters.models import Meter

    order = field_order("reread")
    account, meter = db_session.get(Account, order.account_id), db_session.get(Meter, order.meter_id)
    make_bill(account, meter, start=dt.date(2026, 9, 1), end=dt.date(2026, 10, 1), start_reading=900.0,
              end_reading=1000.0, lines={"fixed": 1850, "tier_1": 53})  # fmt: skip
    db_session.add(Payment(cis_payment_id="P-1", account_id=account.id, amount_cents=1903,
                           paid_at=dt.datetime(2026, 10, 20, tzinfo=dt.UTC), method="card"))  # fmt: skip
    ingest(result_doc(order, tech, fields={"form": "reread"}, readings=[reading(order, 1100.0)]))
    body = client.get(f"/api/accounts/{order.account_id}/history", headers=login(Role.DISPATCHER)).json()
    assert [r["source"] for r in body["reads"]] == ["cis", "field"]
    assert body["reads"][1]["validation"] and body["reads"][1]["on_chain"] is True
    assert body["series"]["use"] == [["2026-12-02T16:55:00+00:00", 100.0]]
    assert (
        body["bills"][0]["lines"] == {"fixed": 1850, "tier_1": 53} and body["bills"][0]["total_cents"] == 1903
    )
    assert body["series"]["bills_cents"] == [["2026-10-01", 1903]]
    assert body["series"]["payments_cents"] == [["2026-10-20T00:00:00+00:00", 1903]]
    assert db_session.get(WorkOrder, order.id).status == "completed"


@pytest.fixture
def correction(db_session, field_order, tech, ingest, make_bill):
    """A reread correcting a billed read (2,000 -> 1,500 gal): its item recommends a re-rated credit."""
    from server.accounts.models import Account
    from server.meters.models import Meter, MeterRead

    order = field_order("reread", key="placeholder")
    read = MeterRead(meter_id=order.meter_id, read_at=dt.datetime(2026, 11, 1, 17, tzinfo=dt.UTC), reading=2000.0,
                     source="cis")  # fmt: skip
    db_session.add(read)
    db_session.flush()
    order.idempotency_key = f"reread:read:{read.id}"
    account, meter = db_session.get(Account, order.account_id), db_session.get(Meter, order.meter_id)
    make_bill(account, meter, start=dt.date(2026, 10, 1), end=dt.date(2026, 11, 1), start_reading=1000.0,
              end_reading=2000.0, lines={"fixed": 1850, "tier_1": 533})  # fmt: skip
    _, result, item = ingest(result_doc(order, tech, fields={"form": "reread"},
                                        readings=[reading(order, 1500.0, "2026-11-02T17:00:00Z")]))  # fmt: skip
    assert item.action == "adjust" and item.amount_cents < 0
    return result, item


def test_accepting_an_adjustment_proposes_it_through_the_adjustments_workflow(
    client, db_session, login, correction
):
    """Accept: an Adjustment of the recommended kind and amount is proposed (not approved), linked to the
    result; the item records it and is closed as accepted."""
    from server.adjustments.models import Adjustment

    result, item = correction
    resp = client.post(f"/api/review/items/{item.id}/decisions", headers=login(Role.ADVISOR, username="amy"),
                       json={"decision": "accept"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    adj = db_session.get(Adjustment, resp.json()["adjustment_id"])
    assert (adj.kind, adj.status, adj.amount_cents, adj.source_result_id, adj.proposed_by) == (
        "reread_correction", "proposed", item.amount_cents, result.id, "amy",
    )  # fmt: skip
    assert resp.json()["status"] == "accepted"


def test_changing_the_amount_proposes_the_changed_adjustment_with_the_reason(
    client, db_session, login, correction
):
    """Change: the adjustment carries the advisor's amount and reason; the decision's audit event has the
    amount before and after."""
    from server.adjustments.models import Adjustment

    _, item = correction
    recommended = item.amount_cents
    resp = client.post(f"/api/review/items/{item.id}/decisions", headers=login(Role.SUPERVISOR),
                       json={"decision": "change", "amount_cents": -500, "reason": "goodwill cap"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    adj = db_session.get(Adjustment, resp.json()["adjustment_id"])
    assert (adj.amount_cents, adj.status, adj.change_reason) == (-500, "changed", "goodwill cap")
    event = db_session.scalar(
        select(AuditEvent).where(
            AuditEvent.entity_type == "review_item", AuditEvent.entity_id == str(item.id)
        )
    )
    assert event.detail["before"]["amount_cents"] == recommended and event.detail["amount_cents"] == -500


def test_an_actual_read_after_an_estimate_recommends_a_true_up(db_session, field_order, tech, ingest):
    """The read before the tablet's was an estimate: the item names an estimated-read true-up."""
    from server.meters.models import MeterRead

    order = field_order("turn_off", priority="shut_off")
    db_session.add(MeterRead(meter_id=order.meter_id, read_at=dt.datetime(2026, 11, 1, 17, tzinfo=dt.UTC),
                             reading=1040.0, source="estimate", estimated=True))  # fmt: skip
    db_session.flush()
    _, _, item = ingest(result_doc(order, tech, fields={"form": "service", "curb_stop_position": "closed"},
                                   readings=[reading(order, 1100.0)]))  # fmt: skip
    assert item.adjustment_kind == "estimate_true_up", item.summary


def test_account_history_leaves_out_the_previous_occupants_reads(client, db_session, login, field_order):
    """A read of the premise's meter from before the account opened (2020-01-01) is not this customer's."""
    from server.meters.models import MeterRead

    order = field_order("reread")
    db_session.add(MeterRead(meter_id=order.meter_id, read_at=dt.datetime(2019, 12, 1, 18, tzinfo=dt.UTC),
                             reading=400.0, source="cis"))  # fmt: skip
    db_session.flush()
    body = client.get(f"/api/accounts/{order.account_id}/history", headers=login(Role.ADVISOR)).json()
    assert [r["reading"] for r in body["reads"]] == [1000.0]
