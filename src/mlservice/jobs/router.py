from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Response

from mlservice.auth.deps import CurrentPrincipal
from mlservice.db import DatabaseDep, SessionDep, db_io
from mlservice.db.pagination import Page, PageDep
from mlservice.errors import error_responses
from mlservice.jobs import service
from mlservice.jobs.models import Job, JobStatus, JobType
from mlservice.jobs.schemas import JobRead

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=error_responses(401, 422))


@router.get("", response_model=Page[JobRead])
def list_jobs(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    type: JobType | None = None,
    status: JobStatus | None = None,
    model_key: str | None = None,
    user_id: int | None = Query(None, description="admins only: jobs of one user"),
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_since: datetime | None = Query(None, description="for resync after a reconnect"),
) -> Response:
    jobs, total = service.list_jobs(
        session,
        principal,
        job_type=type.value if type else None,
        status=status.value if status else None,
        model_key=model_key,
        user_id=user_id,
        created_after=created_after,
        created_before=created_before,
        updated_since=updated_since,
        limit=page.limit,
        offset=page.offset,
    )
    return Page[JobRead].of([JobRead.model_validate(j) for j in jobs], total, page).as_response()


@router.get("/{job_id}", response_model=JobRead, responses=error_responses(404))
async def get_job(job_id: str, principal: CurrentPrincipal, session: SessionDep, database: DatabaseDep) -> Job:
    # Async: clients poll this; on SQLite one primary-key read beats a thread hop (db_io).
    return await db_io(database, service.visible_job, session, principal, job_id)


@router.post("/{job_id}/cancel", response_model=JobRead, responses=error_responses(403, 404, 409))
def cancel_job(job_id: str, principal: CurrentPrincipal, session: SessionDep) -> Job:
    return service.request_cancel(session, principal, job_id)
