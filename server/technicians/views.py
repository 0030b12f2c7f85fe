"""Technician routes: CRUD for the office, a CSFR reads their own record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from sqlalchemy import select

from contracts.codes import Role
from server.audit.service import record
from server.auth.models import User
from server.auth.service import revoke_access
from server.deps import AppSettings, CurrentPrincipal, DbSession, Office, OfficeOrCsfr, Staff
from server.errors import ApiError, conflict, not_found
from server.technicians.models import Technician
from server.technicians.schemas import TechnicianCreate, TechnicianRead, TechnicianUpdate

router = APIRouter(prefix="/api/technicians", tags=["technicians"])


def valid_technician(technician_id: int, db_session: DbSession, principal: CurrentPrincipal) -> Technician:
    """Path dependency: the technician if the caller may see them (a CSFR only themself), else 404."""
    tech = db_session.get(Technician, technician_id)
    if tech is None or (principal.role is Role.CSFR and tech.id != principal.technician_id):
        raise not_found("technician", technician_id)
    return tech


VisibleTechnician = Annotated[Technician, Depends(valid_technician)]


def _check_dump(body: TechnicianCreate | TechnicianUpdate) -> dict[str, object]:
    data = body.model_dump(exclude_unset=True)
    if data.get("skills") is not None:
        data["skills"] = sorted(str(s) for s in data["skills"])
    return data


@router.get("", response_model=list[TechnicianRead], summary="List technicians. Office roles.")
def list_technicians(_: Office, db_session: DbSession, include_inactive: bool = False) -> list[Technician]:
    query = select(Technician).order_by(Technician.code)
    if not include_inactive:
        query = query.where(Technician.active.is_(True))
    return list(db_session.scalars(query))


@router.post(
    "",
    response_model=TechnicianRead,
    status_code=201,
    summary="Add a technician. Dispatcher, supervisor, admin.",
)
def create_technician(
    body: TechnicianCreate, principal: Staff, db_session: DbSession, response: Response
) -> Technician:
    if db_session.scalar(select(Technician.id).where(Technician.code == body.code)) is not None:
        raise conflict(f"technician code {body.code!r} is taken")
    if body.start_at_home and (body.home_lat is None or body.home_lon is None):
        raise ApiError(
            422,
            "invalid_request",
            "start_at_home needs home_lat and home_lon",
            fields=[{"field": "home_lat", "message": "required when start_at_home"}],
        )
    tech = Technician(**{k: v for k, v in _check_dump(body).items() if v is not None})
    db_session.add(tech)
    db_session.flush()
    record(
        db_session=db_session,
        actor=principal.name,
        action="created",
        entity_type="technician",
        entity_id=tech.id,
        detail={"code": tech.code},
    )
    db_session.commit()
    response.headers["ETag"] = f'"{tech.version}"'
    return tech


@router.get(
    "/{technician_id}", response_model=TechnicianRead, summary="Read a technician. Office; a CSFR themself."
)
def read_technician(tech: VisibleTechnician, _: OfficeOrCsfr, response: Response) -> Technician:
    response.headers["ETag"] = f'"{tech.version}"'
    return tech


@router.patch(
    "/{technician_id}", response_model=TechnicianRead, summary="Edit a technician (If-Match). Staff."
)
def update_technician(
    tech: VisibleTechnician,
    body: TechnicianUpdate,
    principal: Staff,
    db_session: DbSession,
    settings: AppSettings,
    response: Response,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> Technician:
    if if_match is None:
        raise ApiError(428, "precondition_required", "send If-Match with the ETag you read")
    if if_match.strip().removeprefix("W/").strip('"') not in {str(tech.version), "*"}:
        raise ApiError(412, "stale_version", f"technician {tech.code} changed since you read it; reload it")
    changes = _check_dump(body)
    deactivating = tech.active and changes.get("active") is False
    for field, value in changes.items():
        setattr(tech, field, value)
    record(
        db_session=db_session,
        actor=principal.name,
        action="updated",
        entity_type="technician",
        entity_id=tech.id,
        detail={k: str(v) for k, v in changes.items()},
    )
    db_session.commit()
    if deactivating:
        _revoke_sign_in(tech, principal.name, db_session, settings)
    response.headers["ETag"] = f'"{tech.version}"'
    return tech


@router.delete(
    "/{technician_id}", status_code=204, summary="Deactivate a technician (kept for history). Staff."
)
def deactivate_technician(
    tech: VisibleTechnician, principal: Staff, db_session: DbSession, settings: AppSettings
) -> None:
    tech.active = False
    record(
        db_session=db_session,
        actor=principal.name,
        action="deactivated",
        entity_type="technician",
        entity_id=tech.id,
        detail={},
    )
    db_session.commit()
    _revoke_sign_in(tech, principal.name, db_session, settings)


def _revoke_sign_in(tech: Technician, actor: str, db_session: DbSession, settings: AppSettings) -> None:
    """A deactivated technician's user loses its tokens, sessions and CouchDB user at once."""
    user = db_session.get(User, tech.user_id) if tech.user_id is not None else None
    if user is not None:
        revoke_access(db_session=db_session, user=user, actor=actor, settings=settings)
