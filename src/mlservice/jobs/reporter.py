"""What a running job uses to tell the world how it goes. It lives in the worker process (a
local pool process or a Celery worker), next to the job's handler."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import select, update

from mlservice import live
from mlservice.db import Database, utcnow
from mlservice.jobs.models import FINAL_STATUSES, Job, JobStatus
from mlservice.jobs.transitions import finish, reset_for_retry


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
                reset_for_retry(job)
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
            job = session.execute(update(Job).where(Job.id == self.job_id).values(**values).returning(
                Job.id, Job.type, Job.user_id, Job.model_key, Job.stage)).first()
            if job is not None:  # live updates need who may see it, and never import jobs
                live.job_progress(session, job, values["progress"], details)

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
            finish(job, JobStatus.completed, result=result)

    def fail(self, error: str) -> None:
        self._end(JobStatus.failed, error)

    def cancelled(self) -> None:
        self._end(JobStatus.cancelled, "cancelled by request")

    def _end(self, status: JobStatus, error: str) -> None:
        with self.database.session(write=True) as session:
            job = session.get(Job, self.job_id)
            if job is not None and JobStatus(job.status) not in FINAL_STATUSES and not self._superseded(job):
                finish(job, status, error=error)
