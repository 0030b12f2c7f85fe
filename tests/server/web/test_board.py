"""The dispatcher's board over HTTP: times in the utility's zone, edits through the orders' own rules."""

from __future__ import annotations

import datetime as dt
import html
import itertools
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contracts.codes import Role
from server.audit.models import AuditEvent
from server.orders.models import WorkOrder

DAY = dt.date(2026, 12, 2)
PACIFIC = ZoneInfo("America/Los_Angeles")
_keys = itertools.count(1)


def local(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), tzinfo=PACIFIC).astimezone(dt.UTC)


@pytest.fixture
def make_order(db_session, make_account):
    """Factory for work orders on DAY."""

    def make(**kw):
        account = kw.pop("account", None) or make_account()
        order = WorkOrder(
            order_type=kw.pop("order_type", "reread"),
            status=kw.pop("status", "new"),
            priority=kw.pop("priority", "reread"),
            account_id=account.id,
            service_point_id=account.service_point_id,
            scheduled_date=kw.pop("scheduled_date", DAY),
            required_skills=kw.pop("required_skills", ["read"]),
            estimated_minutes=kw.pop("estimated_minutes", 20),
            rule="test",
            idempotency_key=f"web-board-{next(_keys)}",
            **kw,
        )
        db_session.add(order)
        db_session.flush()
        return order

    return make


@pytest.fixture
def crew(make_technician):
    """Two CSFRs on a 07:30-16:00 shift; only the first can do meter tests."""
    return (
        make_technician(code="A01", name="Ana", skills=["read", "meter_test"]),
        make_technician(code="B02", name="Ben", skills=["read"]),
    )


def _move(who, order, tech, arrive="10:30", version=None):
    return who.post(
        f"/board/orders/{order.id}/move",
        data={
            "technician_id": tech.id,
            "version": order.version if version is None else version,
            "day": DAY.isoformat(),
            "arrive": arrive,
        },
    )


def test_times_are_in_the_utilitys_zone(browser, crew, make_order):
    """A stop planned at 15:00 UTC shows at 07:00 Pacific on the timeline, and the zone is named."""
    ana, _ = crew
    make_order(status="dispatched", technician_id=ana.id, planned_arrival_at=local(7), route_sequence=1)
    page = browser(Role.DISPATCHER).client.get(f"/board?day={DAY.isoformat()}")
    assert page.status_code == 200
    assert "07:00 to 07:20" in page.text
    assert "15:00 to" not in page.text
    assert "PST (America/Los_Angeles)" in page.text


def test_drag_to_another_csfr_dispatches_and_pins_it_there(browser, crew, make_order, db_session):
    """Moving a stop to another CSFR at a time dispatches it there at that local time, pinned, audited."""
    ana, ben = crew
    order = make_order(
        status="dispatched", technician_id=ana.id, planned_arrival_at=local(9), route_sequence=1
    )
    me = browser(Role.DISPATCHER)
    response = _move(me, order, ben, "10:30")
    assert response.status_code == 200, response.text
    assert "B02" in response.text and response.headers["HX-Trigger"] == "board-changed"
    db_session.refresh(order)
    assert (order.technician_id, order.status, order.locked) == (ben.id, "dispatched", True)
    assert order.planned_arrival_at == local(10, 30)
    actors = set(
        db_session.scalars(
            select(AuditEvent.actor).where(
                AuditEvent.entity_type == "work_order", AuditEvent.entity_id == str(order.id)
            )
        )
    )
    assert me.username in actors


def test_new_order_dropped_on_a_csfr_goes_through_the_lifecycle(browser, crew, make_order, db_session):
    """A work-list order dropped on a CSFR's row moves new -> assigned -> dispatched (audited steps)."""
    ana, _ = crew
    order = make_order()
    response = _move(browser(Role.DISPATCHER), order, ana, "08:15")
    assert response.status_code == 200, response.text
    db_session.refresh(order)
    assert order.status == "dispatched" and order.technician_id == ana.id
    steps = [
        e.detail.get("to")
        for e in db_session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == "work_order", AuditEvent.entity_id == str(order.id))
            .order_by(AuditEvent.id)
        )
        if e.action == "transition"
    ]
    assert steps == ["assigned", "dispatched"]


