"""Technicians CRUD; accounts and meters read-only, with CSFR visibility limits."""

from contracts.codes import Role
from server.accounts.models import Balance
from server.db import utcnow
from server.meters.models import MeterRead
from server.orders.models import WorkOrder

TECH = {
    "code": "T42",
    "name": "Rosa Diaz",
    "skills": ["read", "meter_test"],
    "depot_lat": 38.5,
    "depot_lon": -121.4,
}


def test_technician_crud(client, login):
    """A dispatcher adds, reads, edits (If-Match) and deactivates a technician."""
    dispatcher = login(Role.DISPATCHER)
    created = client.post("/api/technicians", json=TECH, headers=dispatcher)
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert client.post("/api/technicians", json=TECH, headers=dispatcher).status_code == 409
    edit = client.patch(
        f"/api/technicians/{tid}",
        json={"skills": ["read"]},
        headers={**dispatcher, "If-Match": created.headers["ETag"]},
    )
    assert edit.status_code == 200 and edit.json()["skills"] == ["read"]
    stale = client.patch(
        f"/api/technicians/{tid}",
        json={"name": "X"},
        headers={**dispatcher, "If-Match": created.headers["ETag"]},
    )
    assert stale.status_code == 412
    assert client.delete(f"/api/technicians/{tid}", headers=dispatcher).status_code == 204
    assert client.get("/api/technicians", headers=dispatcher).json() == []
    assert len(client.get("/api/technicians?include_inactive=true", headers=dispatcher).json()) == 1


def test_technician_validation(client, login):
    """Unknown skills and a shift that ends before it starts are 422s naming the field."""
    dispatcher = login(Role.DISPATCHER)
    bad_skill = client.post("/api/technicians", json={**TECH, "skills": ["juggling"]}, headers=dispatcher)
    assert bad_skill.status_code == 422 and "skills" in bad_skill.json()["error"]["message"]
    bad_shift = client.post(
        "/api/technicians", json={**TECH, "shift_start": "16:00", "shift_end": "08:00"}, headers=dispatcher
    )
    assert bad_shift.status_code == 422 and "shift_end" in bad_shift.json()["error"]["message"]


def test_advisor_cannot_edit_technicians(client, login):
    """Advisors read technicians but cannot add them."""
    advisor = login(Role.ADVISOR)
    assert client.post("/api/technicians", json=TECH, headers=advisor).status_code == 403


def test_csfr_reads_only_themself(client, login, make_technician):
    """A CSFR reads their own technician record and gets 404 for a colleague's."""
    me, colleague = make_technician(), make_technician()
    csfr = login(Role.CSFR, technician=me)
    assert client.get(f"/api/technicians/{me.id}", headers=csfr).status_code == 200
    assert client.get(f"/api/technicians/{colleague.id}", headers=csfr).status_code == 404


def test_account_read_with_balance(client, login, make_account, db_session):
    """An advisor reads an account with its premise and balance in cents; search by number works."""
    account = make_account(account_number="A7654321")
    db_session.add(Balance(account_id=account.id, balance_cents=12345, past_due_cents=5000))
    db_session.flush()
    advisor = login(Role.ADVISOR)
    body = client.get(f"/api/accounts/{account.id}", headers=advisor).json()
    assert body["balance"]["balance_cents"] == 12345 and body["service_point"]["address"]
    found = client.get("/api/accounts?q=A76543", headers=advisor).json()
    assert found["total"] == 1 and found["items"][0]["id"] == account.id
    assert client.get("/api/accounts/999999", headers=advisor).status_code == 404


def test_csfr_account_and_meter_visibility(
    client, login, make_account, make_meter, make_technician, db_session
):
    """A CSFR sees an account and its meter's reads only while they have open work there."""
    tech = make_technician()
    csfr = login(Role.CSFR, technician=tech)
    account = make_account()
    meter = make_meter(service_point_id=account.service_point_id)
    db_session.add(MeterRead(meter_id=meter.id, read_at=utcnow(), reading=123.0, source="cis"))
    db_session.flush()
    assert client.get(f"/api/accounts/{account.id}", headers=csfr).status_code == 404
    assert client.get(f"/api/meters/{meter.id}/reads", headers=csfr).status_code == 404
    db_session.add(
        WorkOrder(
            order_type="reread",
            priority="reread",
            account_id=account.id,
            service_point_id=account.service_point_id,
            technician_id=tech.id,
            status="dispatched",
            idempotency_key="vis",
        )
    )
    db_session.flush()
    assert client.get(f"/api/accounts/{account.id}", headers=csfr).status_code == 200
    reads = client.get(f"/api/meters/{meter.id}/reads", headers=csfr).json()
    assert [r["reading"] for r in reads] == [123.0]
