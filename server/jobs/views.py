"""Job status routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from server.deps import DbSession, Office
from server.errors import not_found
from server.jobs.models import Job
from server.jobs.schemas import JobRead

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.get("", response_model=list[JobRead], summary="Recent jobs, newest first. Office roles.")
def list_jobs(
    _: Office, db_session: DbSession, kind: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[Job]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if kind:
        query = query.where(Job.kind == kind)
    return list(db_session.scalars(query))


@router.get("/{job_id}", response_model=JobRead, summary="One job and its progress. Office roles.")
def read_job(job_id: int, _: Office, db_session: DbSession) -> Job:
    job = db_session.get(Job, job_id)
    if job is None:
        raise not_found("job", job_id)
    return job
