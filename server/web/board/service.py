"""What the dispatcher's board shows: the day's rows of stops, what needs attention, the work list, an order's file.

Read-only queries over the features' tables; every change the board makes goes through the features'
own service functions (server/web/board/views.py calls them), so the board holds no rule of its own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from contracts.codes import CLOSED_STATUSES, OrderStatus, OrderType, Priority
from server.accounts.models import Account, Balance, Customer, ServicePoint
from server.audit.models import AuditEvent
from server.dispatch.models import DispatchPlan
from server.orders.models import WorkOrder
from server.sync.models import FieldResult
from server.technicians.models import Technician

# A CSFR whose next stop was due this long ago and who is not there yet is behind schedule.
BEHIND_AFTER = dt.timedelta(minutes=15)
# During a shift, no document from the tablet for this long reads as "not synced for N min".
SYNC_STALE_AFTER = dt.timedelta(minutes=30)
# Route colours, distinct on a map and readable with white text (WCAG AA against #fff).
PALETTE = (
    "#1f5fa8",
    "#b3261e",
    "#1b7a3a",
    "#7a3fb0",
    "#a35200",
    "#00707a",
    "#a8326e",
    "#4d5c00",
    "#5a4632",
    "#2c4a8c",
    "#8a2c2c",
    "#3d6b5a",
)
ON_ROUTE = (
    OrderStatus.ASSIGNED,
    OrderStatus.DISPATCHED,
    OrderStatus.EN_ROUTE,
    OrderStatus.ON_SITE,
    OrderStatus.COMPLETED,
    OrderStatus.UNABLE_TO_COMPLETE,
)
WAITING = (OrderStatus.NEW, OrderStatus.SCHEDULED)
WORK_LIST_LIMIT = 200


def colour(index: int) -> str:
    """The route colour of the `index`-th technician (by code)."""
    return PALETTE[index % len(PALETTE)]


@dataclass
class StopView:
    """One stop on a CSFR's row: where, what, when, and the version an edit must quote."""

    order_id: int
    order_type: str
    priority: str
    status: str
    address: str
    lat: float
    lon: float
    arrival_at: dt.datetime | None
    minutes: int
    travel_s: int
    locked: bool
    version: int
    carried_over: bool = False
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    draft: bool = False  # shown from a draft plan, not yet dispatched

    @property
    def departure_at(self) -> dt.datetime | None:
        """When the work is planned to end."""
        return None if self.arrival_at is None else self.arrival_at + dt.timedelta(minutes=self.minutes)


@dataclass
class CrewState:
    """What a CSFR is doing now, as their tablet last told us."""

    label: str  # off shift | en route | on site | idle | no work | done for the day
    detail: str = ""
    behind_min: int = 0
    unsynced_min: int | None = None  # minutes since the tablet's last document, during the shift
    position: tuple[float, float] | None = None  # last known place (the last stop they reached)


@dataclass
class Row:
    """A CSFR's line on the timeline."""

    technician: Technician
    colour: str
    shift_start: dt.datetime
    shift_end: dt.datetime
    stops: list[StopView] = field(default_factory=list)
    breaks: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    state: CrewState = field(default_factory=lambda: CrewState("off shift"))
    travel_s: int = 0
    overtime_s: int = 0
    waiting: list[int] = field(default_factory=list)  # pinned to them, not yet on the route


@dataclass
class WorkItem:
    """An order waiting for a CSFR, with the true reason it has none."""

    order_id: int
    order_type: str
    priority: str
    status: str
    address: str
    service_area: str
    account_number: str
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    reason: str
    version: int
    scheduled_date: dt.date | None
    carried_from: dt.date | None
    pinned_to: str = ""
    hold: str = ""


@dataclass
class Glance:
    """What needs the dispatcher's attention now."""

    emergencies: int
    unassigned: int
    behind: list[tuple[str, int]]  # (technician code, minutes behind)
    unable: int
    shutoffs_awaiting: int


