"""Plan a day as a job, publish a plan to the orders, re-plan the rest, insert an emergency."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.codes import OrderStatus
from routing import Location, Plan, Problem, SolveParams, TechnicianState, insert_emergency, replan, solve
from server.accounts.models import ServicePoint
from server.audit.service import record
from server.config import get_settings
from server.db import utcnow
from server.dispatch.models import DispatchPlan
from server.dispatch.problem import PLANNABLE, build, plan_from_json, plan_to_json, present, seconds_of
from server.dispatch.reasons import summary
from server.errors import ApiError, conflict, not_found
from server.jobs.models import Job
from server.jobs.service import Report, handler
from server.orders import lifecycle
from server.orders.lifecycle import Via
from server.orders.models import WorkOrder
from server.orders.policy import current_policy

DEFAULT_TIME_LIMIT_S = 20.0
EMERGENCY_TIME_LIMIT_S = 1.5


def _zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def make_plan(
    *,
    db_session: Session,
    plan_date: dt.date,
    service_area: str,
    time_limit_s: float,
    seed: int,
    actor: str,
    report: Report | None = None,
    include_carry_over: bool | None = None,
) -> DispatchPlan:
    """Solve the day and store the result as a draft plan.

    Open orders due on an earlier day are offered as carried over (flagged, counted) when
    `include_carry_over` says so (None: the policy's `dispatch.include_carry_over`), else only listed.
    """
    note = report or (lambda _d, _t, _m="": None)
    note(0, 3, "gathering orders and technicians")
    carry = current_policy().dispatch.include_carry_over if include_carry_over is None else include_carry_over
    day = build(
        db_session=db_session,
        plan_date=plan_date,
        zone=_zone(),
        service_area=service_area,
        include_carry_over=carry,
    )
    if not day.problem.technicians:
        raise ValueError(f"no active technicians for {plan_date} {service_area or 'in any area'}")
    # End the read transaction before the long solve: on SQLite (WAL) a snapshot held across other
    # connections' commits could not be upgraded to write the plan afterwards.
    db_session.commit()
    note(1, 3, f"solving {len(day.problem.stops)} stops for {len(day.problem.technicians)} technicians")
    params = SolveParams(
        time_limit_s=time_limit_s,
        seed=seed,
        workers=2,
        balance_cost_per_s=current_policy().dispatch.balance_cost_per_s,
    )
    if day.problem.stops:
        plan = solve(day.problem, params)
    else:
        plan = Plan(routes=(), unassigned=(), objective=0, travel_s=0, status="empty")
    note(2, 3, "storing the plan")
    routes, unassigned = present(day, plan)
    row = DispatchPlan(
        plan_date=plan_date,
        service_area=service_area,
        status="draft",
        kind="plan",
        params={"time_limit_s": time_limit_s, "seed": seed, "include_carry_over": carry},
        routes=routes,
        unassigned=unassigned,
        carried_over=len(day.carried),
        order_versions={oid: o.version for oid, o in day.orders.items()},
        solver_plan={**plan_to_json(plan), "summary": summary(day, plan, unassigned)},
        objective=plan.objective,
        travel_s=plan.travel_s,
        solver_status=plan.status,
        created_by=actor,
    )
    db_session.add(row)
    db_session.flush()
    record(
        db_session=db_session,
        actor=actor,
        action="planned",
        entity_type="dispatch_plan",
        entity_id=row.id,
        detail={
            "date": plan_date.isoformat(),
            "area": service_area,
            "stops": len(day.problem.stops),
            "unassigned": len(unassigned),
            "carried_over": len(day.carried),
            "include_carry_over": carry,
        },
    )
    note(3, 3, "done")
    return row


@handler("dispatch.plan")
def plan_job(*, db_session: Session, job: Job, report: Report) -> dict[str, Any]:
    """Job handler: plan a date (params: date, service_area, time_limit_s, seed, include_carry_over)."""
    carry = job.params.get("include_carry_over")
    row = make_plan(
        db_session=db_session,
        plan_date=dt.date.fromisoformat(job.params["date"]),
        service_area=job.params.get("service_area", ""),
        time_limit_s=float(job.params.get("time_limit_s", DEFAULT_TIME_LIMIT_S)),
        seed=int(job.params.get("seed", 0)),
        actor=job.created_by,
        report=report,
        include_carry_over=None if carry is None else bool(carry),
    )
    return {
        "plan_id": row.id,
        "routes": len(row.routes),
        "unassigned": len(row.unassigned),
        "carried_over": row.carried_over,
    }


def get_plan(*, db_session: Session, plan_id: int) -> DispatchPlan:
    """The plan, or 404."""
    plan = db_session.get(DispatchPlan, plan_id)
    if plan is None:
        raise not_found("plan", plan_id)
    return plan


def publish(*, db_session: Session, plan: DispatchPlan, actor: str) -> dict[str, int]:
    """Write a draft plan onto its orders (technician, sequence, planned arrival) and dispatch them.

    Refuses (409) when any order changed since the plan was made, so a dispatcher's edit is never
    silently overwritten; re-plan and publish the new plan instead.
    """
    if plan.status != "draft":
        raise conflict(f"plan {plan.id} is {plan.status}; only a draft can be published")
    ids = [int(i) for i in plan.order_versions]
    orders = {o.id: o for o in db_session.scalars(select(WorkOrder).where(WorkOrder.id.in_(ids)))}
    changed = sorted(
        oid for oid in ids if oid not in orders or orders[oid].version != plan.order_versions[str(oid)]
    )
    if changed:
        raise conflict(
            f"order(s) {', '.join(map(str, changed[:20]))} changed since plan {plan.id} was made; re-plan first",
            code="stale_plan",
        )
    dispatched = 0
    reassigned = 0
    carried = 0
    plannable = {st.value for st in PLANNABLE}
    for route in plan.routes:
        for visit in route["visits"]:
            order = orders.get(visit["order_id"])
            if order is None or order.status not in plannable:
                continue  # done or in progress: it stays as it is
            if order.scheduled_date is not None and order.scheduled_date < plan.plan_date:
                carry_over(db_session=db_session, order=order, to_date=plan.plan_date, plan=plan, actor=actor)
                carried += 1
            # The lifecycle refuses (409) an order held since the plan was made: nothing is half-applied.
            if lifecycle.dispatch(
                db_session=db_session,
                order=order,
                technician_id=route["technician_id"],
                route_sequence=visit["sequence"],
                planned_arrival_at=dt.datetime.fromisoformat(visit["arrival_at"]),
                plan_date=plan.plan_date,
                actor=actor,
                via=Via.DISPATCH,
                reason=f"plan {plan.id} published",
            ):
                reassigned += 1
            dispatched += 1
    for item in plan.unassigned:
        order = orders.get(item["order_id"])
        if order is None:
            continue
        lifecycle.take_back(
            db_session=db_session,
            order=order,
            actor=actor,
            via=Via.DISPATCH,
            reason=f"not planned for {plan.plan_date}: {item['reason']}",
        )
    for other in db_session.scalars(
        select(DispatchPlan).where(
            DispatchPlan.plan_date == plan.plan_date,
            DispatchPlan.status == "published",
            DispatchPlan.service_area == plan.service_area,
        )
    ):
        other.status = "superseded"
    plan.status = "published"
    plan.published_at = utcnow()
    record(
        db_session=db_session,
        actor=actor,
        action="published",
        entity_type="dispatch_plan",
        entity_id=plan.id,
        detail={
            "dispatched": dispatched,
            "reassigned": reassigned,
            "unassigned": len(plan.unassigned),
            "carried_over": carried,
        },
    )
    db_session.flush()
    return {
        "dispatched": dispatched,
        "reassigned": reassigned,
        "unassigned": len(plan.unassigned),
        "carried_over": carried,
    }


def carry_over(
    *, db_session: Session, order: WorkOrder, to_date: dt.date, plan: DispatchPlan, actor: str
) -> None:
    """Re-date an overdue order to the day a published plan does it: the day it was first due is kept
    (`original_scheduled_date`) and the move is in the audit log."""
    from_date = order.scheduled_date
    if order.original_scheduled_date is None:
        order.original_scheduled_date = from_date
    record(
        db_session=db_session,
        actor=actor,
        action="carried_over",
        entity_type="work_order",
        entity_id=order.id,
        detail={
            "from": from_date.isoformat() if from_date else None,
            "to": to_date.isoformat(),
            "original_date": order.original_scheduled_date.isoformat()
            if order.original_scheduled_date
            else None,
            "plan_id": plan.id,
        },
    )


def _states(
    db_session: Session, plan: DispatchPlan, now: dt.datetime, zone: ZoneInfo
) -> dict[str, TechnicianState]:
    """Where each technician is now: after their last finished or current order, or at the start."""
    now_s = seconds_of(now, plan.plan_date, zone)
    states: dict[str, TechnicianState] = {}
    for route in plan.routes:
        done: list[str] = []
        location = None
        available = now_s
        for visit in route["visits"]:
            order = db_session.get(WorkOrder, visit["order_id"])
            if order is None:
                continue
            if order.status in (
                OrderStatus.COMPLETED.value,
                OrderStatus.UNABLE_TO_COMPLETE.value,
                OrderStatus.ON_SITE.value,
                OrderStatus.EN_ROUTE.value,
            ):
                done.append(str(order.id))
                sp = db_session.get(ServicePoint, order.service_point_id)
                assert sp is not None
                location = Location(sp.lat, sp.lon)
                if order.status in (OrderStatus.ON_SITE.value, OrderStatus.EN_ROUTE.value):
                    # In progress: free when the planned work would end.
                    available = max(
                        available,
                        seconds_of(dt.datetime.fromisoformat(visit["departure_at"]), plan.plan_date, zone),
                    )
        if location is None:
            continue  # not started yet: the solver starts them at their depot or home
        breaks_taken = any(
            seconds_of(dt.datetime.fromisoformat(b["start_at"]), plan.plan_date, zone) < now_s
            for b in route["breaks"]
        )
        states[str(route["technician_id"])] = TechnicianState(
            technician_id=str(route["technician_id"]),
            location=location,
            available_s=available,
            done_stop_ids=tuple(done),
            breaks_taken=breaks_taken,
        )
    return states


def replan_rest(
    *,
    db_session: Session,
    plan: DispatchPlan,
    now: dt.datetime,
    time_limit_s: float,
    seed: int,
    actor: str,
    emergency_order_id: int | None = None,
) -> DispatchPlan:
    """A new draft from a published plan: done and in-progress work stays; the rest (and new work) is re-planned.

    With an emergency order, only that order is inserted and nobody's remaining sequence is reordered.
    """
    if plan.status != "published":
        raise conflict(f"plan {plan.id} is {plan.status}; re-plan from the published plan of the day")
    zone = _zone()
    carry = plan.params.get("include_carry_over")
    day = build(
        db_session=db_session,
        plan_date=plan.plan_date,
        zone=zone,
        service_area=plan.service_area,
        include_carry_over=current_policy().dispatch.include_carry_over if carry is None else bool(carry),
    )
    states = _states(db_session, plan, now, zone)
    now_s = seconds_of(now, plan.plan_date, zone)
    # Two search processes: the job's thread then only waits on them, so an API process that runs jobs
    # in-process keeps answering (OR-Tools holds the interpreter while it searches in-process).
    params = SolveParams(
        time_limit_s=time_limit_s,
        seed=seed,
        workers=2,
        balance_cost_per_s=current_policy().dispatch.balance_cost_per_s,
    )
    done = {sid for st in states.values() for sid in st.done_stop_ids}
    earlier = plan_from_json(plan.solver_plan)
    known = {v.stop_id for r in earlier.routes for v in r.visits} | {u.stop_id for u in earlier.unassigned}
    # The morning's problem is the work the earlier plan knew and is still open; work that arrived
    # since is handed in as new stops. Orders cancelled meanwhile drop out of the earlier sequences.
    morning = [st for st in day.problem.stops if st.id in known]
    arrived = [st for st in day.problem.stops if st.id not in known]
    keep = {st.id for st in morning} | done
    previous = Plan(
        routes=tuple(
            dataclasses.replace(r, visits=tuple(v for v in r.visits if v.stop_id in keep))
            for r in earlier.routes
        ),
        unassigned=tuple(u for u in earlier.unassigned if u.stop_id in keep),
        objective=earlier.objective,
        travel_s=earlier.travel_s,
        status=earlier.status,
    )
    problem = Problem(
        technicians=day.problem.technicians,
        stops=tuple(morning),
        locked=day.problem.locked,
        travel=day.problem.travel,
    )
    if emergency_order_id is not None:
        emergency = next((st for st in arrived if st.id == str(emergency_order_id)), None)
        if emergency is None:
            if str(emergency_order_id) in known:
                raise conflict(f"order {emergency_order_id} is already in plan {plan.id}")
            raise ApiError(
                422, "invalid_request", f"order {emergency_order_id} is not open work for {plan.plan_date}"
            )
        result = insert_emergency(problem, previous, states, now_s, emergency, params).plan
        kind = "emergency"
    else:
        result = replan(problem, previous, states, now_s, params, new_stops=arrived)
        kind = "replan"
    versions = {oid: o.version for oid, o in day.orders.items()}
    # Done and in-progress stops stay on their routes; they are shown, never republished.
    for route in result.routes:
        for visit in route.visits:
            if visit.stop_id not in day.orders:
                kept = db_session.get(WorkOrder, int(visit.stop_id))
                assert kept is not None
                day.orders[visit.stop_id] = kept
    routes, unassigned = present(day, result)
    row = DispatchPlan(
        plan_date=plan.plan_date,
        service_area=plan.service_area,
        status="draft",
        kind=kind,
        params={
            "time_limit_s": time_limit_s,
            "seed": seed,
            "from_plan": plan.id,
            "now": now.isoformat(),
            "include_carry_over": plan.params.get("include_carry_over"),
        },
        routes=routes,
        unassigned=unassigned,
        carried_over=len(day.carried),
        order_versions=versions,
        solver_plan={**plan_to_json(result), "summary": summary(day, result, unassigned)},
        objective=result.objective,
        travel_s=result.travel_s,
        solver_status=result.status,
        created_by=actor,
    )
    db_session.add(row)
    db_session.flush()
    record(
        db_session=db_session,
        actor=actor,
        action=kind,
        entity_type="dispatch_plan",
        entity_id=row.id,
        detail={"from_plan": plan.id, "emergency_order_id": emergency_order_id},
    )
    return row


def published_plan(*, db_session: Session, plan_date: dt.date, service_area: str = "") -> DispatchPlan | None:
    """The plan currently in force for a day and area."""
    return db_session.scalar(
        select(DispatchPlan)
        .where(
            DispatchPlan.plan_date == plan_date,
            DispatchPlan.service_area == service_area,
            DispatchPlan.status == "published",
        )
        .order_by(DispatchPlan.id.desc())
        .limit(1)
    )


def published_or_409(*, db_session: Session, plan_id: int) -> DispatchPlan:
    """The plan, if it is the published plan of its day (a re-plan starts from it), else 404/409."""
    plan = get_plan(db_session=db_session, plan_id=plan_id)
    if plan.status != "published":
        raise conflict(f"plan {plan.id} is {plan.status}; re-plan from the published plan of the day")
    return plan


@handler("dispatch.replan")
def replan_job(*, db_session: Session, job: Job, report: Report) -> dict[str, Any]:
    """Job handler: re-plan the rest of a published day (params: plan_id, now, time_limit_s, seed)."""
    report(0, 2, "re-planning the rest of the day")
    plan = published_or_409(db_session=db_session, plan_id=int(job.params["plan_id"]))
    row = replan_rest(
        db_session=db_session,
        plan=plan,
        now=dt.datetime.fromisoformat(job.params["now"]),
        time_limit_s=float(job.params.get("time_limit_s", DEFAULT_TIME_LIMIT_S)),
        seed=int(job.params.get("seed", 0)),
        actor=job.created_by,
    )
    report(2, 2, "done")
    return {"plan_id": row.id, "routes": len(row.routes), "unassigned": len(row.unassigned)}


@handler("dispatch.emergency")
def emergency_job(*, db_session: Session, job: Job, report: Report) -> dict[str, Any]:
    """Job handler: insert an urgent order into the day's published plan and dispatch it
    (params: plan_id, order_id, now); fails with the reason when nobody can take it."""
    report(0, 2, "inserting the emergency")
    plan = published_or_409(db_session=db_session, plan_id=int(job.params["plan_id"]))
    order_id = int(job.params["order_id"])
    row = replan_rest(
        db_session=db_session,
        plan=plan,
        now=dt.datetime.fromisoformat(job.params["now"]),
        time_limit_s=EMERGENCY_TIME_LIMIT_S,
        seed=0,
        actor=job.created_by,
        emergency_order_id=order_id,
    )
    route = next((r for r in row.routes if any(v["order_id"] == order_id for v in r["visits"])), None)
    if route is None:
        why = next(
            (u.get("detail") or u["reason"] for u in row.unassigned if u["order_id"] == order_id), "no room"
        )
        raise ValueError(f"nobody can take order {order_id} today: {why}")
    publish(db_session=db_session, plan=row, actor=job.created_by)
    report(2, 2, "dispatched")
    return {"plan_id": row.id, "order_id": order_id, "technician_id": route["technician_id"]}
