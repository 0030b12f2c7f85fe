"""Sync routes: a CSFR's tablet asks where and how to replicate; staff see the state of sync."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter
from sqlalchemy import func, select

from contracts.codes import Role
from server.config import Settings
from server.deps import AppSettings, CurrentPrincipal, DbSession, Staff
from server.errors import ApiError, forbidden
from server.sync import service
from server.sync.couch import CouchError
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
    if not tech.active:
        raise forbidden(f"technician {tech.code} is deactivated: their tablet may not sync; ask a dispatcher")
    admin = admin_from(settings)
    if admin is None:
        raise ApiError(503, "sync_off", "this server has no CouchDB configured (COUCHDB_URL)")
    try:
        answer = service.session_for(tech=tech, admin=admin, secret=settings.resolved_secret_key())
        # The tablet shows every time, and decides what "today" is, in the utility's zone.
        if settings.couchdb_public_url:  # CouchDB is not published; tablets reach it through a proxy
            answer["couchdb_url"] = settings.couchdb_public_url.rstrip("/")
        return {**answer, "time_zone": settings.timezone}
    finally:
        admin.close()


@router.get(
    "/status",
    summary="Follower checkpoints, publications, ingested documents and each tablet's open sync problems. Staff.",
)
def sync_status(_: Staff, db_session: DbSession, settings: AppSettings) -> dict[str, Any]:
    checkpoints = list(db_session.scalars(select(SyncCheckpoint).order_by(SyncCheckpoint.database)))
    techs = db_session.scalars(
        select(Technician).where(Technician.active.is_(True)).order_by(Technician.code)
    )
    devices, devices_error = _device_reports([service.database_for(t) for t in techs], settings)
    return {
        "checkpoints": [
            {"database": c.database, "last_seq": c.last_seq, "updated_at": c.updated_at.isoformat()}
            for c in checkpoints
        ],
        "published_orders": db_session.scalar(select(func.count()).select_from(OrderPublication)) or 0,
        "ingested_documents": db_session.scalar(select(func.count()).select_from(FieldResult)) or 0,
        # What tablets could not prove reached the server (or the server refused), as they report it.
        "sync_problems": sum(len(d["problems"]) for d in devices),
        "devices": devices,
        "devices_error": devices_error,
    }


def _device_reports(databases: list[str], settings: Settings) -> tuple[list[dict[str, Any]], str | None]:
    """Each device's report in the CSFR databases; an unreachable CouchDB is an error, not a 500."""
    admin = admin_from(settings)
    if admin is None:
        return [], None
    devices: list[dict[str, Any]] = []
    try:
        for database in databases:
            for device, entry in sorted(admin.sync_report(database).items()):
                devices.append(
                    {
                        "database": database,
                        "device": device,
                        "reported_at": entry.get("reported_at"),
                        "problems": list(entry.get("problems", [])),
                    }
                )
    except (CouchError, httpx.HTTPError) as exc:
        return devices, f"CouchDB could not be read: {exc}"
    finally:
        admin.close()
    return devices, None
