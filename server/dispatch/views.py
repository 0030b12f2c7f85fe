"""Dispatch routes: plan a day as a job, read plans, publish, re-plan, insert an emergency."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from sqlalchemy import select

from server.accounts.models import ServicePoint
from server.db import utcnow
from server.deps import DbSession, Office, Staff
from server.dispatch import service
from server.dispatch.models import DispatchPlan
from server.dispatch.schemas import EmergencyRequest, JobAccepted, PlanRead, PlanRequest, ReplanRequest
from server.errors import ApiError, conflict
from server.jobs.service import submit
from server.orders.models import WorkOrder
from server.technicians.models import Technician

router = APIRouter(prefix="/api/dispatch", tags=["dispatch"])


@router.post(
    "/plans",
    response_model=JobAccepted,
    status_code=202,
    summary="Plan a date (or a service area) as a background job. Dispatcher, supervisor, admin.",
)
def request_plan(body: PlanRequest, principal: Staff, db_session: DbSession) -> JobAccepted:
    job = submit(
        db_session=db_session,
        kind="dispatch.plan",
        actor=principal.name,
        params={
            "date": body.date.isoformat(),
            "service_area": body.service_area,
            "time_limit_s": body.time_limit_s,
            "seed": body.seed,
            "include_carry_over": body.include_carry_over,
        },
    )
    db_session.commit()
    return JobAccepted(job_id=job.id, status_url=f"/api/jobs/{job.id}")


@router.get("/plans", response_model=list[PlanRead], summary="Plans, newest first. Office roles.")
def list_plans(
    _: Office, db_session: DbSession, date: str | None = None, status: str | None = None
) -> list[DispatchPlan]:
    query = select(DispatchPlan).order_by(DispatchPlan.id.desc()).limit(50)
    if date:
        query = query.where(DispatchPlan.plan_date == date)
    if status:
        query = query.where(DispatchPlan.status == status)
    return list(db_session.scalars(query))


@router.get(
    "/plans/{plan_id}",
    response_model=PlanRead,
    summary="A plan: routes with arrival times, travel, idle, overtime; unassigned work with reasons. Office roles.",
)
def read_plan(plan_id: int, _: Office, db_session: DbSession, response: Response) -> DispatchPlan:
    plan = service.get_plan(db_session=db_session, plan_id=plan_id)
    response.headers["ETag"] = f'"{plan.version}"'
    return plan


@router.post("/plans/{plan_id}/publish", summary="Dispatch a draft plan to its orders (If-Match). Staff.")
def publish_plan(
    plan_id: int,
    principal: Staff,
    db_session: DbSession,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> dict[str, int]:
    plan = service.get_plan(db_session=db_session, plan_id=plan_id)
    if if_match is None:
        raise ApiError(428, "precondition_required", "send If-Match with the plan's ETag")
    if if_match.strip().removeprefix("W/").strip('"') not in {str(plan.version), "*"}:
        raise ApiError(412, "stale_version", f"plan {plan.id} changed since you read it; reload it")
    result = service.publish(db_session=db_session, plan=plan, actor=principal.name)
    db_session.commit()
    return result


@router.post(
    "/plans/{plan_id}/replan",
    response_model=JobAccepted,
    status_code=202,
    summary="Re-plan the rest of a published day as a background job: done and in-progress work stays; "
    "the job's result names the new draft plan. Staff.",
)
def replan_plan(plan_id: int, body: ReplanRequest, principal: Staff, db_session: DbSession) -> JobAccepted:
    plan = service.published_or_409(db_session=db_session, plan_id=plan_id)
    job = submit(
        db_session=db_session,
        kind="dispatch.replan",
        actor=principal.name,
        params={
            "plan_id": plan.id,
            "now": (body.now or utcnow()).isoformat(),
            "time_limit_s": body.time_limit_s,
            "seed": body.seed,
        },
    )
    db_session.commit()
    return JobAccepted(job_id=job.id, status_url=f"/api/jobs/{job.id}")


@router.post(
    "/emergency",
    response_model=JobAccepted,
    status_code=202,
    summary="Insert an urgent order into today's published plan and dispatch it, as a background job "
    "(its result names the new plan and the CSFR; it fails with the reason when nobody can take it). Staff.",
)
def emergency(body: EmergencyRequest, principal: Staff, db_session: DbSession) -> JobAccepted:
    now = body.now or utcnow()
    local_date = now.astimezone(service._zone()).date()
    plan = service.published_plan(db_session=db_session, plan_date=local_date, service_area=body.service_area)
    if plan is None:
        raise conflict(f"no published plan for {local_date}; plan and publish the day first")
    if db_session.get(WorkOrder, body.order_id) is None:
        raise ApiError(422, "invalid_request", f"order {body.order_id} does not exist")
    job = submit(
        db_session=db_session,
        kind="dispatch.emergency",
        actor=principal.name,
        params={"plan_id": plan.id, "order_id": body.order_id, "now": now.isoformat()},
    )
    db_session.commit()
    return JobAccepted(job_id=job.id, status_url=f"/api/jobs/{job.id}")


@router.get(
    "/plans/{plan_id}/positions",
    summary="Where each planned order and technician start is (lat, lon). Office roles.",
)
def plan_positions(plan_id: int, _: Office, db_session: DbSession) -> dict[str, dict[str, list[float]]]:
    plan = service.get_plan(db_session=db_session, plan_id=plan_id)
    ids = [v["order_id"] for r in plan.routes for v in r["visits"]] + [u["order_id"] for u in plan.unassigned]
    rows = db_session.execute(
        select(WorkOrder.id, ServicePoint.lat, ServicePoint.lon)
        .join(ServicePoint, ServicePoint.id == WorkOrder.service_point_id)
        .where(WorkOrder.id.in_(ids))
    )
    techs = db_session.scalars(
        select(Technician).where(Technician.id.in_([r["technician_id"] for r in plan.routes]))
    )
    return {
        "orders": {str(oid): [lat, lon] for oid, lat, lon in rows},
        "technicians": {
            str(t.id): [t.home_lat, t.home_lon]
            if t.start_at_home and t.home_lat is not None
            else [t.depot_lat, t.depot_lon]
            for t in techs
        },
    }
