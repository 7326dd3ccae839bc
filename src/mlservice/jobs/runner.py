"""Runs one job by id, in whatever process the queue chose (a local worker process or a
Celery worker). Job state lives in the database; this module only needs the id."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from mlservice.artifacts import ArtifactStore
from mlservice.db import Database
from mlservice.jobs import kinds
from mlservice.jobs.kinds import Handler, JobKind, WorkerContext
from mlservice.jobs.models import Job
from mlservice.jobs.reporter import Cancelled, JobReporter
from mlservice.settings import Settings

log = logging.getLogger(__name__)

_context: WorkerContext | None = None


def init_worker(settings: Settings, blas_threads: int | None = None, live_endpoint: str | None = None,
                parent_pid: int | None = None, job_kinds: Iterable[JobKind] = ()) -> None:
    """Process initializer: one database engine per worker process, BLAS threads bounded so
    parallel jobs don't oversubscribe the cores, the ML stack imported before the first job.
    ``parent_pid`` is the pid of the process that owns this worker, read by that process
    itself; the worker exits when it is no longer its parent (None: nothing to watch).
    ``job_kinds``: what the parent registered, for a worker started in a fresh interpreter
    (a forked one has them already)."""
    global _context
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    kinds.register(*job_kinds)
    if blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(blas_threads)
    import mlservice.ml  # noqa: F401 - warm import, so the first job doesn't pay for it
    from mlservice.live import install_worker_publisher

    install_worker_publisher(settings, live_endpoint)  # job changes reach the WebSocket hub

    _context = WorkerContext(
        settings=settings,
        database=Database(settings.effective_database_url, timeout=settings.db_timeout, pool_size=2),
        artifacts=ArtifactStore(settings.effective_artifacts_root),
    )


def _die_with_parent(parent: int) -> None:
    """Local workers must not outlive `serve`: an orphan would finish a job the restarted
    server already marked as interrupted. A daemon thread ends the process within
    ``PARENT_POLL_S`` of the parent's death. Not ``PR_SET_PDEATHSIG``: Linux sends it when the
    *thread* that spawned the worker ends, and the pool spawns workers from whichever thread
    submits a job — a request's worker thread, which exits after 10 s idle, killing a healthy
    worker mid-job (BrokenProcessPool under load, seen by tests/reliability/test_load.py).

    The parent's pid comes from the parent, not from ``getppid()`` here: as PID 1 in a
    container, ``serve`` or ``mlservice worker`` is a live parent whose pid is 1, and reading
    "parent is 1" as "orphaned" killed every worker at start."""
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


PARENT_POLL_S = 0.25


def worker_context() -> WorkerContext:
    if _context is None:
        raise RuntimeError("init_worker() has not run in this process")
    return _context


def resolve_handler(job_type: str) -> Handler:
    handler = kinds.kind_for(job_type).handler
    if handler is None:
        raise LookupError(f"no handler for jobs of type {job_type!r}")
    return handler


def readable_error(exc: BaseException) -> str:
    from mlservice.errors import AppError
    from mlservice.ml.errors import MLError

    if isinstance(exc, AppError):
        return exc.message
    if isinstance(exc, MLError):
        return str(exc)
    return f"internal error ({type(exc).__name__}): {exc}; see the worker log"


def _alert_failure(context: WorkerContext, job: Job, error: str) -> None:
    from mlservice.alerts.service import raise_alert_now

    subject = f"{job.type} job for {job.model_key}" if job.model_key else f"{job.type} job"
    try:
        raise_alert_now(
            context.database, kind="job_failed", severity="warning",
            dedup_key=f"job_failed:{job.type}:{job.model_key or '-'}", model_key=job.model_key,
            message=f"{subject} failed: {error}", link={"type": "job", "id": job.id},
        )
    except Exception:
        log.exception("could not raise the alert for failed job %s", job.id)


@dataclass
class Execution:
    status: str
    follow_up: list[str] = field(default_factory=list)


def execute_job(job_id: str, *, takeover_after_s: float | None = None, heartbeat_s: float | None = None,
                worker: str | None = None) -> Execution:
    """Run the job to an end state. Never raises for job failures. The caller (the queue)
    enqueues the follow-up jobs, e.g. the retrain a drift check decided on. Distributed mode
    passes ``heartbeat_s`` (the job's heartbeat while it runs) and ``takeover_after_s`` (a
    redelivered job whose heartbeat is older is taken over)."""
    context = worker_context()
    reporter = JobReporter(context.database, job_id)
    job = reporter.start(takeover_after_s=takeover_after_s, worker=worker)
    if job is None:
        return Execution("skipped")
    if heartbeat_s:
        reporter.start_heartbeat(heartbeat_s)
    try:
        return _run(context, job, reporter)
    finally:
        reporter.stop_heartbeat()


def _run(context: WorkerContext, job: Job, reporter: JobReporter) -> Execution:
    from mlservice.ml.errors import TrainingCancelled

    job_id = job.id
    try:
        outcome = resolve_handler(job.type)(context, job, reporter)
    except (Cancelled, TrainingCancelled):
        reporter.cancelled()
        return Execution("cancelled")
    except Exception as exc:
        if not isinstance(exc, (LookupError,)) and "internal error" in readable_error(exc):
            log.exception("job %s (%s) failed", job_id, job.type)
        reporter.fail(readable_error(exc))
        _alert_failure(context, job, readable_error(exc))
        return Execution("failed")
    reporter.complete(outcome.result, model_version=outcome.model_version)
    return Execution("completed", outcome.follow_up)
