"""Turn the day's orders and technicians into a routing Problem, and solver output back into local times."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from contracts.codes import PRIORITY_RANK, Priority
from routing import (
    Break,
    BreakSlot,
    Location,
    Plan,
    Problem,
    Route,
    Stop,
    Technician,
    TimeWindow,
    Unassigned,
    UnassignedReason,
    Visit,
)
from routing.horizon import assign_days
from server.accounts.models import ServicePoint
from server.dispatch.reasons import HELD_FOR_APPROVAL, skipped_detail, unassigned_entry
from server.dispatch.value import business_days_ahead, due_date, value_of
from server.orders import lifecycle
from server.orders.calendar import Calendar
from server.orders.models import WorkOrder
from server.orders.policy import Policy, current_policy
from server.technicians.models import Technician as TechnicianRow

# Orders a plan may (re)arrange (the lifecycle's): dispatched ones are included so a morning re-plan can
# still move them.
PLANNABLE = lifecycle.PLANNABLE
MAX_OVERTIME_S = 2 * 3600


@dataclass
class DayProblem:
    """A Problem plus what is needed to map its ids and seconds back to rows and times."""

    problem: Problem
    plan_date: dt.date
    zone: ZoneInfo
    orders: dict[str, WorkOrder]
    technicians: dict[str, TechnicianRow]
    skipped: list[dict[str, Any]]  # orders left out before solving, with why
    # Orders due on an earlier day (carried over), planned or not: order id -> the day first due.
    carried: dict[int, dt.date] = dataclasses.field(default_factory=dict)
    # Order id -> its due date, and -> the later day of the look-ahead it is planned for (value.py).
    due: dict[int, dt.date] = dataclasses.field(default_factory=dict)
    planned_for: dict[int, dt.date] = dataclasses.field(default_factory=dict)

    def flags(self, order_id: int) -> dict[str, Any]:
        """`carried_over` and `original_date` of an order, as the plan shows them."""
        original = self.carried.get(order_id)
        return {
            "carried_over": original is not None,
            "original_date": original.isoformat() if original else None,
        }


def carried_from(order: WorkOrder, plan_date: dt.date) -> dt.date | None:
    """The day an order was first due when it is overdue on `plan_date` (carried over), else None."""
    if order.scheduled_date is None or order.scheduled_date >= plan_date:
        return None
    return order.original_scheduled_date or order.scheduled_date


def seconds_of(moment: dt.datetime, day: dt.date, zone: ZoneInfo) -> int:
    """Seconds from local midnight of `day` to `moment` (negative before, >86400 after)."""
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    return int((moment.astimezone(zone) - midnight).total_seconds())


def at_seconds(day: dt.date, seconds: int, zone: ZoneInfo) -> dt.datetime:
    """The UTC moment `seconds` after local midnight of `day`."""
    return (dt.datetime.combine(day, dt.time(0), tzinfo=zone) + dt.timedelta(seconds=seconds)).astimezone(
        dt.UTC
    )


def _tod(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def build(
    *,
    db_session: Session,
    plan_date: dt.date,
    zone: ZoneInfo,
    service_area: str = "",
    include_carry_over: bool = True,
) -> DayProblem:
    """The day's problem: active technicians and every open order due that day, undated, or overdue.

    Overdue orders are carried over: flagged with the day they were first due, and planned only with
    `include_carry_over` (otherwise listed as skipped, reason `carry_over_not_included`).
    """
    policy = current_policy()
    calendar = Calendar.of(policy.calendar)
    tech_query = select(TechnicianRow).where(TechnicianRow.active.is_(True)).order_by(TechnicianRow.code)
    if service_area:
        tech_query = tech_query.where(TechnicianRow.service_area.in_([service_area, ""]))
    techs = list(db_session.scalars(tech_query))
    order_query = (
        select(WorkOrder, ServicePoint)
        .join(ServicePoint, ServicePoint.id == WorkOrder.service_point_id)
        .where(
            WorkOrder.status.in_([s.value for s in PLANNABLE]),
            or_(WorkOrder.scheduled_date.is_(None), WorkOrder.scheduled_date <= plan_date),
        )
        .order_by(WorkOrder.id)
    )
    if service_area:
        order_query = order_query.where(ServicePoint.service_area == service_area)
    technicians = []
    tech_by_id: dict[str, TechnicianRow] = {}
    for t in techs:
        start = (
            Location(t.home_lat, t.home_lon)
            if t.start_at_home and t.home_lat is not None and t.home_lon is not None
            else Location(t.depot_lat, t.depot_lon)
        )
        shift = TimeWindow(_tod(t.shift_start), _tod(t.shift_end))
        breaks: tuple[Break, ...] = ()
        if t.break_minutes > 0:
            earliest = max(_tod(t.break_earliest), shift.start_s)
            latest = max(earliest, min(_tod(t.break_latest), shift.end_s - t.break_minutes * 60))
            breaks = (Break(earliest, latest, t.break_minutes * 60),)
        technicians.append(
            Technician(
                id=str(t.id),
                start=start,
                end=start,
                shift=shift,
                skills=frozenset(t.skills),
                breaks=breaks,
                max_work_s=int(t.max_hours * 3600),
                max_overtime_s=MAX_OVERTIME_S,
                # Cost per second of overtime relative to a second of driving (1): cents/hour over 3000.
                overtime_cost_per_s=max(1, t.overtime_cost_cents_per_hour // 3000),
                overtime_min_s=policy.dispatch.overtime_min_minutes * 60,
            )
        )
        tech_by_id[str(t.id)] = t
    stops: list[Stop] = []
    orders: dict[str, WorkOrder] = {}
    skipped: list[dict[str, Any]] = []
    locked: dict[str, list[tuple[int, str]]] = defaultdict(list)
    carried: dict[int, dt.date] = {}
    # The least overtime can cost once started: work worth less (and not overtime-worthy) never opens it.
    floors = [t.overtime_cost_per_s * t.overtime_min_s for t in technicians]
    overtime_floor = min(floors) if floors and min(floors) > 0 else None
    due: dict[int, dt.date] = {}
    for order, sp in db_session.execute(order_query):
        if order.review_hold:  # a shut-off waits for its batch's approval: listed, never planned
            skipped.append(_skip(order.id, HELD_FOR_APPROVAL, carried_from(order, plan_date)))
            skipped[-1]["detail"] = skipped_detail(HELD_FOR_APPROVAL, order.review_hold)
            continue
        original = carried_from(order, plan_date)
        if original is not None:
            carried[order.id] = original
            if not include_carry_over:
                skipped.append(_skip(order.id, "carry_over_not_included", original))
                continue
        if lifecycle.hold_of(db_session=db_session, order=order, on=plan_date) is not None:
            # e.g. a shut-off whose account has a medical-certificate hold that day: publishing would refuse it.
            skipped.append(_skip(order.id, "on_hold", original))
            continue
        windows: tuple[TimeWindow, ...] = ()
        if order.window_start and order.window_end:
            start_s = seconds_of(order.window_start, plan_date, zone)
            end_s = seconds_of(order.window_end, plan_date, zone)
            if end_s <= 0 or start_s >= 86_400:
                skipped.append(_skip(order.id, "appointment_on_another_day", original))
                continue
            windows = (TimeWindow(max(0, start_s), min(86_400, end_s)),)
        pinned = str(order.technician_id) if order.locked and order.technician_id else None
        if pinned is not None and pinned not in tech_by_id:
            skipped.append(_skip(order.id, "locked_to_unavailable_technician", original))
            continue
        stop = Stop(
            id=str(order.id),
            location=Location(sp.lat, sp.lon),
            service_s=order.estimated_minutes * 60,
            windows=windows,
            required_skills=frozenset(order.required_skills),
            priority=PRIORITY_RANK[Priority(order.priority)],
            pinned_technician=pinned,
            value=_value(order, due, plan_date, policy, calendar, overtime_floor),
        )
        stops.append(stop)
        orders[stop.id] = order
        if pinned is not None and order.route_sequence is not None:
            locked[pinned].append((order.route_sequence, stop.id))
    planned_for = _look_ahead(stops, technicians, due, plan_date, policy, calendar)
    stops = [
        dataclasses.replace(s, value=max(1, int((s.value or 1) * policy.dispatch.later_share)))
        if int(s.id) in planned_for and s.pinned_technician is None
        else s
        for s in stops
    ]
    problem = Problem(
        technicians=tuple(technicians),
        stops=tuple(stops),
        locked={tech: tuple(sid for _, sid in sorted(seq)) for tech, seq in locked.items() if len(seq) > 0},
    )
    return DayProblem(
        problem=problem,
        plan_date=plan_date,
        zone=zone,
        orders=orders,
        technicians=tech_by_id,
        skipped=skipped,
        carried=carried,
        due=due,
        planned_for=planned_for,
    )


def _value(
    order: WorkOrder,
    due: dict[int, dt.date],
    plan_date: dt.date,
    policy: Policy,
    calendar: Calendar,
    overtime_floor: int | None,
) -> int:
    """The order's value in today's plan (value.py), recording its due date in `due`."""
    due[order.id] = due_date(order, policy=policy, calendar=calendar, today=plan_date)
    return value_of(
        order,
        due=due[order.id],
        plan_date=plan_date,
        policy=policy,
        calendar=calendar,
        overtime_floor=overtime_floor,
    )


def _look_ahead(
    stops: list[Stop],
    technicians: list[Technician],
    due: dict[int, dt.date],
    plan_date: dt.date,
    policy: Policy,
    calendar: Calendar,
) -> dict[int, dt.date]:
    """Order id -> the later day the look-ahead plans it for (orders it keeps today are not listed)."""
    days = business_days_ahead(calendar, plan_date, policy.dispatch.look_ahead_days)
    if len(days) < 2 or not stops or not technicians:
        return {}
    due_day = {
        s.id: calendar.business_days_between(plan_date, due[int(s.id)]) if due[int(s.id)] > plan_date else 0
        for s in stops
    }
    # Appointments and pinned work belong to today whatever the look-ahead says.
    free = [s for s in stops if not s.windows and s.pinned_technician is None]
    result = assign_days([technicians] * len(days), free, due_day)
    return {int(sid): days[d] for sid, d in result.day_of.items() if d > 0 and sid not in result.late}


def _skip(order_id: int, reason: str, original: dt.date | None) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "reason": reason,
        "carried_over": original is not None,
        "original_date": original.isoformat() if original else None,
    }


def present(day: DayProblem, plan: Plan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Routes and unassigned work in the shape people read: local times, order ids, reasons."""
    zone, date = day.zone, day.plan_date

    def iso(seconds: int) -> str:
        return at_seconds(date, seconds, zone).isoformat()

    routes = []
    for route in plan.routes:
        tech = day.technicians[route.technician_id]
        routes.append(
            {
                "technician_id": tech.id,
                "technician_code": tech.code,
                "technician_name": tech.name,
                "start_at": iso(route.start_s),
                "end_at": iso(route.end_s),
                "travel_s": route.travel_s,
                "idle_s": route.idle_s,
                "overtime_s": route.overtime_s,
                "visits": [
                    {
                        "order_id": int(v.stop_id),
                        "sequence": i + 1,
                        "arrival_at": iso(v.arrival_s),
                        "start_at": iso(v.start_s),
                        "departure_at": iso(v.departure_s),
                        "travel_s": v.travel_s,
                        "order_type": day.orders[v.stop_id].order_type,
                        "priority": day.orders[v.stop_id].priority,
                        **day.flags(int(v.stop_id)),
                    }
                    for i, v in enumerate(route.visits)
                ],
                "breaks": [{"start_at": iso(b.start_s), "duration_s": b.duration_s} for b in route.breaks],
            }
        )
    unassigned = [{**unassigned_entry(day, u), **day.flags(int(u.stop_id))} for u in plan.unassigned]
    return routes, unassigned + day.skipped


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """routing.Plan as plain JSON (seconds)."""
    return dataclasses.asdict(plan)


def plan_from_json(data: dict[str, Any]) -> Plan:
    """The inverse of plan_to_json."""
    routes = tuple(
        Route(
            technician_id=r["technician_id"],
            start_s=r["start_s"],
            end_s=r["end_s"],
            visits=tuple(Visit(**v) for v in r["visits"]),
            breaks=tuple(BreakSlot(**b) for b in r["breaks"]),
            travel_s=r["travel_s"],
            idle_s=r["idle_s"],
            overtime_s=r["overtime_s"],
        )
        for r in data["routes"]
    )
    unassigned = tuple(
        Unassigned(
            stop_id=u["stop_id"],
            reason=UnassignedReason(u["reason"]),
            detail=u.get("detail", ""),
            technician_ids=tuple(u.get("technician_ids", ())),
            skills=tuple(u.get("skills", ())),
            short_s=u.get("short_s", 0),
            crew_size=u.get("crew_size", 0),
            window=tuple(u["window"]) if u.get("window") else None,  # type: ignore[arg-type]
        )
        for u in data["unassigned"]
    )
    return Plan(
        routes=routes,
        unassigned=unassigned,
        objective=data["objective"],
        travel_s=data["travel_s"],
        status=data["status"],
    )