@dataclass
class Board:
    """The day on the board."""

    day: dt.date
    now: dt.datetime
    zone: ZoneInfo
    plan: DispatchPlan | None  # the plan in force (published), else the newest draft
    draft: DispatchPlan | None  # a draft newer than the plan in force, ready to publish
    rows: list[Row]
    start: dt.datetime  # left edge of the timeline
    end: dt.datetime  # right edge

    def left_pct(self, moment: dt.datetime) -> float:
        """Where `moment` sits on the timeline, in percent of its width."""
        span = (self.end - self.start).total_seconds()
        return round(max(0.0, min(100.0, (moment - self.start).total_seconds() / span * 100)), 3)

    def width_pct(self, start: dt.datetime, end: dt.datetime) -> float:
        """The width of [start, end] on the timeline, in percent."""
        return round(max(0.25, self.left_pct(end) - self.left_pct(start)), 3)

    def hours(self) -> list[dt.datetime]:
        """Whole local hours across the timeline (for the scale)."""
        first = self.start.astimezone(self.zone).replace(minute=0, second=0, microsecond=0)
        out = []
        moment = first + dt.timedelta(hours=1) if first < self.start else first
        while moment <= self.end:
            out.append(moment)
            moment += dt.timedelta(hours=1)
        return out


@dataclass(frozen=True)
class DayRef:
    """The day and its plan in force, for parts of the board that need no timeline (the work list)."""

    day: dt.date
    plan: DispatchPlan | None


def _local(day: dt.date, t: dt.time, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, t, tzinfo=zone).astimezone(dt.UTC)


def plans_of_day(*, db_session: Session, day: dt.date) -> tuple[DispatchPlan | None, DispatchPlan | None]:
    """(the plan in force, a newer draft) for a day, across service areas' newest first."""
    published = db_session.scalar(
        select(DispatchPlan)
        .where(DispatchPlan.plan_date == day, DispatchPlan.status == "published")
        .order_by(DispatchPlan.id.desc())
        .limit(1)
    )
    draft = db_session.scalar(
        select(DispatchPlan)
        .where(DispatchPlan.plan_date == day, DispatchPlan.status == "draft")
        .order_by(DispatchPlan.id.desc())
        .limit(1)
    )
    if draft is not None and published is not None and draft.id < published.id:
        draft = None
    return published or draft, draft


def _visit_index(plan: DispatchPlan | None) -> dict[int, tuple[int, dict[str, Any]]]:
    """order id -> (technician id, the plan's visit) for a plan's routes."""
    if plan is None:
        return {}
    return {v["order_id"]: (r["technician_id"], v) for r in plan.routes for v in r["visits"]}


