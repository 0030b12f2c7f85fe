"""Meters and read history: read-only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from contracts.codes import OPEN_STATUSES, Role
from server.auth.service import Principal
from server.deps import DbSession, Office, OfficeOrCsfr
from server.errors import not_found
from server.meters.models import Meter, MeterRead
from server.meters.schemas import MeterOut, MeterReadOut
from server.orders.models import WorkOrder

router = APIRouter(prefix="/api/meters", tags=["meters"])


def _visible_meter(*, db_session: DbSession, meter_id: int, principal: Principal) -> Meter:
    meter = db_session.get(Meter, meter_id)
    if meter is None:
        raise not_found("meter", meter_id)
    if principal.role is Role.CSFR:
        # A CSFR sees meters at premises where they have open work.
        hit = db_session.scalar(
            select(WorkOrder.id).where(
                WorkOrder.service_point_id == meter.service_point_id,
                WorkOrder.technician_id == principal.technician_id,
                WorkOrder.status.in_([s.value for s in OPEN_STATUSES]),
            )
        )
        if hit is None:
            raise not_found("meter", meter_id)
    return meter


@router.get("", response_model=list[MeterOut], summary="Find meters by serial or premise. Office roles.")
def list_meters(
    _: Office,
    db_session: DbSession,
    serial: str | None = None,
    service_point_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Meter]:
    query = select(Meter).order_by(Meter.serial).limit(limit)
    if serial:
        query = query.where(Meter.serial == serial)
    if service_point_id is not None:
        query = query.where(Meter.service_point_id == service_point_id)
    return list(db_session.scalars(query))


@router.get(
    "/{meter_id}", response_model=MeterOut, summary="Read a meter. Office; a CSFR with open work there."
)
def read_meter(meter_id: int, principal: OfficeOrCsfr, db_session: DbSession) -> Meter:
    return _visible_meter(db_session=db_session, meter_id=meter_id, principal=principal)


@router.get(
    "/{meter_id}/reads",
    response_model=list[MeterReadOut],
    summary="Read history, newest first. Office; a CSFR with open work there.",
)
def list_reads(
    meter_id: int,
    principal: OfficeOrCsfr,
    db_session: DbSession,
    since: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 36,
) -> list[MeterRead]:
    _visible_meter(db_session=db_session, meter_id=meter_id, principal=principal)
    query = select(MeterRead).where(MeterRead.meter_id == meter_id)
    if since is not None:
        query = query.where(MeterRead.read_at >= since)
    return list(db_session.scalars(query.order_by(MeterRead.read_at.desc()).limit(limit)))
