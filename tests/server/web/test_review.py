"""The advisor's review pages and the supervisor's desk through the page routes (TestClient, SQLite and
PostgreSQL): who may open them, CSRF on decisions, decisions and approvals made through the same service
functions as the API (and seen by the API), refusals shown in the page, the graph's series."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest
from sqlalchemy import select

from contracts.codes import Role
from server.accounts.models import Account, Balance
from server.adjustments.models import Adjustment
from server.meters.models import Meter, MeterRead
from server.orders import review
from server.orders.models import ShutoffBatch, ShutoffExclusion, WorkOrder
from server.web.templates import dollars
from tests.server.results.conftest import (  # noqa: F401 - fixtures shared with the results tests
    field_order,
    ingest,
    make_bill,
    reading,
    result_doc,
    tech,
)

GRAPH = re.compile(r'<script type="application/json" id="graph-data">(.*?)</script>', re.S)


@pytest.fixture
def unable_item(field_order, tech, ingest):  # noqa: F811
    """A reread the CSFR could not do (dog): its review item open."""
    order = field_order("reread")
    _, result, item = ingest(
        result_doc(order, tech, "unable_to_complete", unable_code="dog", fields={"form": "unable"})
    )
    return order, result, item


@pytest.fixture
def correction(db_session, field_order, tech, ingest, make_bill):  # noqa: F811
    """A reread correcting a billed read (2,000 -> 1,500 gal) after a year of monthly reads (one estimated,
    one flagged): its item recommends a re-rated credit."""
    order = field_order("reread", key="placeholder")
    for month in range(1, 10):  # 2026-01 .. 2026-09, before the fixture's 1 Oct read at 1,000
        db_session.add(
            MeterRead(
                meter_id=order.meter_id,
                read_at=dt.datetime(2026, month, 1, 17, tzinfo=dt.UTC),
                reading=100.0 * month,
                source="estimate" if month == 4 else "cis",
                estimated=month == 4,
                validation="high" if month == 6 else "",
            )
        )
    read = MeterRead(meter_id=order.meter_id, read_at=dt.datetime(2026, 11, 1, 17, tzinfo=dt.UTC),
                     reading=2000.0, source="cis")  # fmt: skip
    db_session.add(read)
    db_session.flush()
    from server.meters.derive import derive_pending
    from server.orders.policy import current_policy

    derive_pending(db_session, current_policy())
    order.idempotency_key = f"reread:read:{read.id}"
    account, meter = db_session.get(Account, order.account_id), db_session.get(Meter, order.meter_id)
    make_bill(account, meter, start=dt.date(2026, 10, 1), end=dt.date(2026, 11, 1), start_reading=1000.0,
              end_reading=2000.0, lines={"fixed": 1850, "tier_1": 533})  # fmt: skip
    _, result, item = ingest(result_doc(order, tech, fields={"form": "reread"},
                                        readings=[reading(order, 1500.0, "2026-11-02T17:00:00Z")]))  # fmt: skip
    assert item.action == "adjust" and item.amount_cents < 0, item.summary
    return order, result, item


@pytest.mark.parametrize("role", [Role.DISPATCHER, Role.CSFR])
def test_dispatchers_and_csfrs_may_not_open_the_advisor_pages(browser, unable_item, role):
    """A dispatcher or a CSFR gets the 403 page on the queue, an item, a decision and the desk."""
    _, _, item = unable_item
    person = browser(role)
    for url in ("/review", f"/review/{item.id}", "/supervisor"):
        page = person.client.get(url, follow_redirects=False)
        assert page.status_code == 403 and "may not open this" in page.text, url
    decided = person.post(f"/review/{item.id}/decide", data={"decision": "dismiss", "reason": "x"})
    assert decided.status_code == 403


def test_an_advisor_may_not_open_the_supervisors_desk(browser):
    """The desk is for supervisors and admins: an advisor gets the 403 page naming who may."""
    page = browser(Role.ADVISOR).client.get("/supervisor")
    assert page.status_code == 403 and "admin, supervisor" in page.text


@pytest.mark.parametrize(
    ("role", "home"),
    [(Role.ADVISOR, "/review"), (Role.SUPERVISOR, "/supervisor"), (Role.DISPATCHER, "/board")],
)
def test_each_office_role_lands_on_its_own_page_after_signing_in(browser, role, home):
    """`/` sends an advisor to the review queue, a supervisor to the desk, a dispatcher to the board."""
    response = browser(role).client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == home


def test_the_queue_lists_filters_and_pages_open_items(browser, unable_item, field_order, tech, ingest):  # noqa: F811
    """The queue shows open items (from `results.service.queue`), filters by kind, and names a bad filter."""
    _, _, other = ingest(
        result_doc(field_order("notice_delivery"), tech, fields={"form": "service", "door_hanger_left": True})
    )
    advisor = browser(Role.ADVISOR)
    _, _, item = unable_item
    page = advisor.client.get("/review")
    assert page.status_code == 200 and f'href="/review/{item.id}"' in page.text
    only = advisor.client.get("/review", params={"kind": "unable"})
    assert f'href="/review/{item.id}"' in only.text and f'href="/review/{other.id}"' not in only.text
    assert "Nothing waiting here." in advisor.client.get("/review", params={"min_amount": "1"}).text
    bad = advisor.client.get("/review", params={"min_amount": "lots"})
    assert bad.status_code == 422 and "min amount: &#39;lots&#39; is not an amount in dollars" in bad.text
    fragment = advisor.client.get("/review", params={"kind": "unable"}, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and f'href="/review/{item.id}"' in fragment.text


def test_the_item_page_draws_the_graph_and_the_working(browser, db_session, correction):
    """The graph carries every on-chain read with use, estimated and flagged apart, the read in question
    marked; the working's cent steps are shown in dollars; the bills before and after are listed."""
    order, result, item = correction
    page = browser(Role.ADVISOR).client.get(f"/review/{item.id}")
    assert page.status_code == 200, page.text
    graph = json.loads(GRAPH.search(page.text).group(1))
    april, june = (
        db_session.scalar(select(MeterRead.id).where(MeterRead.meter_id == order.meter_id,
                                                     MeterRead.read_at == dt.datetime(2026, m, 1, 17, tzinfo=dt.UTC)))
        for m in (4, 6)
    )  # fmt: skip
    assert [p["read_id"] for p in graph["estimated"]] == [april]
    assert june in [p["read_id"] for p in graph["flagged"]]
    # Every billed interval once: Feb..Sep, 1 Oct, and the reread's 2 Nov (the superseded 1 Nov is not one).
    assert len(graph["actual"]) + len(graph["estimated"]) + len(graph["flagged"]) == 10
    # Marked: the reread and the read it corrected (shown only as a mark).
    corrected = result.data["reads"]["corrected_read_ids"]
    assert corrected
    assert {p["read_id"] for p in graph["in_question"]} == {*result.read_ids, *corrected}
    assert not {p["read_id"] for p in graph["actual"] + graph["flagged"]} & set(corrected)
    assert f"{dollars(item.amount_cents)} (credit)" in page.text
    rerating = item.working["bills"][0]["rerating"]
    assert "Bills before and after re-rating" in page.text
    assert dollars(rerating["before"]["total_cents"]) in page.text
    assert dollars(rerating["after"]["total_cents"]) in page.text
    # Cent steps of the working in dollars, not as raw cents.
    assert f'<td class="num">{dollars(item.amount_cents)}</td>' in page.text