def _crew_state(
    row: Row, now: dt.datetime, last_sync: dt.datetime | None, position: tuple[float, float] | None
) -> CrewState:
    live = [s for s in row.stops if not s.draft]
    on_site = next((s for s in live if s.status == OrderStatus.ON_SITE.value), None)
    en_route = next((s for s in live if s.status == OrderStatus.EN_ROUTE.value), None)
    open_stops = [s for s in live if s.status in (OrderStatus.ASSIGNED.value, OrderStatus.DISPATCHED.value)]
    in_shift = row.shift_start <= now <= row.shift_end + dt.timedelta(hours=2)
    if on_site is not None:
        state = CrewState("on site", f"#{on_site.order_id} {on_site.address}")
    elif en_route is not None:
        state = CrewState("en route", f"to #{en_route.order_id} {en_route.address}")
    elif not in_shift:
        state = CrewState("off shift")
    elif open_stops:
        state = CrewState("idle", f"next #{open_stops[0].order_id} {open_stops[0].address}")
    elif live:
        state = CrewState("done for the day")
    else:
        state = CrewState("no work")
    due = [s for s in live if s.status in (OrderStatus.DISPATCHED.value, OrderStatus.EN_ROUTE.value)]
    due.sort(key=lambda s: s.arrival_at or now)
    if due and due[0].arrival_at is not None and on_site is None and now - due[0].arrival_at > BEHIND_AFTER:
        state.behind_min = int((now - due[0].arrival_at).total_seconds() // 60)
    if row.shift_start <= now <= row.shift_end:
        since = last_sync if last_sync is not None and last_sync > row.shift_start else row.shift_start
        if now - since > SYNC_STALE_AFTER:
            state.unsynced_min = int((now - since).total_seconds() // 60)
    state.position = position
    return state


def build_board(*, db_session: Session, day: dt.date, now: dt.datetime, zone: ZoneInfo) -> Board:
    """The day's rows: each active CSFR's stops (dispatched orders, or the draft's routes before publishing)."""
    plan, draft = plans_of_day(db_session=db_session, day=day)
    techs = list(
        db_session.scalars(select(Technician).where(Technician.active.is_(True)).order_by(Technician.code))
    )
    rows: dict[int, Row] = {}
    for i, tech in enumerate(techs):
        rows[tech.id] = Row(
            technician=tech,
            colour=colour(i),
            shift_start=_local(day, tech.shift_start, zone),
            shift_end=_local(day, tech.shift_end, zone),
        )
    visits = _visit_index(plan)
    shown_plan_routes = {r["technician_id"]: r for r in plan.routes} if plan is not None else {}
    live = db_session.execute(
        select(WorkOrder, ServicePoint)
        .join(ServicePoint, ServicePoint.id == WorkOrder.service_point_id)
        .where(
            WorkOrder.scheduled_date == day,
            WorkOrder.technician_id.is_not(None),
            WorkOrder.status.in_([s.value for s in (*ON_ROUTE, *WAITING)]),
        )
    ).all()
    seen: set[int] = set()
    for order, sp in live:
        row = rows.get(order.technician_id or -1)
        if row is None:
            continue
        if order.status in (s.value for s in WAITING):
            row.waiting.append(order.id)
            continue
        seen.add(order.id)
        planned = visits.get(order.id)
        row.stops.append(
            StopView(
                order_id=order.id,
                order_type=order.order_type,
                priority=order.priority,
                status=order.status,
                address=sp.address,
                lat=sp.lat,
                lon=sp.lon,
                arrival_at=order.planned_arrival_at,
                minutes=order.estimated_minutes,
                travel_s=planned[1]["travel_s"] if planned and planned[0] == order.technician_id else 0,
                locked=order.locked,
                version=order.version,
                window_start=order.window_start,
                window_end=order.window_end,
                carried_over=order.original_scheduled_date is not None,
            )
        )
    if plan is not None and plan.status == "draft":
        # Nothing dispatched yet: preview the draft's routes, marked as such.
        ids = [oid for oid in visits if oid not in seen]
        orders = {
            o.id: (o, sp)
            for o, sp in db_session.execute(
                select(WorkOrder, ServicePoint)
                .join(ServicePoint, ServicePoint.id == WorkOrder.service_point_id)
                .where(WorkOrder.id.in_(ids))
            )
        }
        for oid in ids:
            tech_id, visit = visits[oid]
            found = orders.get(oid)
            row = rows.get(tech_id)
            if found is None or row is None:
                continue
            order, sp = found
            row.stops.append(
                StopView(
                    order_id=oid,
                    order_type=order.order_type,
                    priority=order.priority,
                    status=order.status,
                    address=sp.address,
                    lat=sp.lat,
                    lon=sp.lon,
                    arrival_at=dt.datetime.fromisoformat(visit["arrival_at"]),
                    minutes=order.estimated_minutes,
                    travel_s=visit["travel_s"],
                    locked=order.locked,
                    version=order.version,
                    carried_over=bool(visit.get("carried_over")),
                    window_start=order.window_start,
                    window_end=order.window_end,
                    draft=True,
                )
            )
    for tech_id, route in shown_plan_routes.items():
        row = rows.get(tech_id)
        if row is None:
            continue
        row.travel_s = route["travel_s"]
        row.overtime_s = route["overtime_s"]
        for b in route["breaks"]:
            start = dt.datetime.fromisoformat(b["start_at"])
            row.breaks.append((start, start + dt.timedelta(seconds=b["duration_s"])))
    last_sync = _last_sync(db_session, techs)
    positions = _positions(db_session, techs, day)
    for row in rows.values():
        row.stops.sort(key=lambda s: (s.arrival_at is None, s.arrival_at or now, s.order_id))
        row.state = _crew_state(row, now, last_sync.get(row.technician.id), positions.get(row.technician.id))
    starts = [r.shift_start for r in rows.values()] or [_local(day, dt.time(7), zone)]
    ends = [r.shift_end for r in rows.values()] or [_local(day, dt.time(17), zone)]
    for row in rows.values():
        for stop in row.stops:
            if stop.departure_at is not None:
                ends.append(stop.departure_at)
            if stop.arrival_at is not None:
                starts.append(stop.arrival_at)
    start = min(starts).astimezone(zone).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=0)
    end = max(ends).astimezone(zone).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    return Board(
        day=day,
        now=now,
        zone=zone,
        plan=plan,
        draft=draft,
        rows=list(rows.values()),
        start=start.astimezone(dt.UTC),
        end=end.astimezone(dt.UTC),
    )


def _last_sync(db_session: Session, techs: list[Technician]) -> dict[int, dt.datetime]:
    """Technician id -> when their tablet's newest document reached the server."""
    from server.sync.service import database_for

    by_db = {database_for(t): t.id for t in techs}
    rows = db_session.execute(
        select(FieldResult.database, func.max(FieldResult.received_at))
        .where(FieldResult.database.in_(list(by_db)))
        .group_by(FieldResult.database)
    )
    return {by_db[name]: at for name, at in rows if at is not None}


def _positions(db_session: Session, techs: list[Technician], day: dt.date) -> dict[int, tuple[float, float]]:
    """Technician id -> the last place they reached today (on site or finished), else where they start."""
    out: dict[int, tuple[float, float]] = {}
    for t in techs:
        if t.start_at_home and t.home_lat is not None and t.home_lon is not None:
            out[t.id] = (t.home_lat, t.home_lon)
        else:
            out[t.id] = (t.depot_lat, t.depot_lon)
    reached = db_session.execute(
        select(WorkOrder.technician_id, ServicePoint.lat, ServicePoint.lon)
        .join(ServicePoint, ServicePoint.id == WorkOrder.service_point_id)
        .where(
            WorkOrder.scheduled_date == day,
            WorkOrder.status.in_(
                [
                    OrderStatus.ON_SITE.value,
                    OrderStatus.COMPLETED.value,
                    OrderStatus.UNABLE_TO_COMPLETE.value,
                ]
            ),
        )
        .order_by(WorkOrder.updated_at)
    )
    for tech_id, lat, lon in reached:
        if tech_id is not None:
            out[tech_id] = (lat, lon)
    return out


def glance(*, db_session: Session, board: Board) -> Glance:
    """Counts of what needs attention on the board's day."""
    closed = [s.value for s in CLOSED_STATUSES]
    due = or_(WorkOrder.scheduled_date.is_(None), WorkOrder.scheduled_date <= board.day)
    emergencies = db_session.scalar(
        select(func.count())
        .select_from(WorkOrder)
        .where(
            WorkOrder.priority == Priority.EMERGENCY.value,
            WorkOrder.status.not_in(closed),
            due,
        )
    )
    day_start = _local(board.day, dt.time(0), board.zone)
    unable = db_session.scalar(
        select(func.count())
        .select_from(WorkOrder)
        .where(
            WorkOrder.status == OrderStatus.UNABLE_TO_COMPLETE.value,
            WorkOrder.completed_at >= day_start - dt.timedelta(days=1),
        )
    )
    awaiting = db_session.scalar(
        select(func.count())
        .select_from(WorkOrder)
        .where(
            WorkOrder.order_type == OrderType.SHUT_OFF_NONPAY.value,
            WorkOrder.review_hold != "",
            WorkOrder.status.not_in(closed),
        )
    )
    behind = sorted(
        ((r.technician.code, r.state.behind_min) for r in board.rows if r.state.behind_min),
        key=lambda x: -x[1],
    )
    return Glance(
        emergencies=emergencies or 0,
        unassigned=count_work(db_session=db_session, day=board.day),
        behind=behind,
        unable=unable or 0,
        shutoffs_awaiting=awaiting or 0,
    )


def _work_query(day: dt.date):  # type: ignore[no-untyped-def]
    return (
        select(WorkOrder, ServicePoint, Account.account_number)
        .join(ServicePoint, ServicePoint.id == WorkOrder.service_point_id)
        .outerjoin(Account, Account.id == WorkOrder.account_id)
        .where(
            or_(WorkOrder.scheduled_date.is_(None), WorkOrder.scheduled_date <= day),
            or_(
                WorkOrder.status.in_([s.value for s in WAITING]),
                WorkOrder.status == OrderStatus.UNABLE_TO_COMPLETE.value,
            ),
        )
    )


def count_work(*, db_session: Session, day: dt.date) -> int:
    """How many orders wait for a CSFR on `day` (the work list without filters)."""
    query = _work_query(day).where(WorkOrder.review_hold == "")
    return db_session.scalar(select(func.count()).select_from(query.subquery())) or 0


# The planner's reasons (routing.UnassignedReason, dispatch's skips) as a dispatcher reads them.
REASONS = {
    "no_skilled_technician": "no CSFR on shift has every skill it needs",
    "window_unreachable": "no skilled CSFR can reach its appointment window within the shift",
    "over_capacity": "more work than the skilled CSFRs can do today",
    "skill_short": "every CSFR with the skill is full while others have time",
    "not_worth_overtime": "fits only in overtime, which costs more than it is worth",
    "not_worth_travel": "fits in a shift, but the drive costs more than it is worth",
    "day_full": "every CSFR who could do it is full, overtime included",
    "carry_over_not_included": "due on an earlier day; carry-over was not included in the plan",
    "on_hold": "on hold (a medical certificate or dispute on the account)",
    "appointment_on_another_day": "its appointment is on another day",
    "locked_to_unavailable_technician": "pinned to a CSFR who is not on shift",
}


def work_list(
    *,
    db_session: Session,
    day: dt.date,
    plan: DispatchPlan | None,
    text: str = "",
    order_type: str = "",
    area: str = "",
    include_held: bool = False,
) -> tuple[list[WorkItem], int]:
    """Orders waiting for a CSFR on `day` (new, scheduled, sent back unable), filtered; and how many match."""
    query = _work_query(day)
    if not include_held:
        query = query.where(WorkOrder.review_hold == "")
    if order_type:
        query = query.where(WorkOrder.order_type == order_type)
    if area:
        query = query.where(ServicePoint.service_area == area)
    words = text.strip()
    if words:
        like = f"%{words.lower()}%"
        conditions: list[ColumnElement[bool]] = [
            func.lower(ServicePoint.address).like(like),
            func.lower(Account.account_number).like(like),
            func.lower(WorkOrder.order_type).like(like.replace(" ", "_")),
        ]
        if re.fullmatch(r"#?\d+", words):
            conditions.append(WorkOrder.id == int(words.lstrip("#")))
        query = query.where(or_(*conditions))
    total = db_session.scalar(select(func.count()).select_from(query.subquery())) or 0
    # Most urgent first: emergencies, then restores, ...; then the oldest.
    rank = {p.value: i for i, p in enumerate(Priority)}
    rows = list(db_session.execute(query.order_by(WorkOrder.id).limit(2000)).all())
    rows.sort(key=lambda r: (rank.get(r[0].priority, 99), r[0].scheduled_date or day, r[0].id))
    # The plan's own words for a left-out order (`detail`, written by dispatch) when it has them; else
    # the reason code in words here.
    planned_reason = (
        {u["order_id"]: u.get("detail") or REASONS.get(u["reason"], u["reason"]) for u in plan.unassigned}
        if plan is not None
        else {}
    )
    techs = {tid: code for tid, code in db_session.execute(select(Technician.id, Technician.code))}
    items = []
    for order, sp, account_number in rows[:WORK_LIST_LIMIT]:
        items.append(
            WorkItem(
                order_id=order.id,
                order_type=order.order_type,
                priority=order.priority,
                status=order.status,
                address=sp.address,
                service_area=sp.service_area,
                account_number=account_number or "",
                window_start=order.window_start,
                window_end=order.window_end,
                reason=_reason(order, planned_reason.get(order.id), day),
                version=order.version,
                scheduled_date=order.scheduled_date,
                carried_from=(order.original_scheduled_date or order.scheduled_date)
                if order.scheduled_date is not None and order.scheduled_date < day
                else None,
                pinned_to=techs.get(order.technician_id, "") if order.technician_id else "",
                hold=order.review_hold,
            )
        )
    return items, total


def _reason(order: WorkOrder, planned: str | None, day: dt.date) -> str:
    if order.review_hold:
        return f"held: {order.review_hold}"
    if order.status == OrderStatus.UNABLE_TO_COMPLETE.value:
        code = order.outcome.get("unable_code", "")
        return f"sent back unable to complete ({code.replace('_', ' ')})" + (
            f": {order.status_reason}" if order.status_reason else ""
        )
    if planned is not None:
        return planned.replace("_", " ")
    if order.status_reason:
        return order.status_reason
    if order.technician_id is not None:
        return "pinned to a CSFR; plan or re-plan to put it on the route"
    return "not planned yet"


def areas(*, db_session: Session) -> list[str]:
    """Service areas with service points."""
    return [a for a in db_session.scalars(select(ServicePoint.service_area).distinct()) if a]


@dataclass
class OrderFile:
    """Everything the drawer shows about one order."""

    order: WorkOrder
    service_point: ServicePoint
    account: Account | None
    customer: Customer | None
    balance: Balance | None
    technician: Technician | None
    audit: list[AuditEvent]
    history: list[WorkOrder]
    field: list[FieldResult]


def order_file(*, db_session: Session, order: WorkOrder) -> OrderFile:
    """The order's account facts, hazards, history at the same address, field documents and audit trail."""
    sp = db_session.get(ServicePoint, order.service_point_id)
    assert sp is not None
    account = db_session.get(Account, order.account_id) if order.account_id else None
    return OrderFile(
        order=order,
        service_point=sp,
        account=account,
        customer=db_session.get(Customer, account.customer_id) if account else None,
        balance=db_session.get(Balance, account.id) if account else None,
        technician=db_session.get(Technician, order.technician_id) if order.technician_id else None,
        audit=list(
            db_session.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity_type == "work_order", AuditEvent.entity_id == str(order.id))
                .order_by(AuditEvent.id.desc())
                .limit(30)
            )
        ),
        history=list(
            db_session.scalars(
                select(WorkOrder)
                .where(WorkOrder.service_point_id == sp.id, WorkOrder.id != order.id)
                .order_by(WorkOrder.id.desc())
                .limit(10)
            )
        ),
        field=list(
            db_session.scalars(
                select(FieldResult)
                .where(FieldResult.order_id == order.id)
                .order_by(FieldResult.received_at.desc())
                .limit(10)
            )
        ),
    )


