"""Runs one job by id, in whatever process the queue chose (a local worker process or a
Celery worker). Job state lives in the database; this module only needs the id."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mlservice.artifacts import ArtifactStore
from mlservice.db import Database
from mlservice.jobs import kinds
from mlservice.jobs.kinds import Handler, JobKind, WorkerContext
from mlservice.jobs.models import Job
from mlservice.jobs.reporter import Cancelled, JobReporter
from mlservice.settings import Settings

log = logging.getLogger(__name__)

_context: WorkerContext | None = None


def init_worker(
    settings: Settings,
    blas_threads: int | None = None,
    live_endpoint: str | None = None,
    parent_pid: int | None = None,
    job_kinds: Iterable[JobKind] = (),
    running: Any = None,
) -> None:
    """Process initializer: one database engine per worker process, the ML stack imported
    before the first job (already, in a worker forked from the pool's template).
    ``blas_threads``: a fixed thread limit for the whole process (Celery workers, which cannot
    see one another's jobs). ``running``: the pool's shared count of running jobs (a
    ``multiprocessing.Value``); with it each job's threads are chosen when it starts
    (:func:`job_threads`). ``parent_pid`` is the pid of the process that owns this worker, read
    by that process itself; the worker exits when the owner ends (None: nothing to watch).
    ``job_kinds``: what the parent registered, for a worker started in a fresh interpreter
    (a forked one has them already)."""
    global _context, _running
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    _running = running
    kinds.register(*job_kinds)
    if blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(blas_threads)
    import mlservice.ml  # noqa: F401 - warm import, so the first job doesn't pay for it
    from mlservice.live import install_worker_publisher

    install_worker_publisher(settings, live_endpoint)  # job changes reach the WebSocket hub

    _context = WorkerContext(
        settings=settings,
        database=Database(
            settings.effective_database_url, timeout=settings.db_timeout, pool_size=2
        ),
        artifacts=ArtifactStore(settings.effective_artifacts_root),
    )


def _die_with_parent(parent: int) -> None:
    """Local workers must not outlive `serve`: an orphan would finish a job the restarted
    server already marked as interrupted. A daemon thread ends the process within
    ``PARENT_POLL_S`` of the owner's death. Not ``PR_SET_PDEATHSIG``: Linux sends it when the
    *thread* that spawned the worker ends, and the pool spawns workers from whichever thread
    submits a job — a request's worker thread, which exits after 10 s idle, killing a healthy
    worker mid-job (BrokenProcessPool under load, seen by tests/reliability/test_load.py).

    A worker of the local pool is forked by the pool's template, not by its owner, so its
    parent pid says nothing; multiprocessing gives it a pipe from the owner instead
    (``parent_process()``'s sentinel), which reads end-of-file when the owner dies — no pid
    compared, so nothing to get wrong as PID 1 or across PID namespaces (a pid read from /proc
    there is another namespace's). Elsewhere (Celery's prefork children) the parent's pid comes
    from the parent, not from ``getppid()`` here: as PID 1 in a container, ``mlservice worker``
    is a live parent whose pid is 1, and reading "parent is 1" as "orphaned" killed every
    worker at start."""
    owner = multiprocessing.parent_process()
    if owner is not None:
        alive: Callable[[], bool] = owner.is_alive
    else:

        def alive() -> bool:
            return os.getppid() == parent

    if not alive():  # the owner died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if not alive():
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


PARENT_POLL_S = 0.25


_running: Any = None  # the pool's count of running jobs, shared by its workers


def job_threads(cores: int, running: int, busy: int = 0) -> int:
    """CPU threads for a job that starts while ``running`` jobs of the pool (itself included) run
    and ``busy`` threads of anything run on the machine: an even share of the cores between the
    pool's jobs (every core for a job alone), and no more than the cores left free (at least
    one). Jobs that started earlier keep what they had until they end.

    The free-core cap matters: BLAS and OpenMP threads wait for one another at every matrix
    product, and on a machine whose other work holds the cores each wait lasts a scheduler time
    slice (measured on the shared 2-core machine at load ~15: scikit-learn training on Adult took
    37.8 s per epoch with two BLAS threads, 3.2 s with one)."""
    return max(1, min(cores // max(1, running), cores - busy))


def pool_share() -> int:
    """The cores divided between the pool's running jobs, ignoring other work on the machine: the
    number of *independent* threads a job may run (a batch prediction's chunks), which, unlike
    BLAS threads, never wait for one another, so a busy machine only slows each down."""
    from mlservice.ml.threads import available_cores

    running = _running.value if _running is not None else 1
    return job_threads(available_cores(), running)


@contextmanager
def cpu_share() -> Iterator[int | None]:
    """The block of one job: counted as running, its threads bounded to its share (yielded)."""
    if _running is None:  # a Celery worker: its process-wide limit, set at start, holds
        yield None
        return
    from mlservice.ml.threads import OtherWork, available_cores, busy_cores, cpu_threads

    global _other_work
    with _running.get_lock():
        _running.value += 1
        count = _running.value
    try:
        with cpu_threads(job_threads(available_cores(), count, busy_cores())) as threads:
            _other_work = OtherWork()
            yield threads
    finally:
        _other_work = None
        with _running.get_lock():
            _running.value -= 1


_other_work: Any = None  # the running job's view of the rest of the machine (OtherWork)
_rebalanced_at = 0.0
REBALANCE_EVERY_S = 1.0


def watch_other_work() -> None:
    """Start the window :func:`rebalance_threads` judges other work over (a stage's start: what
    ran before it, such as the request that uploaded the data, is left out)."""
    if _other_work is not None:
        _other_work.cores()


def rebalance_threads(min_window_s: float = 0.0) -> int | None:
    """Between a job's steps (a training's fit starting, each epoch): fit its CPU threads to what
    the machine leaves free now, judged from the CPU time other work used since the last look
    (at most once a second; a window shorter than ``min_window_s`` is waited out, /proc/stat
    counts in 10 ms ticks). A job that started while a request or another job held a core takes
    it once it is free (a training started right after its upload did), and gives it back when
    more jobs start. Returns the threads now, or None outside a local pool's job."""
    global _rebalanced_at
    from mlservice.ml.threads import available_cores, set_thread_budget, thread_budget

    if _other_work is None or _running is None or thread_budget() is None:
        return None
    if time.monotonic() - _rebalanced_at < REBALANCE_EVERY_S:
        return thread_budget()
    if (short := min_window_s - _other_work.window_s()) > 0:
        if (thread_budget() or 0) >= job_threads(available_cores(), _running.value):
            return thread_budget()  # it has its whole share: nothing to wait for
        time.sleep(short)
    _rebalanced_at = time.monotonic()
    others = _other_work.cores()
    if others is None:
        return thread_budget()
    threads = job_threads(available_cores(), _running.value, round(others))
    if threads != thread_budget():
        log.info("job threads %s -> %d (other work %.2f cores, %d jobs running)", thread_budget(), threads,
                 others, _running.value)
        set_thread_budget(threads)
    return threads


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
            context.database,
            kind="job_failed",
            severity="warning",
            dedup_key=f"job_failed:{job.type}:{job.model_key or '-'}",
            model_key=job.model_key,
            message=f"{subject} failed: {error}",
            link={"type": "job", "id": job.id},
        )
    except Exception:
        log.exception("could not raise the alert for failed job %s", job.id)


@dataclass
class Execution:
    status: str
    follow_up: list[str] = field(default_factory=list)


def execute_job(
    job_id: str,
    *,
    takeover_after_s: float | None = None,
    heartbeat_s: float | None = None,
    worker: str | None = None,
) -> Execution:
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
        with cpu_share():
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