def test_skills_are_checked_by_the_server(browser, crew, make_order, db_session):
    """A stop needing a skill the CSFR lacks is refused with the reason, and nothing changes."""
    ana, ben = crew
    order = make_order(
        order_type="meter_test",
        priority="meter_test",
        required_skills=["meter_test"],
        status="dispatched",
        technician_id=ana.id,
        planned_arrival_at=local(9),
    )
    response = _move(browser(Role.DISPATCHER), order, ben)
    assert response.status_code == 409
    assert "lacks the skills" in response.text and "meter_test" in response.text
    db_session.refresh(order)
    assert order.technician_id == ana.id and not order.locked


def test_appointment_window_is_checked_by_the_server(browser, crew, make_order, db_session):
    """A stop placed outside its appointment window is refused, naming the window in local time."""
    ana, _ = crew
    order = make_order(window_start=local(13), window_end=local(15))
    response = _move(browser(Role.DISPATCHER), order, ana, "09:00")
    assert response.status_code == 409
    assert "outside its appointment window" in response.text and "13:00" in response.text
    db_session.refresh(order)
    assert order.status == "new" and order.technician_id is None


def test_stale_edit_says_who_changed_the_stop(browser, crew, make_order, db_session):
    """Two dispatchers move the same stop from the same board: the second is refused and told who moved it."""
    ana, ben = crew
    order = make_order(status="dispatched", technician_id=ana.id, planned_arrival_at=local(9))
    seen = order.version
    first, second = browser(Role.DISPATCHER), browser(Role.DISPATCHER)
    assert _move(first, order, ben, "11:00", version=seen).status_code == 200
    late = _move(second, order, ana, "12:00", version=seen)
    assert late.status_code == 409
    assert f"changed by {first.username}" in late.text
    db_session.refresh(order)
    assert order.technician_id == ben.id and order.planned_arrival_at == local(11)


def test_pin_and_unpin(browser, crew, make_order, db_session):
    """Pinning locks the stop to its CSFR; unpinning frees it for the planner."""
    ana, _ = crew
    order = make_order(status="dispatched", technician_id=ana.id, planned_arrival_at=local(9))
    me = browser(Role.DISPATCHER)
    assert (
        me.post(
            f"/board/orders/{order.id}/pin", data={"version": order.version, "locked": "true"}
        ).status_code
        == 200
    )
    db_session.refresh(order)
    assert order.locked
    assert (
        me.post(
            f"/board/orders/{order.id}/pin", data={"version": order.version, "locked": "false"}
        ).status_code
        == 200
    )
    db_session.refresh(order)
    assert not order.locked


def test_unassign_puts_the_stop_back_on_the_work_list(browser, crew, make_order, db_session):
    """Taking a pinned stop off the route makes it new, with no CSFR, and lists it as waiting."""
    ana, _ = crew
    order = make_order(status="dispatched", technician_id=ana.id, planned_arrival_at=local(9), locked=True)
    me = browser(Role.DISPATCHER)
    response = me.post(f"/board/orders/{order.id}/unassign", data={"version": order.version})
    assert response.status_code == 200, response.text
    db_session.refresh(order)
    assert (order.status, order.technician_id, order.locked) == ("new", None, False)
    work = me.client.get(f"/board/parts/work?day={DAY.isoformat()}")
    assert f"#{order.id}" in work.text and "taken off the route on the board" in work.text


def test_assign_many_from_the_work_list(browser, crew, make_order, db_session):
    """Assigning several orders pins each to the CSFR; a stale one is refused by name, the rest succeed."""
    ana, _ = crew
    fresh, stale = make_order(), make_order()
    me = browser(Role.DISPATCHER)
    response = me.post(
        "/board/assign",
        data={
            "technician_id": ana.id,
            "orders": [f"{fresh.id}:{fresh.version}", f"{stale.id}:{stale.version + 5}"],
        },
    )
    assert response.status_code == 200
    assert f"#{fresh.id} pinned to A01" in response.text
    assert f"order {stale.id}" in response.text
    db_session.refresh(fresh)
    db_session.refresh(stale)
    assert (fresh.technician_id, fresh.locked) == (ana.id, True)
    assert stale.technician_id is None


