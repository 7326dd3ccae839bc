"""The universal jobs system: create, list, cancel, report progress, recover after a crash."""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, object_session

from mlservice import live
from mlservice.artifacts import ArtifactStore
from mlservice.auth.service import Principal
from mlservice.db import Database, utcnow
from mlservice.db.pagination import paginate
from mlservice.errors import Conflict, NotFound
from mlservice.events import service as events
from mlservice.jobs.models import FINAL_STATUSES, Job, JobStatus, JobType
from mlservice.origin import Origin
from mlservice.settings import Settings

STAGES: dict[JobType, tuple[str, ...]] = {
    JobType.train: ("load", "validate", "profile", "fit_features", "fit_model", "evaluate", "save"),
    JobType.retrain: ("load", "validate", "profile", "fit_features", "fit_model", "evaluate", "save", "compare"),
    JobType.predict: ("load", "predict", "save"),
    JobType.quality: ("load", "evaluate"),
    JobType.drift: ("load", "compare", "report"),
    JobType.other: ("run",),
}
# Job type → "module:function(session, artifacts, job) -> (result, model_version) | None", run at
# recovery for a job its process left running: the outcome it had already committed (a training
# whose version is registered, its last step: the job is completed), or None after undoing what
# would outlive a failed job (a batch prediction's logged rows, which would count towards drift).
RECOVERIES = {
    "train": "mlservice.training.jobs:registered_outcome",
    "predict": "mlservice.predictions.jobs:discard_logged_rows",
}


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
        stages=[{"name": name, "status": "pending"} for name in STAGES[job_type]],
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
    job = session.get(Job, job_id)
    if job is None or (not principal.is_admin and job.user_id != principal.user_id):
        raise NotFound(f"job {job_id} does not exist")
    return job


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
    query = select(Job)
    if not principal.is_admin:
        query = query.where(Job.user_id == principal.user_id)
    elif user_id is not None:
        query = query.where(Job.user_id == user_id)
    if job_type:
        query = query.where(Job.type == job_type)
    if status:
        query = query.where(Job.status == status)
    if model_key:
        query = query.where(Job.model_key == model_key)
    if created_after:
        query = query.where(Job.created_at >= created_after)
    if created_before:
        query = query.where(Job.created_at < created_before)
    if updated_since:
        query = query.where(Job.updated_at >= updated_since)
    return paginate(session, query, Job.created_at.desc(), Job.id, limit=limit, offset=offset)


def request_cancel(session: Session, principal: Principal, job_id: str) -> Job:
    """Queued jobs stop at once; running ones at their next checkpoint (between epochs)."""
    job = visible_job(session, principal, job_id)
    status = job.status_enum
    if status.is_final:
        raise Conflict(f"job {job_id} already ended ({status.value}); nothing to cancel", code="job_finished")
    job.cancel_requested = True
    if status is JobStatus.queued:
        _finish(job, JobStatus.cancelled, error="cancelled before it started")
    else:
        live.job_changed(job, "job.cancel_requested")
    return job


def _finish(job: Job, status: JobStatus, *, result: dict[str, Any] | None = None, error: str | None = None) -> None:
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


def recover_interrupted(session: Session, artifacts: ArtifactStore) -> tuple[int, list[str]]:
    """At start-up: running jobs died with the last process (failed, unless their outcome was
    already committed); queued ones can run again. Returns (jobs failed, queued job ids)."""
    running = session.scalars(select(Job).where(Job.status == JobStatus.running.value)).all()
    failed = 0
    for job in running:
        outcome = _recover(session, artifacts, job)
        if outcome is not None:
            result, job.model_version = outcome
            _finish(job, JobStatus.completed, result=result)
        else:
            _finish(job, JobStatus.failed, error="interrupted: the server stopped while this job was running")
            failed += 1
    queued = session.scalars(
        select(Job.id).where(Job.status == JobStatus.queued.value).order_by(Job.created_at)
    ).all()
    return failed, list(queued)


def _recover(session: Session, artifacts: ArtifactStore, job: Job) -> tuple[dict[str, Any], str | None] | None:
    target = RECOVERIES.get(job.type)
    return None if target is None else import_target(target)(session, artifacts, job)


def import_target(target: str) -> Any:
    """"module:function" → the function, imported on first use so each domain owns its job code."""
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)


def interrupt_or_requeue(database: Database, job_id: str, reason: str) -> bool:
    """After a worker died: fail the job it was running; True if the job never started."""
    with database.session(write=True) as session:
        job = session.get(Job, job_id)
        if job is None:
            return False
        if job.status == JobStatus.queued.value:
            return True
        if job.status == JobStatus.running.value:
            _finish(job, JobStatus.failed, error=f"interrupted: {reason}")
        return False


def _reset_for_retry(job: Job) -> None:
    job.status = JobStatus.queued.value
    job.stage = None
    job.progress = 0.0
    job.stages = [{"name": stage["name"], "status": "pending"} for stage in job.stages or []]
    job.started_at = None
    job.heartbeat_at = None
    job.worker = None
    job.error = None


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
                _reset_for_retry(job)
                live.job_changed(job, "job.requeued")
                requeued.append(job.id)
            else:
                tries = f" after {job.attempts} attempt(s)" if job.attempts > 1 else ""
                _finish(job, JobStatus.failed, error=f"interrupted: worker lost{tries}")
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