def test_a_decision_needs_the_csrf_token(browser, unable_item):
    """A decision posted without the session's CSRF token is refused (403) and nothing is decided."""
    _, _, item = unable_item
    advisor = browser(Role.ADVISOR)
    refused = advisor.client.post(
        f"/review/{item.id}/decide", data={"decision": "dismiss", "reason": "moved"}
    )
    assert refused.status_code == 403 and "reload the page" in refused.text
    assert item.status == "open"


def test_a_decision_made_in_the_page_shows_in_the_api(browser, login, client, unable_item):
    """Dismissing through the page (with CSRF) closes the item as the API reports it, with the reason."""
    _, _, item = unable_item
    advisor = browser(Role.ADVISOR)
    done = advisor.client.post(
        f"/review/{item.id}/decide",
        data={"decision": "dismiss", "reason": "customer moved out", "csrf_token": advisor.csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/review/{item.id}?decided=1"
    api = client.get(f"/api/review/items/{item.id}", headers=login(Role.SUPERVISOR)).json()
    assert (api["status"], api["decision_reason"], api["decided_by"]) == (
        "dismissed",
        "customer moved out",
        advisor.username,
    )
    shown = advisor.client.get(done.headers["location"])
    assert "Decided: dismissed" in shown.text


def test_a_refused_decision_is_shown_in_the_page_not_a_500(browser, unable_item):
    """Dismissing without a reason, or deciding a closed item, comes back as the service's message."""
    _, _, item = unable_item
    advisor = browser(Role.ADVISOR)
    no_reason = advisor.post(f"/review/{item.id}/decide", data={"decision": "dismiss", "reason": " "})
    assert no_reason.status_code == 422 and "reason: required to dismiss" in no_reason.text
    advisor.post(f"/review/{item.id}/decide", data={"decision": "dismiss", "reason": "moved"})
    again = advisor.post(f"/review/{item.id}/decide", data={"decision": "dismiss", "reason": "moved"})
    assert again.status_code == 409 and "only an open item can be decided" in again.text
    bad_amount = advisor.post(f"/review/{item.id}/decide", data={"decision": "change", "amount": "1.234"})
    assert bad_amount.status_code in (409, 422) and "amount" in bad_amount.text


def test_accepting_proposes_and_the_page_says_who_must_approve(browser, db_session, correction):
    """Accept proposes the adjustment (not approved); the page names who may approve it, never its proposer;
    the advisor's own approval on the desk is refused by the workflow, a supervisor's goes through."""
    _, _, item = correction
    advisor = browser(Role.ADVISOR)
    advisor.post(f"/review/{item.id}/decide", data={"decision": "accept"})
    page = advisor.client.get(f"/review/{item.id}")
    adj = db_session.scalar(select(Adjustment).where(Adjustment.id == item.adjustment_id))
    assert adj is not None and adj.status == "proposed" and adj.proposed_by == advisor.username
    assert (
        f"waits for approval by an advisor or a supervisor or an admin other than {advisor.username}"
        in page.text
    )

    supervisor = browser(Role.SUPERVISOR)
    desk = supervisor.client.get("/supervisor")
    assert f'action="/supervisor/adjustments/{adj.id}/approve"' in desk.text
    approved = supervisor.post(
        f"/supervisor/adjustments/{adj.id}/approve", data={"version": adj.version}, follow_redirects=False
    )
    assert approved.status_code == 303, approved.text
    db_session.refresh(adj)
    assert adj.status == "approved" and adj.decided_by == supervisor.username


def test_the_desk_refuses_an_approval_above_authority_in_the_page(browser, db_session, correction):
    """A supervisor who proposed an adjustment may not approve it: the desk shows the workflow's reason and a
    forced post gets it back as a 403 page, not a 500."""
    _, _, item = correction
    supervisor = browser(Role.SUPERVISOR)
    supervisor.post(f"/review/{item.id}/decide", data={"decision": "change", "amount": "-600.00",
                                                        "reason": "goodwill"})  # fmt: skip
    db_session.refresh(item)
    desk = supervisor.client.get("/supervisor")
    assert "nobody approves an adjustment they changed" in desk.text or "they proposed" in desk.text
    forced = supervisor.post(f"/supervisor/adjustments/{item.adjustment_id}/approve", data={})
    assert forced.status_code == 403 and "nobody approves an adjustment" in forced.text


@pytest.fixture
def batch(db_session, make_account):
    """Today's shut-off list with two accounts past due, awaiting review."""
    day = review.local_today()
    batch = ShutoffBatch(service_date=day)
    db_session.add(batch)
    db_session.flush()
    orders = []
    for _ in range(2):
        account = make_account()
        db_session.add(Balance(account_id=account.id, balance_cents=50_000, past_due_cents=50_000,
                               oldest_past_due_date=day - dt.timedelta(days=90),
                               as_of=dt.datetime.now(dt.UTC)))  # fmt: skip
        order = WorkOrder(
            order_type="shut_off_nonpay",
            priority="shut_off",
            account_id=account.id,
            service_point_id=account.service_point_id,
            status="new",
            scheduled_date=day,
            review_hold=f"awaiting review in shut-off batch {batch.id}",
            batch_id=batch.id,
            idempotency_key=f"web-batch-{uuid.uuid4().hex}",
        )
        db_session.add(order)
        orders.append(order)
    db_session.flush()
    return batch, orders


def test_the_desk_approves_the_list_with_a_per_account_exclusion_and_lifts_it(browser, db_session, batch):
    """Approving with one account ticked (note, days) releases the other and keeps that one off; the
    exclusion is listed in force and lifting it ends it."""
    shutoffs, (kept, released) = batch
    supervisor = browser(Role.SUPERVISOR)
    desk = supervisor.client.get("/supervisor")
    assert f"List {shutoffs.id} for" in desk.text
    missing_note = supervisor.post(
        f"/supervisor/batches/{shutoffs.id}/approve",
        data={
            "exclude": [kept.account_id],
            "account_id": [kept.account_id, released.account_id],
            "exclude_note": ["", ""],
            "exclude_days": ["", ""],
        },
    )
    assert missing_note.status_code == 422 and "note" in missing_note.text
    assert shutoffs.status == "proposed"
    done = supervisor.post(
        f"/supervisor/batches/{shutoffs.id}/approve",
        data={
            "exclude": [kept.account_id],
            "account_id": [kept.account_id, released.account_id],
            "exclude_note": ["paying Monday, spoke to J. Ruiz", ""],
            "exclude_days": ["5", ""],
            "note": "checked",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    db_session.refresh(shutoffs)
    assert shutoffs.status == "approved"
    ex = db_session.scalar(select(ShutoffExclusion).where(ShutoffExclusion.account_id == kept.account_id))
    assert ex is not None and ex.note == "paying Monday, spoke to J. Ruiz"
    assert (
        ex.until_date == review.local_today() + dt.timedelta(days=5) or ex.until_date > review.local_today()
    )
    desk = supervisor.client.get("/supervisor")
    assert "paying Monday, spoke to J. Ruiz" in desk.text
    lifted = supervisor.post(
        f"/supervisor/exclusions/{ex.id}/lift", data={"note": "did not pay"}, follow_redirects=False
    )
    assert lifted.status_code == 303
    db_session.refresh(ex)
    assert ex.lifted_by == supervisor.username
    twice = supervisor.post(f"/supervisor/exclusions/{ex.id}/lift", data={"note": "again"})
    assert twice.status_code == 409 and "was lifted by" in twice.text