def test_work_list_shows_type_address_reason_and_filters(
    browser, crew, make_order, make_account, make_service_point
):
    """The work list names type, address, account and why each order waits; search and type filters narrow it."""
    oak = make_account(service_point=make_service_point(address="12 Oak Ave", service_area="north"))
    make_order(account=oak, order_type="leak_investigation", priority="investigation")
    make_order(status_reason="not planned for 2026-12-01: no_time")
    carried = make_order(scheduled_date=DAY - dt.timedelta(days=2))
    me = browser(Role.DISPATCHER)
    work = me.client.get(f"/board/parts/work?day={DAY.isoformat()}").text
    assert "leak investigation" in work and "12 Oak Ave" in work and oak.account_number in work
    assert "carried over from 2026-11-30" in work and f"#{carried.id}" in work
    only_oak = me.client.get(f"/board/parts/work?day={DAY.isoformat()}&q=oak").text
    assert "12 Oak Ave" in only_oak and f"#{carried.id}" not in only_oak
    by_account = me.client.get(f"/board/parts/work?day={DAY.isoformat()}&q={oak.account_number}").text
    assert "12 Oak Ave" in by_account
    by_type = me.client.get(f"/board/parts/work?day={DAY.isoformat()}&type=reread&area=").text
    assert "12 Oak Ave" not in by_type and f"#{carried.id}" in by_type
    by_area = me.client.get(f"/board/parts/work?day={DAY.isoformat()}&area=north").text
    assert "12 Oak Ave" in by_area and f"#{carried.id}" not in by_area


def test_at_a_glance_counts(browser, crew, make_order):
    """Emergencies, waiting work, shut-offs held for approval and sent-back orders are counted."""
    make_order(order_type="emergency", priority="emergency", required_skills=["emergency"])
    make_order(order_type="shut_off_nonpay", priority="shut_off", review_hold="awaiting the batch's review")
    make_order(status="unable_to_complete", completed_at=local(10), outcome={"unable_code": "no_access"})
    glance = browser(Role.DISPATCHER).client.get(f"/board/parts/glance?day={DAY.isoformat()}").text
    assert 'data-glance="emergencies">1<' in glance
    assert 'data-glance="shutoffs">1<' in glance
    assert 'data-glance="unable">1<' in glance
    assert (
        'data-glance="unassigned">2<' in glance
    )  # the emergency and the sent-back one; the held cut waits apart


def test_order_drawer_shows_account_hazards_and_audit(
    browser, crew, make_order, make_account, make_service_point, db_session
):
    """The drawer shows the account, the premise's hazards and access notes, and who changed the order."""
    sp = make_service_point(address="9 Birch Rd", hazards=["dog"], access_notes="gate code 4411")
    order = make_order(account=make_account(service_point=sp))
    me = browser(Role.DISPATCHER)
    ana, _ = crew
    _move(me, order, ana, "09:00")
    drawer = me.client.get(f"/board/orders/{order.id}").text
    assert "9 Birch Rd" in drawer and "dog" in drawer and "gate code 4411" in drawer
    assert me.username in drawer and "Audit trail" in drawer


def test_map_data_and_streets_from_the_districts_geometry(
    browser, crew, make_order, make_account, make_service_point
):
    """The map gets each route in its CSFR's colour and, without a tile server, streets from service points."""
    ana, _ = crew
    for house in (1, 2, 3, 4):
        make_service_point(address=f"{house} Pine St", lat=38.6, lon=-121.5 + house * 1e-4)
    make_order(status="dispatched", technician_id=ana.id, planned_arrival_at=local(9))
    me = browser(Role.DISPATCHER)
    data = me.client.get(f"/board/map.json?day={DAY.isoformat()}").json()
    assert [r["technician"] for r in data["routes"]] == ["A01"] and data["routes"][0]["colour"].startswith(
        "#"
    )
    streets = me.client.get("/board/streets.json").json()["streets"]
    pine = [line for line in streets if all(abs(p[0] - 38.6) < 1e-6 for p in line)]
    assert pine and pine[0][0][1] < pine[0][-1][1]


