"""Sync routes: a CSFR's tablet asks where and how to replicate; staff see the state of sync."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from contracts.codes import Role
from server.deps import AppSettings, CurrentPrincipal, DbSession, Staff
from server.errors import ApiError, forbidden
from server.sync import service
from server.sync.models import FieldResult, OrderPublication, SyncCheckpoint
from server.sync.runner import admin_from
from server.technicians.models import Technician

router = APIRouter(prefix="/api/sync", tags=["sync"])


@router.get(
    "/session",
    summary="CouchDB URL, database, credentials and the utility's time zone for the caller's tablet. CSFR.",
)
def sync_session(principal: CurrentPrincipal, db_session: DbSession, settings: AppSettings) -> dict[str, Any]:
    if principal.role is not Role.CSFR:
        raise forbidden("only a CSFR's tablet replicates; other roles use the API")
    if principal.technician_id is None:
        raise ApiError(409, "no_technician", "this CSFR user is not linked to a technician; ask a dispatcher")
    tech = db_session.get(Technician, principal.technician_id)
    assert tech is not None
    admin = admin_from(settings)
    if admin is None:
        raise ApiError(503, "sync_off", "this server has no CouchDB configured (COUCHDB_URL)")
    try:
        answer = service.session_for(tech=tech, admin=admin, secret=settings.resolved_secret_key())
        # The tablet shows every time, and decides what "today" is, in the utility's zone.
        return {**answer, "time_zone": settings.timezone}
    finally:
        admin.close()


@router.get("/status", summary="Follower checkpoints, publications and ingested documents. Staff.")
def sync_status(_: Staff, db_session: DbSession) -> dict[str, Any]:
    return {
        "checkpoints": [
            {"database": c.database, "last_seq": c.last_seq, "updated_at": c.updated_at.isoformat()}
            for c in db_session.scalars(select(SyncCheckpoint).order_by(SyncCheckpoint.database))
        ],
        "published_orders": db_session.scalar(select(func.count()).select_from(OrderPublication)) or 0,
        "ingested_documents": db_session.scalar(select(func.count()).select_from(FieldResult)) or 0,
    }