def last_change(*, db_session: Session, order_id: int) -> AuditEvent | None:
    """The newest audit event of an order: who changed it last, and when."""
    return db_session.scalar(
        select(AuditEvent)
        .where(AuditEvent.entity_type == "work_order", AuditEvent.entity_id == str(order_id))
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )


def window_problem(order: WorkOrder, arrival: dt.datetime) -> str | None:
    """Why arriving at `arrival` misses the order's appointment window, or None when it fits (or has none)."""
    if order.window_start is None or order.window_end is None:
        return None
    end = arrival + dt.timedelta(minutes=order.estimated_minutes)
    if arrival < order.window_start or end > order.window_end:
        return "outside its appointment window"
    return None


@dataclass
class MapData:
    """What the map draws: streets (when there is no tile server), routes, unassigned work, crew positions."""

    routes: list[dict[str, Any]]
    unassigned: list[dict[str, Any]]
    crew: list[dict[str, Any]]
    bounds: list[list[float]]


def map_data(*, db_session: Session, board: Board, work: list[WorkItem]) -> MapData:
    """Routes in their CSFR's colour with stops by status, unassigned work, each CSFR's last place."""
    routes: list[dict[str, Any]] = []
    crew: list[dict[str, Any]] = []
    points: list[list[float]] = []
    for row in board.rows:
        stops = [
            {
                "id": s.order_id,
                "lat": s.lat,
                "lon": s.lon,
                "status": "draft" if s.draft else s.status,
                "label": f"#{s.order_id} {s.order_type.replace('_', ' ')}, {s.address}",
            }
            for s in row.stops
        ]
        if stops:
            routes.append({"technician": row.technician.code, "colour": row.colour, "stops": stops})
            points.extend([s.lat, s.lon] for s in row.stops)
        if row.state.position is not None:
            crew.append(
                {
                    "technician": row.technician.code,
                    "colour": row.colour,
                    "lat": row.state.position[0],
                    "lon": row.state.position[1],
                    "state": row.state.label,
                }
            )
    ids = [w.order_id for w in work]
    places = dict(
        (oid, (lat, lon))
        for oid, lat, lon in db_session.execute(
            select(WorkOrder.id, ServicePoint.lat, ServicePoint.lon)
            .join(ServicePoint, ServicePoint.id == WorkOrder.service_point_id)
            .where(WorkOrder.id.in_(ids))
        )
    )
    unassigned = [
        {
            "id": w.order_id,
            "lat": places[w.order_id][0],
            "lon": places[w.order_id][1],
            "label": f"#{w.order_id} {w.order_type.replace('_', ' ')}, {w.address}: {w.reason}",
        }
        for w in work
        if w.order_id in places
    ]
    points.extend([places[w.order_id][0], places[w.order_id][1]] for w in work if w.order_id in places)
    points.extend([row.state.position[0], row.state.position[1]] for row in board.rows if row.state.position)
    if not points:
        extent = db_session.execute(
            select(
                func.min(ServicePoint.lat),
                func.min(ServicePoint.lon),
                func.max(ServicePoint.lat),
                func.max(ServicePoint.lon),
            )
        ).one()
        points = (
            [[extent[0], extent[1]], [extent[2], extent[3]]]
            if extent[0] is not None
            else [[0.0, 0.0], [0.0, 0.0]]
        )
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    return MapData(
        routes=routes,
        unassigned=unassigned,
        crew=crew,
        bounds=[[min(lats), min(lons)], [max(lats), max(lons)]],
    )


