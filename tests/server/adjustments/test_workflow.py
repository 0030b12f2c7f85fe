"""The adjustment workflow on SQLite and PostgreSQL: propose from stored bills and reads, change with a
reason, approve within authority, reject; nobody approves their own; a CSFR or a station approves
nothing; every decision is one audit event with before and after."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from contracts.codes import Role
from server.accounts.models import Customer
from server.adjustments import service
from server.adjustments.calculators import add_months
from server.adjustments.models import Adjustment, Bill, BillLine
from server.audit.models import AuditEvent
from server.auth.service import Principal, create_user
from server.meters.models import MeterRead


def at(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 18, tzinfo=dt.UTC)


@pytest.fixture
def billed(db_session, make_account, make_meter) -> Callable[..., tuple]:
    """An account with a 5/8" ccf meter and monthly bills from `first` of `uses` ccf each (readings chained)."""

    def make(first: dt.date, uses: list[float], *, reading: float = 1000.0, estimated=(), low_income=False):
        account = make_account(status="active")
        if low_income:
            db_session.get(Customer, account.customer_id).low_income = True
        meter = make_meter(service_point_id=account.service_point_id, unit="ccf", dials=5, size="5/8")
        start = first
        bills = []
        for n, use in enumerate(uses):
            end = add_months(start, 1)
            bill = Bill(
                cis_bill_id=f"{account.account_number}-{n + 1}",
                account_id=account.id,
                meter_id=meter.id,
                period_start_date=start,
                period_end_date=end,
                start_read_at=at(start),
                start_reading=reading,
                end_read_at=at(end),
                end_reading=reading + use,
                consumption=use,
                unit="ccf",
                estimated=n in estimated,
                total_cents=0,
            )
            db_session.add(bill)
            bills.append(bill)
            reading += use
            start = end
        db_session.flush()
        return account, meter, bills

    return make


def principal(db_session, role: Role, name: str, limit: int = 0) -> Principal:
    user = create_user(
        db_session=db_session,
        username=name,
        password="pw-long-enough",
        role=role,
        authority_limit_cents=limit,
    )
    return Principal(name=name, role=role, user_id=user.id)


def events(db_session, adj: Adjustment) -> list[str]:
    return list(
        db_session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.entity_type == "adjustment", AuditEvent.entity_id == str(adj.id))
            .order_by(AuditEvent.id)
        )
    )


SLOW = {"points": {"low": 90.0, "intermediate": 90.0, "high": 90.0}}


def _meter_test(db_session, billed, uses=None, **inputs):
    account, meter, _bills = billed(dt.date(2025, 1, 5), uses or [30.0] * 10)
    body = {**SLOW, "meter_id": meter.id, "test_date": "2025-11-05", "last_test_date": "2015-01-01", **inputs}
    return account, service.propose(
        db_session=db_session, kind="meter_test", account_id=account.id, inputs=body, proposed_by="adv1"
    )


def test_a_meter_test_proposal_rerates_the_stored_bills_and_is_audited(db_session, billed):
    """A 90% meter back-bills the last 12 months (cap) of its bills: ten 30-ccf bills all inside; the
    proposal stores the working and one 'proposed' audit event."""
    _account, adj = _meter_test(db_session, billed)
    assert adj.status == "proposed" and adj.amount_cents > 0
    assert adj.working["outcome"] == "adjust" and len(adj.working["bills"]) == 10
    assert events(db_session, adj) == ["proposed"]


def test_nothing_to_propose_says_why(db_session, billed):
    """A meter inside its limits: propose refuses with the calculator's reason (409), stores nothing."""
    account, meter, _ = billed(dt.date(2025, 1, 5), [10.0] * 3)
    with pytest.raises(service.AdjustmentError, match="inside 97-102%"):
        service.propose(
            db_session=db_session,
            kind="meter_test",
            account_id=account.id,
            proposed_by="adv1",
            inputs={
                "points": {"intermediate": 100.0, "high": 99.0},
                "meter_id": meter.id,
                "test_date": "2025-04-05",
            },
        )
    assert db_session.scalar(select(func.count()).select_from(Adjustment)) == 0


