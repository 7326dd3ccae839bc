from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from mlservice.auth.deps import CurrentPrincipal
from mlservice.auth.schemas import Page
from mlservice.db import SessionDep, db_io
from mlservice.errors import error_responses
from mlservice.jobs import service
from mlservice.jobs.models import Job, JobStatus, JobType
from mlservice.jobs.schemas import JobRead

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=error_responses(401, 422))


@router.get("", response_model=Page[JobRead])
def list_jobs(
    principal: CurrentPrincipal,
    session: SessionDep,
    type: JobType | None = None,  # noqa: A002 - the seed's filter name
    status: JobStatus | None = None,
    model_key: str | None = None,
    user_id: int | None = Query(None, description="admins only: jobs of one user"),
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_since: datetime | None = Query(None, description="for resync after a reconnect"),
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
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
        limit=limit,
        offset=offset,
    )
    return Page[JobRead](
        items=[JobRead.model_validate(j) for j in jobs], total=total, limit=limit, offset=offset
    ).as_response()


@router.get("/{job_id}", response_model=JobRead, responses=error_responses(404))
async def get_job(job_id: str, principal: CurrentPrincipal, session: SessionDep, request: Request) -> Job:
    # Async: clients poll this; on SQLite one primary-key read beats a thread hop (db_io).
    return await db_io(request.app.state.database, service.visible_job, session, principal, job_id)


@router.post("/{job_id}/cancel", response_model=JobRead, responses=error_responses(403, 404, 409))
def cancel_job(job_id: str, principal: CurrentPrincipal, session: SessionDep) -> Job:
    return service.request_cancel(session, principal, job_id)
