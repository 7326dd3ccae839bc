"""How a job row changes state, shared by the API side (cancel, recovery, reconciliation) and
the worker side (jobs.reporter): each change is published live and recorded as an event."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import object_session

from mlservice import events, live
from mlservice.db import utcnow
from mlservice.jobs.models import Job, JobStatus


def finish(job: Job, status: JobStatus, *, result: dict[str, Any] | None = None, error: str | None = None) -> None:
    now = utcnow()
    job.status = status.value
    job.finished_at = now
    if result is not None:
        job.result = result
    job.error = error
    if status is JobStatus.completed:
        job.progress = 100.0
    stages = []
    for stage in job.stages or []:
        stage = dict(stage)
        if stage.get("status") == "running":
            stage["status"] = "done" if status is JobStatus.completed else status.value
            stage["finished_at"] = now.isoformat()
        stages.append(stage)
    job.stages = stages
    live.job_changed(job, f"job.{status.value}")
    events.emit(f"{job.type}.{status.value}", session=object_session(job), job=job, outcome="ok" if status is JobStatus.completed else "failed",
                output=result if result is not None else {"error": error}, message=error)


def reset_for_retry(job: Job) -> None:
    job.status = JobStatus.queued.value
    job.stage = None
    job.progress = 0.0
    job.stages = [{"name": stage["name"], "status": "pending"} for stage in job.stages or []]
    job.started_at = None
    job.heartbeat_at = None
    job.worker = None
    job.error = None