def test_over_the_advisors_limit_is_refused_with_the_reason_and_a_supervisor_approves(db_session, billed):
    """Changed by hand to $600.00 (over the advisor's $500.00): the advisor is refused naming both
    amounts; a supervisor (limit $1,000.00) approves. Three decisions, three audit events after the proposal."""
    _account, adj = _meter_test(db_session, billed)
    sup1 = principal(db_session, Role.SUPERVISOR, "sup1")
    service.change(
        db_session=db_session,
        adjustment_id=adj.id,
        changed_by="adv2",
        reason="customer's own read agrees",
        amount_cents=60000,
    )
    advisor = principal(db_session, Role.ADVISOR, "adv3")
    with pytest.raises(service.ApiError) as refused:
        service.approve(db_session=db_session, adjustment_id=adj.id, principal=advisor)
    assert refused.value.status == 403
    assert "$600.00 is over your authority of $500.00 for a meter test" in refused.value.message
    done = service.approve(db_session=db_session, adjustment_id=adj.id, principal=sup1, reason="checked")
    assert (done.status, done.decided_by) == ("approved", "sup1")
    assert events(db_session, adj) == ["proposed", "changed", "approved"]
    last = db_session.scalar(
        select(AuditEvent).where(AuditEvent.entity_id == str(adj.id)).order_by(AuditEvent.id.desc())
    )
    assert last.detail["before"]["status"] == "changed" and last.detail["after"]["status"] == "approved"
    assert last.detail["why"] == "checked"


def test_a_users_own_limit_lowers_the_roles_limit(db_session, billed):
    """An advisor whose own limit is $1.00 cannot approve a back-bill above it (the role allows $500)."""
    _account, adj = _meter_test(db_session, billed)
    small = principal(db_session, Role.ADVISOR, "adv-small", limit=100)
    with pytest.raises(service.ApiError, match=r"over your authority of \$1\.00"):
        service.approve(db_session=db_session, adjustment_id=adj.id, principal=small)


def test_nobody_approves_what_they_proposed_or_changed(db_session, billed):
    """The proposer and the changer are refused; neither refusal leaves an audit event."""
    _account, adj = _meter_test(db_session, billed)
    proposer = principal(db_session, Role.SUPERVISOR, "adv1")
    with pytest.raises(service.ApiError, match="nobody approves an adjustment they proposed"):
        service.approve(db_session=db_session, adjustment_id=adj.id, principal=proposer)
    service.change(
        db_session=db_session,
        adjustment_id=adj.id,
        changed_by="sup9",
        reason="fewer bills",
        amount_cents=1234,
    )
    changer = principal(db_session, Role.SUPERVISOR, "sup9")
    with pytest.raises(service.ApiError, match="nobody approves an adjustment they changed"):
        service.approve(db_session=db_session, adjustment_id=adj.id, principal=changer)
    assert events(db_session, adj) == ["proposed", "changed"]


@pytest.mark.parametrize("role", [Role.CSFR, Role.STATION, Role.DISPATCHER])
def test_a_csfr_a_station_or_a_dispatcher_approves_and_rejects_nothing(db_session, billed, role):
    """Roles outside the authority table: 403 naming the role, for approve and for reject."""
    _account, adj = _meter_test(db_session, billed)
    who = Principal(name=f"{role.value}-1", role=role)
    with pytest.raises(service.ApiError, match=f"a {role.value} approves no adjustments"):
        service.approve(db_session=db_session, adjustment_id=adj.id, principal=who)
    with pytest.raises(service.ApiError, match=f"a {role.value} decides no adjustments"):
        service.reject(db_session=db_session, adjustment_id=adj.id, principal=who, reason="no")
    assert events(db_session, adj) == ["proposed"]


