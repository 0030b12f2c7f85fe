"""Hand-held routes: devices, reading routes, the docking stations' download and upload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from sqlalchemy import func, select

from contracts.handheld import HandheldUpload, RouteRecord, UploadResult
from server.deps import DbSession, Office, Staff, Station
from server.handhelds import service
from server.handhelds.models import HandheldDevice, ReadingRoute, ReadingRouteStop
from server.handhelds.schemas import AssignBody, BuildResultRead, DeviceCreate, DeviceRead, RouteSummary

router = APIRouter(prefix="/api/handhelds", tags=["handhelds"])


@router.post("/devices", response_model=DeviceRead, status_code=201, summary="Register a hand-held. Staff.")
def register_device(body: DeviceCreate, principal: Staff, db_session: DbSession) -> HandheldDevice:
    device = service.register_device(
        db_session=db_session, device_id=body.device_id, name=body.name, actor=principal.name
    )
    db_session.commit()
    return device


@router.get("/devices", response_model=list[DeviceRead], summary="Registered hand-helds. Office roles.")
def list_devices(_: Office, db_session: DbSession) -> list[HandheldDevice]:
    return list(db_session.scalars(select(HandheldDevice).order_by(HandheldDevice.device_id)))


@router.post(
    "/routes/build", response_model=BuildResultRead, summary="(Re)build reading routes from meters. Staff."
)
def build_routes(principal: Staff, db_session: DbSession, cycle: str | None = None) -> BuildResultRead:
    result = service.build_routes(db_session=db_session, actor=principal.name, cycle=cycle)
    db_session.commit()
    return BuildResultRead(routes=result.routes, meters=result.meters)


@router.get(
    "/routes", response_model=list[RouteSummary], summary="Reading routes and where they are. Office roles."
)
def list_routes(_: Office, db_session: DbSession, cycle: str | None = None) -> list[RouteSummary]:
    return [
        RouteSummary.model_validate(row, from_attributes=True)
        for row in service.route_summaries(db_session=db_session, cycle=cycle)
    ]


@router.post(
    "/routes/{route_id}/assign", response_model=RouteSummary, summary="Give a route to a hand-held. Staff."
)
def assign_route(route_id: int, body: AssignBody, principal: Staff, db_session: DbSession) -> RouteSummary:
    assignment = service.assign(
        db_session=db_session, route_id=route_id, device_id=body.device_id, actor=principal.name
    )
    db_session.commit()
    route = db_session.get(ReadingRoute, route_id)
    assert route is not None
    meters = db_session.scalar(select(func.count()).where(ReadingRouteStop.route_id == route_id)) or 0
    return RouteSummary(
        id=route.id,
        route_code=route.route_code,
        cycle=route.cycle,
        meters=meters,
        device_id=body.device_id,
        status=assignment.status,
    )


@router.get(
    "/devices/{device_id}/routes",
    response_model=list[RouteRecord],
    summary="The route records assigned to a hand-held, in walk order. Station.",
)
def download_routes(device_id: str, _: Station, db_session: DbSession) -> list[RouteRecord]:
    records = service.route_records(db_session=db_session, device_id=device_id)
    db_session.commit()
    return records


@router.post(
    "/uploads",
    response_model=UploadResult,
    summary="Reads unloaded from a hand-held; idempotent per batch and per read. Station.",
)
def upload_reads(
    body: HandheldUpload,
    principal: Station,
    db_session: DbSession,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=80)] = None,
) -> UploadResult:
    outcome = service.ingest_upload(
        db_session=db_session,
        device_id=body.device_id,
        reads=body.reads,
        batch_key=idempotency_key,
        station=principal.name,
    )
    # The service took every read in through server.meters.intake (validation, rereads) already.
    db_session.commit()
    return UploadResult(accepted=outcome.accepted, duplicates=outcome.duplicates)