_HOUSE_NUMBER = re.compile(r"^\s*\d+[A-Za-z]?\s+")


def streets(*, db_session: Session) -> list[list[list[float]]]:
    """The district's streets drawn from its own geometry: for each street name, a line through its
    service points in order along the street (smoothed in bins), so the map is never blank without tiles."""
    count, newest = db_session.execute(select(func.count(ServicePoint.id), func.max(ServicePoint.id))).one()
    return _streets_cached(db_session, count or 0, newest or 0)


def _streets_cached(db_session: Session, count: int, newest: int) -> list[list[list[float]]]:
    key = (str(db_session.get_bind().engine.url), count, newest)
    cached = _STREETS.get(key)
    if cached is None:
        cached = _compute_streets(db_session)
        _STREETS.clear()
        _STREETS[key] = cached
    return cached


_STREETS: dict[tuple[str, int, int], list[list[list[float]]]] = {}


def _compute_streets(db_session: Session) -> list[list[list[float]]]:
    by_street: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for address, lat, lon in db_session.execute(
        select(ServicePoint.address, ServicePoint.lat, ServicePoint.lon)
    ):
        name = _HOUSE_NUMBER.sub("", address or "").strip().lower()
        if name:
            by_street[name].append((lat, lon))
    lines = []
    for points in by_street.values():
        if len(points) < 2:
            continue
        lat_span = max(p[0] for p in points) - min(p[0] for p in points)
        lon_span = max(p[1] for p in points) - min(p[1] for p in points)
        axis = 0 if lat_span >= lon_span else 1
        points.sort(key=lambda p: p[axis])
        bins = max(2, min(40, len(points) // 4))
        size = max(1, len(points) // bins)
        line = []
        for i in range(0, len(points), size):
            chunk = points[i : i + size]
            line.append(
                [
                    round(sum(p[0] for p in chunk) / len(chunk), 6),
                    round(sum(p[1] for p in chunk) / len(chunk), 6),
                ]
            )
        if len(line) >= 2:
            lines.append(line)
    return lines


def find_waiting_order(*, db_session: Session, text: str, day: dt.date) -> WorkOrder | None:
    """The order a dispatcher means by `text` (an order number, an account number, or an address) among
    the work waiting on `day`, most urgent first; None when nothing waiting matches."""
    words = text.strip()
    if not words:
        return None
    query = _work_query(day).where(WorkOrder.review_hold == "")
    if re.fullmatch(r"#?\d+", words):
        number = words.lstrip("#")
        query = query.where(or_(WorkOrder.id == int(number), Account.account_number == number))
    else:
        query = query.where(func.lower(ServicePoint.address).like(f"%{words.lower()}%"))
    rank = {p.value: i for i, p in enumerate(Priority)}
    rows = list(db_session.execute(query.limit(200)).all())
    rows.sort(key=lambda r: (rank.get(r[0].priority, 99), r[0].id))
    return rows[0][0] if rows else None


@dataclass
class Change:
    """How a draft differs from the plan in force for one order."""

    order_id: int
    from_code: str
    to_code: str
    from_at: dt.datetime | None
    to_at: dt.datetime | None


def plan_changes(*, before: DispatchPlan, after: DispatchPlan, shift_min: int = 5) -> list[Change]:
    """Orders a draft moves to another CSFR, or by more than `shift_min` minutes, against the plan in force."""
    old = {v["order_id"]: (r["technician_code"], v["arrival_at"]) for r in before.routes for v in r["visits"]}
    out = []
    for route in after.routes:
        for visit in route["visits"]:
            was = old.get(visit["order_id"])
            now_at = dt.datetime.fromisoformat(visit["arrival_at"])
            if was is None:
                out.append(Change(visit["order_id"], "", route["technician_code"], None, now_at))
                continue
            then_at = dt.datetime.fromisoformat(was[1])
            if was[0] != route["technician_code"] or abs((now_at - then_at).total_seconds()) > shift_min * 60:
                out.append(Change(visit["order_id"], was[0], route["technician_code"], then_at, now_at))
    return out


def default_day(*, db_session: Session, today: dt.date, look_ahead_days: int = 14) -> dt.date:
    """The day the board opens on: today when it has work or a plan, else the next day with work scheduled
    (a weekend or holiday opens on the next working day's orders), else today."""
    has_today = db_session.scalar(
        select(func.count()).select_from(WorkOrder).where(WorkOrder.scheduled_date == today)
    ) or db_session.scalar(
        select(func.count()).select_from(DispatchPlan).where(DispatchPlan.plan_date == today)
    )
    if has_today:
        return today
    later = db_session.scalar(
        select(func.min(WorkOrder.scheduled_date)).where(
            WorkOrder.scheduled_date > today,
            WorkOrder.scheduled_date <= today + dt.timedelta(days=look_ahead_days),
            WorkOrder.status.not_in([s.value for s in CLOSED_STATUSES]),
        )
    )
    return later or today