def test_fee_reversal_needs_two_different_approvers(db_session, billed):
    """A $10.00 late fee (a two-approver kind): the first approval leaves it open ('approved 1 of 2'); the
    same person again is refused; a second advisor approves it."""
    account, _meter, bills = billed(dt.date(2025, 1, 5), [10.0])
    db_session.add(BillLine(bill_id=bills[0].id, component="late_fee", amount_cents=1000, description=""))
    db_session.flush()
    adj = service.propose(
        db_session=db_session,
        kind="fee_reversal",
        account_id=account.id,
        proposed_by="adv1",
        inputs={"bill_id": bills[0].cis_bill_id, "components": ["late_fee"]},
    )
    assert adj.amount_cents == -1000
    first = principal(db_session, Role.ADVISOR, "adv2")
    service.approve(db_session=db_session, adjustment_id=adj.id, principal=first)
    assert adj.status == "proposed" and len(adj.approvals) == 1
    with pytest.raises(service.ApiError, match="approved it already"):
        service.approve(db_session=db_session, adjustment_id=adj.id, principal=first)
    service.approve(
        db_session=db_session, adjustment_id=adj.id, principal=principal(db_session, Role.ADVISOR, "adv3")
    )
    assert adj.status == "approved"
    assert events(db_session, adj) == ["proposed", "approved 1 of 2", "approved"]


def test_reject_needs_a_reason_and_closes_it(db_session, billed):
    """A rejection without a reason is refused (422); with one it closes the adjustment; a closed one
    cannot be approved (409)."""
    _account, adj = _meter_test(db_session, billed)
    sup = principal(db_session, Role.SUPERVISOR, "sup1")
    with pytest.raises(service.ApiError, match="say why"):
        service.reject(db_session=db_session, adjustment_id=adj.id, principal=sup, reason=" ")
    service.reject(db_session=db_session, adjustment_id=adj.id, principal=sup, reason="meter was swapped")
    with pytest.raises(service.ApiError, match="already rejected") as closed:
        service.approve(
            db_session=db_session, adjustment_id=adj.id, principal=principal(db_session, Role.ADMIN, "root1")
        )
    assert closed.value.status == 409
    assert events(db_session, adj) == ["proposed", "rejected"]


def test_reread_correction_follows_the_read_links(db_session, billed):
    """Bills 2 and 3 share the read at 1060 (bill 2's close, bill 3's open); a reread read 1040 corrects it
    (corrects_read_id). Proposing from the reread's id finds both bills: bill 2 falls 20 ccf, bill 3 rises
    20 ccf, and the working lists both."""
    account, meter, bills = billed(dt.date(2025, 1, 5), [30.0, 30.0, 30.0])
    wrong = MeterRead(meter_id=meter.id, read_at=bills[1].end_read_at, reading=1060.0, source="cis")
    db_session.add(wrong)
    db_session.flush()
    right = MeterRead(
        meter_id=meter.id,
        read_at=bills[1].end_read_at + dt.timedelta(days=2),
        reading=1040.0,
        source="field",
        corrects_read_id=wrong.id,
    )
    db_session.add(right)
    db_session.flush()
    wrong.superseded_by_id = right.id
    working = service.preview(
        db_session=db_session, kind="reread_correction", account_id=account.id, inputs={"read_id": right.id}
    )
    assert [(b["bill_id"], b["corrected_consumption"]) for b in working.bills] == [
        (bills[1].cis_bill_id, "10"),
        (bills[2].cis_bill_id, "50"),
    ]
    assert working.bills[0]["difference_cents"] < 0 < working.bills[1]["difference_cents"]


def test_estimate_true_up_finds_the_run_of_estimates_before_the_actual_read(db_session, billed):
    """Bills 2-3 estimated at 10 ccf; the actual read at the end of bill 3 shows 60 ccf used since bill
    2 opened: each estimated bill is re-rated with its days' share, and the total is a back-bill."""
    account, meter, bills = billed(dt.date(2025, 1, 5), [10.0, 10.0, 10.0], estimated=(1, 2))
    actual = MeterRead(
        meter_id=meter.id, read_at=bills[2].end_read_at, reading=1010.0 + 60.0, source="handheld"
    )
    db_session.add(actual)
    db_session.flush()
    working = service.preview(
        db_session=db_session,
        kind="estimate_true_up",
        account_id=account.id,
        inputs={"actual_read_id": actual.id},
    )
    assert [b["bill_id"] for b in working.bills] == [bills[1].cis_bill_id, bills[2].cis_bill_id]
    assert working.outcome == "adjust" and working.amount_cents > 0


