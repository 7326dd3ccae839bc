"""The universal jobs system: create, list, cancel, report progress, recover after a crash."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlservice import events, live
from mlservice.artifacts import ArtifactStore
from mlservice.db import Database, utcnow
from mlservice.db.pagination import owned_or_404, paginate, visible_to, where_given, within
from mlservice.errors import Conflict
from mlservice.jobs.kinds import kind_for
from mlservice.jobs.models import Job, JobStatus, JobType
from mlservice.jobs.transitions import finish, reset_for_retry
from mlservice.origin import Origin
from mlservice.principal import Principal
from mlservice.settings import Settings


def new_job(
    session: Session,
    job_type: JobType,
    principal: Principal | None,
    origin: Origin,
    *,
    params: dict[str, Any],
    model_key: str | None = None,
    model_version: str | None = None,
) -> Job:
    job = Job(
        id=uuid.uuid4().hex,
        type=job_type.value,
        status=JobStatus.queued.value,
        stages=[{"name": name, "status": "pending"} for name in kind_for(job_type).stages],
        progress=0.0,
        model_key=model_key,
        model_version=model_version,
        user_id=principal.user_id if principal else None,
        source=origin.source,
        client_ip=origin.client_ip,
        user_agent=origin.user_agent,
        params=params,
        details={},
    )
    session.add(job)
    session.flush()
    events.emit(f"{job.type}.requested", session=session, job=job, principal=principal, input=params)
    live.job_changed(job, "job.created")
    return job


def visible_job(session: Session, principal: Principal, job_id: str) -> Job:
    return owned_or_404(session.get(Job, job_id), principal, f"job {job_id}")


def list_jobs(
    session: Session,
    principal: Principal,
    *,
    job_type: str | None = None,
    status: str | None = None,
    model_key: str | None = None,
    user_id: int | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int]:
    query = visible_to(select(Job), Job.user_id, principal, user_id)
    query = where_given(query, (Job.type, job_type), (Job.status, status), (Job.model_key, model_key))
    query = within(within(query, Job.created_at, created_after, created_before), Job.updated_at, updated_since)
    return paginate(session, query, Job.created_at.desc(), Job.id, limit=limit, offset=offset)


def request_cancel(session: Session, principal: Principal, job_id: str) -> Job:
    """Queued jobs stop at once; running ones at their next checkpoint (between epochs)."""
    job = visible_job(session, principal, job_id)
    status = job.status_enum
    if status.is_final:
        raise Conflict(f"job {job_id} already ended ({status.value}); nothing to cancel", code="job_finished")
    job.cancel_requested = True
    if status is JobStatus.queued:
        finish(job, JobStatus.cancelled, error="cancelled before it started")
    else:
        live.job_changed(job, "job.cancel_requested")
    return job


def recover_interrupted(session: Session, artifacts: ArtifactStore) -> tuple[int, list[str]]:
    """At start-up: running jobs died with the last process (failed, unless their outcome was
    already committed); queued ones can run again. Returns (jobs failed, queued job ids)."""
    running = session.scalars(select(Job).where(Job.status == JobStatus.running.value)).all()
    failed = 0
    for job in running:
        outcome = _committed_outcome(session, artifacts, job)
        if outcome is not None:
            result, job.model_version = outcome
            finish(job, JobStatus.completed, result=result)
        else:
            finish(job, JobStatus.failed, error="interrupted: the server stopped while this job was running")
            failed += 1
    queued = session.scalars(
        select(Job.id).where(Job.status == JobStatus.queued.value).order_by(Job.created_at)
    ).all()
    return failed, list(queued)


def _committed_outcome(session: Session, artifacts: ArtifactStore, job: Job) -> tuple[dict[str, Any], str | None] | None:
    """What the job's kind says about a job its process left running (see JobKind.recovery)."""
    try:
        recovery = kind_for(job.type).recovery
    except LookupError:  # a type no process registers any more: nothing can have committed it
        return None
    return None if recovery is None else recovery(session, artifacts, job)


def interrupt_or_requeue(database: Database, job_id: str, reason: str) -> bool:
    """After a worker died: fail the job it was running; True if the job never started."""
    with database.session(write=True) as session:
        job = session.get(Job, job_id)
        if job is None:
            return False
        if job.status == JobStatus.queued.value:
            return True
        if job.status == JobStatus.running.value:
            finish(job, JobStatus.failed, error=f"interrupted: {reason}")
        return False


def reconcile_lost_jobs(database: Database, settings: Settings, now: datetime | None = None) -> list[str]:
    """Distributed mode, on the API's scheduler: a running job whose heartbeat is older than
    ``ML_JOB_HEARTBEAT_TIMEOUT_S`` lost its worker. Requeue it (returns the ids to enqueue) while
    ``ML_RETRY_LOST_JOBS`` and attempts < ``ML_JOB_MAX_ATTEMPTS``, else fail it with a reason.
    Queued jobs that waited as long are sent again (their message may never have reached the
    broker). Row locks (skipped when held) make each lost job handled by one replica only."""
    cutoff = (now or utcnow()) - timedelta(seconds=settings.job_heartbeat_timeout_s)
    requeued: list[str] = []
    with database.session(write=True) as session:
        lost = session.scalars(
            select(Job).where(Job.status == JobStatus.running.value,
                              func.coalesce(Job.heartbeat_at, Job.started_at) < cutoff)
            .with_for_update(skip_locked=True)
        ).all()
        for job in lost:
            if settings.retry_lost_jobs and job.attempts < settings.job_max_attempts:
                reset_for_retry(job)
                live.job_changed(job, "job.requeued")
                requeued.append(job.id)
            else:
                tries = f" after {job.attempts} attempt(s)" if job.attempts > 1 else ""
                finish(job, JobStatus.failed, error=f"interrupted: worker lost{tries}")
        # A queued job whose message never reached the broker (the API died between the commit
        # and the send, or the broker refused it) would wait for ever: send it again, once per
        # timeout. A duplicate of a message still in the broker is dropped by the worker.
        unsent = session.scalars(
            select(Job).where(Job.status == JobStatus.queued.value, Job.updated_at < cutoff)
            .with_for_update(skip_locked=True)
        ).all()
        for job in unsent:
            job.updated_at = utcnow()
            requeued.append(job.id)
    return requeued