def test_emergency_shows_who_gets_it_and_dispatches_on_confirm(
    browser, make_technician, make_order, db_session
):
    """An emergency typed by order number is inserted into the published plan as a draft; the page says who
    gets it and when; nothing is dispatched until the dispatcher confirms."""
    from server.dispatch.service import make_plan, publish
    from server.timezone import local_today

    day = local_today() + dt.timedelta(days=1)  # a day still ahead, whenever the test runs
    tech = make_technician(code="E01", skills=["read", "emergency"])
    for _ in range(3):
        make_order(scheduled_date=day)
    plan = make_plan(
        db_session=db_session, plan_date=day, service_area="", time_limit_s=1.0, seed=0, actor="t"
    )
    publish(db_session=db_session, plan=plan, actor="t")
    db_session.commit()
    urgent = make_order(
        scheduled_date=day, order_type="emergency", priority="emergency", required_skills=["emergency"]
    )
    db_session.commit()
    me = browser(Role.DISPATCHER)
    preview = me.post("/board/emergency", data={"day": day.isoformat(), "what": f"#{urgent.id}"})
    assert preview.status_code == 200, preview.text
    assert "E01" in preview.text and "gets it" in preview.text and "Confirm and dispatch" in preview.text
    db_session.refresh(urgent)
    assert urgent.status == "new"  # a preview only
    draft_id = int(preview.text.split("/board/plans/")[1].split("/")[0])
    version = int(preview.text.split('name="version" value="')[1].split('"')[0])
    confirmed = me.post(f"/board/plans/{draft_id}/publish", data={"version": version})
    assert confirmed.status_code == 200, confirmed.text
    db_session.refresh(urgent)
    assert (urgent.status, urgent.technician_id) == ("dispatched", tech.id)


def test_emergency_that_matches_nothing_says_so(browser, crew):
    """An emergency search that finds no waiting order is refused naming what was typed."""
    response = browser(Role.DISPATCHER).post(
        "/board/emergency", data={"day": DAY.isoformat(), "what": "99 Nowhere Ln"}
    )
    assert response.status_code == 422 and "99 Nowhere Ln" in response.text


def test_assign_with_nothing_ticked_says_so(browser, crew):
    """Pressing Assign with no order ticked answers in words, not with a validation error."""
    ana, _ = crew
    response = browser(Role.DISPATCHER).post("/board/assign", data={"technician_id": ana.id})
    assert response.status_code == 422 and "tick the orders to assign first" in response.text


def test_work_list_gives_the_plans_reason_in_words(browser, crew, make_order, db_session):
    """An order the plan left out shows why in words: the plan's own `detail` when it has one, else the
    planner's reason code in words (never the bare code)."""
    from server.dispatch.models import DispatchPlan

    worded, coded = make_order(), make_order()
    db_session.add(
        DispatchPlan(
            plan_date=DAY,
            service_area="",
            status="published",
            kind="plan",
            routes=[],
            unassigned=[
                {"order_id": worded.id, "reason": "day_full", "detail": "A01 and B02 are full until 16:00"},
                {"order_id": coded.id, "reason": "skill_short"},
            ],
            created_by="t",
        )
    )
    db_session.flush()
    work = browser(Role.DISPATCHER).client.get(f"/board/parts/work?day={DAY.isoformat()}").text
    assert "A01 and B02 are full until 16:00" in work
    assert "every CSFR with the skill is full while others have time" in work
    assert "skill_short" not in work


@pytest.mark.parametrize("arrive", ["99", "24:00", "7:5", "noon"])
def test_move_refuses_a_time_that_is_not_a_time_of_day(browser, crew, make_order, arrive):
    """A drop or form time that is not HH:MM (24-hour) is refused in words, naming what was sent."""
    ana, _ = crew
    order = make_order()
    response = _move(browser(Role.DISPATCHER), order, ana, arrive)
    assert response.status_code == 422
    assert f"arrival '{arrive}' is not a time of day" in html.unescape(response.text)


def test_board_opens_on_the_next_day_with_work_when_today_has_none(browser, crew, make_order):
    """Opened without a day on a day with no work (a weekend), the board shows the next day with orders and
    says what today is; a day asked for is shown as asked."""
    from server.timezone import local_today

    today = local_today()
    make_order(scheduled_date=today + dt.timedelta(days=2))
    me = browser(Role.DISPATCHER)
    page = me.client.get("/board")
    assert f'data-day="{(today + dt.timedelta(days=2)).isoformat()}"' in page.text
    assert "today is" in page.text
    asked = me.client.get(f"/board?day={today.isoformat()}")
    assert f'data-day="{today.isoformat()}"' in asked.text