def test_leak_credit_refused_within_the_once_per_period_rule_from_stored_approvals(db_session, billed):
    """An approved leak credit on the account (decided 2025-06-01) refuses another until 2027-06-01."""
    account, _meter, bills = billed(dt.date(2024, 1, 5), [10.0] * 14 + [40.0])
    db_session.add(
        Adjustment(
            kind="leak_credit",
            status="approved",
            account_id=account.id,
            amount_cents=-500,
            inputs={},
            working={},
            proposed_by="x",
            approvals=[],
            change_reason="",
            decision_reason="",
            decided_at=dt.datetime(2025, 6, 1, 20, tzinfo=dt.UTC),
        )
    )
    db_session.flush()
    working = service.preview(
        db_session=db_session,
        kind="leak_credit",
        account_id=account.id,
        inputs={"bill_ids": [bills[-1].cis_bill_id], "repair_proven": True, "on": "2025-04-10"},
    )
    assert working.outcome == "refused" and "the next may be given from 2027-06-01" in working.reason


def test_list_filters_by_kind_status_amount_and_age(db_session, billed):
    """The queue filters: kind, status, absolute amount range, age; oldest first; total counts all pages."""
    _account, adj = _meter_test(db_session, billed)
    now = adj.created_at
    found = service.list_adjustments(
        db_session=db_session, kind="meter_test", status="proposed", min_amount_cents=1
    )
    assert [a.id for a in found.items] == [adj.id] and found.total == 1
    assert service.list_adjustments(db_session=db_session, kind="leak_credit").total == 0
    assert (
        service.list_adjustments(db_session=db_session, max_amount_cents=abs(adj.amount_cents) - 1).total == 0
    )
    assert (
        service.list_adjustments(
            db_session=db_session, older_than_days=1, now=now + dt.timedelta(days=2)
        ).total
        == 1
    )
    assert (
        service.list_adjustments(
            db_session=db_session, older_than_days=3, now=now + dt.timedelta(days=2)
        ).total
        == 0
    )
    with pytest.raises(service.ApiError, match="kind: 'refund' is not one of"):
        service.list_adjustments(db_session=db_session, kind="refund")


def test_the_api_proposes_approves_and_refuses(client, login, db_session, billed):
    """POST /api/adjustments as an advisor (201); the same advisor's approve is 403 with the reason; a
    CSFR's is 403; a supervisor's approves (200); GET lists it approved; the account's bills come with lines."""
    account, meter, _bills = billed(dt.date(2025, 1, 5), [30.0] * 10)
    advisor = login(Role.ADVISOR, username="adv-api")
    body = {
        "kind": "meter_test",
        "account_id": account.id,
        "inputs": {**SLOW, "meter_id": meter.id, "test_date": "2025-11-05", "last_test_date": "2015-01-01"},
    }
    created = client.post("/api/adjustments", json=body, headers=advisor)
    assert created.status_code == 201, created.text
    adj_id = created.json()["id"]
    own = client.post(f"/api/adjustments/{adj_id}/approve", json={}, headers=advisor)
    assert own.status_code == 403 and "they proposed" in own.json()["error"]["message"]
    csfr = client.post(f"/api/adjustments/{adj_id}/approve", json={}, headers=login(Role.CSFR))
    assert csfr.status_code == 403 and "a csfr approves no adjustments" in csfr.json()["error"]["message"]
    ok = client.post(
        f"/api/adjustments/{adj_id}/approve", json={"reason": "ok"}, headers=login(Role.SUPERVISOR)
    )
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    listed = client.get("/api/adjustments", params={"status": "approved"}, headers=advisor).json()
    assert [a["id"] for a in listed["items"]] == [adj_id]
    bad = client.post("/api/adjustments", json={**body, "inputs": {"meter_id": meter.id}}, headers=advisor)
    assert bad.status_code == 422 and "points" in bad.json()["error"]["message"]
    got = client.get(f"/api/accounts/{account.id}/bills", headers=advisor).json()
    assert len(got) == 10 and got[0]["consumption"] == 30.0