class Cancelled(Exception):
    """Raised inside a job when its cancellation was requested."""


class JobReporter:
    """What a running job uses to tell the world how it goes; throttles its database writes."""

    PROGRESS_INTERVAL_S = 0.5
    CANCEL_CHECK_INTERVAL_S = 1.0

    def __init__(self, database: Database, job_id: str) -> None:
        self.database = database
        self.job_id = job_id
        self.attempt: int | None = None  # set by start(); a superseded attempt writes no ending
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_stop = threading.Event()
        self._last_progress_write = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False

    def start(self, *, takeover_after_s: float | None = None, worker: str | None = None) -> Job | None:
        """Mark the job running; None when it was cancelled (or taken) before it started.

        ``takeover_after_s`` (distributed mode): a job still ``running`` whose heartbeat is older
        than this lost its worker, and this delivery (e.g. the broker's redelivery) takes it over."""
        with self.database.session(write=True) as session:
            job = session.get(Job, self.job_id, with_for_update=True)
            if job is None:
                return None
            if job.status == JobStatus.running.value and takeover_after_s is not None:
                beat = job.heartbeat_at or job.started_at
                if beat is not None and (utcnow() - beat).total_seconds() <= takeover_after_s:
                    return None  # alive elsewhere: a duplicate delivery
                _reset_for_retry(job)
            if job.status != JobStatus.queued.value:
                return None
            job.status = JobStatus.running.value
            job.started_at = job.heartbeat_at = utcnow()
            job.worker = worker
            job.attempts += 1
            self.attempt = job.attempts
            session.flush()
            live.job_changed(job, "job.started")
            session.expunge(job)
            return job

    def stage(self, name: str, progress: float | None = None) -> None:
        with self.database.session(write=True) as session:
            job = session.get(Job, self.job_id)
            if job is None:
                return
            now = utcnow().isoformat()
            stages = []
            for stage in job.stages or []:
                stage = dict(stage)
                if stage.get("status") == "running":
                    stage.update(status="done", finished_at=now)
                if stage["name"] == name:
                    stage.update(status="running", started_at=now)
                stages.append(stage)
            job.stages = stages
            job.stage = name
            if progress is not None:
                job.progress = max(job.progress, round(progress, 2))
            self._last_progress_write = time.monotonic()
            live.job_changed(job, "job.stage")

    def progress(self, value: float, *, details: dict[str, Any] | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress_write < self.PROGRESS_INTERVAL_S:
            return
        self._last_progress_write = now
        values: dict[str, Any] = {"progress": round(min(value, 99.9), 2), "updated_at": utcnow()}
        if details is not None:
            values["details"] = details
        with self.database.session(write=True) as session:
            session.execute(update(Job).where(Job.id == self.job_id).values(**values))
            live.job_progress(session, self.job_id, values["progress"], details)

    def start_heartbeat(self, interval_s: float) -> None:
        """Refresh ``heartbeat_at`` every ``interval_s`` from a thread, so even a long stage
        without progress reports shows the worker is alive."""
        self._heartbeat_stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, args=(interval_s,), name=f"heartbeat-{self.job_id}", daemon=True)
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
            self._heartbeat = None

    def _beat(self, interval_s: float) -> None:
        while not self._heartbeat_stop.wait(interval_s):
            try:
                with self.database.session(write=True) as session:
                    session.execute(update(Job).where(
                        Job.id == self.job_id, Job.status == JobStatus.running.value, Job.attempts == self.attempt,
                    ).values(heartbeat_at=utcnow()))
            except Exception:  # noqa: BLE001 - a missed beat is retried; a dead database fails the job anyway
                pass

    def _superseded(self, job: Job) -> bool:
        return self.attempt is not None and job.attempts != self.attempt

    def should_stop(self) -> bool:
        now = time.monotonic()
        if self._cancelled or now - self._last_cancel_check < self.CANCEL_CHECK_INTERVAL_S:
            return self._cancelled
        self._last_cancel_check = now
        with self.database.session() as session:
            self._cancelled = bool(session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)))
        return self._cancelled

    def check_cancelled(self) -> None:
        if self.should_stop():
            raise Cancelled()

    def complete(self, result: dict[str, Any], *, model_version: str | None = None) -> None:
        with self.database.session(write=True) as session:
            job = session.get(Job, self.job_id)
            if job is None or job.status != JobStatus.running.value or self._superseded(job):
                return
            if model_version is not None:
                job.model_version = model_version
            _finish(job, JobStatus.completed, result=result)

    def fail(self, error: str) -> None:
        self._end(JobStatus.failed, error)

    def cancelled(self) -> None:
        self._end(JobStatus.cancelled, "cancelled by request")

    def _end(self, status: JobStatus, error: str) -> None:
        with self.database.session(write=True) as session:
            job = session.get(Job, self.job_id)
            if job is not None and JobStatus(job.status) not in FINAL_STATUSES and not self._superseded(job):
                _finish(job, status, error=error)
