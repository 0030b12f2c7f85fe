"""Shut-off review remembers: an exclusion per account, with its own note, holds on later lists until its
days pass, the balance changes or a supervisor lifts it (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contracts.codes import Role
from server.accounts.models import Balance, Payment, ShutoffNotice
from server.audit.models import AuditEvent
from server.errors import ApiError
from server.orders import generation, review
from server.orders.models import ShutoffBatch, ShutoffExclusion, WorkOrder
from server.orders.policy import load_policy
from server.orders.rules.base import Rule
from server.orders.rules.exclusion import ExclusionFacts, Receivable, ended_because
from server.orders.schemas import ExclusionRequest

ZONE = ZoneInfo("America/Los_Angeles")
POLICY = load_policy()
TUE = dt.date(2026, 11, 17)
WED = TUE + dt.timedelta(days=1)
THU = TUE + dt.timedelta(days=2)
MON = TUE + dt.timedelta(days=6)  # Fri-Sun take no shut-offs


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=ZONE)


@pytest.fixture
def delinquent(db_session, make_account, make_meter):
    """Factory: an account $120 past due for 75 days with written and final notices served."""

    def make():
        account = make_account()
        make_meter(service_point_id=account.service_point_id)
        db_session.add(
            Balance(
                account_id=account.id,
                balance_cents=15_000,
                past_due_cents=12_000,
                oldest_past_due_date=TUE - dt.timedelta(days=75),
                as_of=at(TUE - dt.timedelta(days=1), 6),
            )
        )
        for kind, days in (("written", 14), ("final", 3)):
            db_session.add(
                ShutoffNotice(
                    cis_notice_id=f"{kind}{account.id}",
                    account_id=account.id,
                    kind=kind,
                    served_at=at(TUE - dt.timedelta(days=days)),
                )
            )
        db_session.flush()
        return account

    return make


def run(db_session, day):
    result = generation.run(
        db_session, policy=POLICY, run_date=day, zone=ZONE, rules=[Rule.SHUTOFF], actor="t"
    )
    db_session.flush()
    return result


def cuts(db_session, account):
    return db_session.scalars(
        select(WorkOrder).where(WorkOrder.account_id == account.id).order_by(WorkOrder.id)
    ).all()


@pytest.fixture
def excluded(db_session, delinquent):
    """Tuesday's list holds A and B; the supervisor takes A off for 2 days ("paying Thursday")."""
    a, b = delinquent(), delinquent()
    first = run(db_session, TUE)
    batch = db_session.get(ShutoffBatch, first.batch_id)
    out = review.approve_batch(
        db_session,
        batch,
        exclude=[ExclusionRequest(account_id=a.id, note="paying Thursday, spoke to the tenant", days=2)],
        note="list checked",
        actor="sup",
        policy=POLICY,
        today=TUE,
    )
    (cut_a,) = cuts(db_session, a)
    (cut_b,) = cuts(db_session, b)
    assert out["excluded"] == [cut_a.id] and out["released"] == [cut_b.id]
    assert cut_a.status == "cancelled" and "paying Thursday" in cut_a.status_reason
    return a, b, batch


def test_an_exclusion_holds_on_the_next_days_list(db_session, excluded):
    """The next day's run does not raise A again: the list shows A as excluded, with note, who and until."""
    a, _b, first = excluded
    ex = db_session.scalar(select(ShutoffExclusion).where(ShutoffExclusion.account_id == a.id))
    assert (
        ex.until_date == THU and ex.note == "paying Thursday, spoke to the tenant" and ex.excluded_by == "sup"
    )
    event = db_session.scalar(
        select(AuditEvent).where(
            AuditEvent.entity_type == "shutoff_exclusion", AuditEvent.entity_id == str(ex.id)
        )
    )
    assert event.action == "excluded" and event.detail["until"] == THU.isoformat()
    second = run(db_session, WED)
    assert len(cuts(db_session, a)) == 1  # nothing new
    assert second.counts["shutoff"] == {"excluded": 1}
    batch = db_session.get(ShutoffBatch, second.batch_id)
    assert review.batch_orders(db_session, batch.id) == []
    (shown,) = review.kept_off(db_session, batch, policy=POLICY)
    assert shown.account_id == a.id and shown.holds and shown.ended is None
    assert (shown.note, shown.excluded_by, shown.until_date, shown.batch_id) == (
        "paying Thursday, spoke to the tenant",
        "sup",
        THU,
        first.id,
    )
    # Still held on Thursday (the last day), and a second run that day makes no second list.
    assert run(db_session, THU).counts["shutoff"] == {"excluded": 1}
    assert run(db_session, THU).batch_id is None


def test_an_exclusion_lapses_when_its_days_pass(db_session, excluded):
    """On the first list after its last day, A is raised again, and the reason says the exclusion ran out."""
    a, _b, _first = excluded
    result = run(db_session, MON)
    assert result.counts["shutoff"] == {"create": 1}
    new = cuts(db_session, a)[-1]
    assert new.status == "new" and new.batch_id == result.batch_id
    assert "ended: its days ran out" in new.reason


def test_an_exclusion_lapses_when_a_payment_arrives(db_session, excluded):
    """A part payment the next morning ends the exclusion: A (still over the threshold) is on Wednesday's list."""
    a, _b, _first = excluded
    db_session.add(Payment(cis_payment_id="P-part", account_id=a.id, amount_cents=2_000, paid_at=at(WED, 8)))
    db_session.flush()
    result = run(db_session, WED)
    assert result.counts["shutoff"] == {"create": 1}
    new = cuts(db_session, a)[-1]
    assert new.batch_id == result.batch_id and "ended: a payment posted" in new.reason
    (shown,) = review.list_exclusions(db_session, day=WED, policy=POLICY, account_id=a.id, holding_only=False)
    assert not shown.holds and shown.ended.startswith("a payment posted")


def test_a_new_bill_ends_it_and_a_supervisor_can_lift_it(db_session, excluded):
    """A changed balance ends an exclusion; lifting one ends it at once and is audited."""
    a, _b, _first = excluded
    ex = db_session.scalar(select(ShutoffExclusion).where(ShutoffExclusion.account_id == a.id))
    review.lift_exclusion(db_session, ex, note="promise broken", actor="sup2")
    assert run(db_session, WED).counts["shutoff"] == {"create": 1}
    with pytest.raises(ApiError) as again:
        review.lift_exclusion(db_session, ex, note="", actor="sup2")
    assert again.value.status == 409
    lifted = db_session.scalar(
        select(AuditEvent).where(AuditEvent.entity_type == "shutoff_exclusion", AuditEvent.action == "lifted")
    )
    assert lifted.actor == "sup2" and lifted.detail["note"] == "promise broken"


def test_ended_because_names_each_way_an_exclusion_ends():
    """The one rule: days, a payment, a balance change, a lift; None while it holds."""
    ex = ExclusionFacts(1, 7, "paying Monday", "sup", at(TUE), THU, 15_000, 12_000, 41)
    same = Receivable(15_000, 12_000, 41, at(TUE - dt.timedelta(days=40)))
    assert ended_because(ex, same, THU) is None
    assert "days ran out" in ended_because(ex, same, THU + dt.timedelta(days=1))
    assert "payment posted on 2026-11-18" in ended_because(ex, Receivable(15_000, 12_000, 42, at(WED)), WED)
    assert "balance changed from $150.00" in ended_because(ex, Receivable(19_000, 12_000, 41, None), WED)
    lifted = ExclusionFacts(1, 7, "x", "sup", at(TUE), THU, 0, 0, None, lifted_at=at(WED), lifted_by="boss")
    assert ended_because(lifted, same, WED).startswith("lifted by boss")


def test_api_excludes_per_account_and_names_what_is_wrong(client, login, db_session, delinquent):
    """The approve API takes one note and end per account; an account not on the list, or too many days,
    is a 422 naming it; the next list and /api/shutoff-exclusions show the exclusion; a supervisor lifts it."""
    a, b = delinquent(), delinquent()
    first = run(db_session, TUE)
    sup = login(Role.SUPERVISOR)
    url = f"/api/shutoff-batches/{first.batch_id}/approve"
    stranger = client.post(
        url, json={"exclude": [{"account_id": 987654, "note": "paying Monday"}]}, headers=sup
    )
    assert stranger.status_code == 422
    err = stranger.json()["error"]
    assert f"account 987654 is not in shut-off batch {first.batch_id}" in err["message"]
    assert err["fields"][0]["field"] == "exclude[0].account_id"
    too_long = client.post(
        url, json={"exclude": [{"account_id": a.id, "note": "later", "days": 90}]}, headers=sup
    )
    assert too_long.status_code == 422 and too_long.json()["error"]["fields"][0]["field"] == "exclude[0].days"
    no_note = client.post(url, json={"exclude": [{"account_id": a.id}]}, headers=sup)
    assert no_note.status_code == 422 and "note" in no_note.text
    ok = client.post(
        url,
        json={
            "exclude": [{"account_id": a.id, "note": "paying Monday", "days": 5}],
            "note": "ok",
        },
        headers=sup,
    )
    assert ok.status_code == 200, ok.text
    second = run(db_session, WED)
    detail = client.get(f"/api/shutoff-batches/{second.batch_id}", headers=login(Role.DISPATCHER)).json()
    assert detail["orders"] == []
    (shown,) = detail["excluded"]
    # The API counts the days from the later of the list's day and today.
    assert shown["account_id"] == a.id and shown["note"] == "paying Monday" and shown["until_date"] > str(WED)
    assert b.id not in [e["account_id"] for e in detail["excluded"]]
    listed = client.get(f"/api/shutoff-exclusions?account_id={a.id}&date={WED}", headers=sup).json()
    assert [e["id"] for e in listed] == [shown["id"]]
    assert (
        client.post(
            f"/api/shutoff-exclusions/{shown['id']}/lift", json={}, headers=login(Role.DISPATCHER)
        ).status_code
        == 403
    )
    lifted = client.post(
        f"/api/shutoff-exclusions/{shown['id']}/lift", json={"note": "changed mind"}, headers=sup
    )
    assert lifted.status_code == 200 and lifted.json()["holds"] is False and lifted.json()["lifted_by"]
    assert client.post(f"/api/shutoff-exclusions/{shown['id']}/lift", json={}, headers=sup).status_code == 409
    assert client.post("/api/shutoff-exclusions/999999/lift", json={}, headers=sup).status_code == 404
