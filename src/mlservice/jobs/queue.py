"""The job queue port and its local adapter.

The port is narrow — enqueue a job id, start, stop — so the Celery adapter (distributed mode)
fits behind it. Cancellation travels through the database (``jobs.cancel_requested``), which
every process can see.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from mlservice.jobs import kinds
from mlservice.jobs.models import Job
from mlservice.jobs.runner import execute_job, init_worker
from mlservice.jobs.schemas import JobCreated
from mlservice.ml.threads import available_cores
from mlservice.settings import Settings

log = logging.getLogger(__name__)

WARM_UP_WAIT_S = 20.0  # how long a stop waits for the first worker (the template's imports)


class JobQueue(Protocol):
    def start(self) -> None: ...

    def enqueue(self, job_id: str) -> None: ...

    def shutdown(self) -> None: ...


def pool_size(settings: Settings, cpu_count: int | None = None) -> int:
    cores = cpu_count or available_cores()
    wanted = math.floor(cores / settings.worker_cpu_per_task)
    return max(settings.min_workers, min(settings.max_workers_limit, wanted))


def blas_threads(settings: Settings, cpu_count: int | None = None) -> int:
    """A fixed per-process thread limit, for workers that cannot see one another's jobs (Celery's
    prefork children): at least an even share of the cores between ``ML_WORKER_CONCURRENCY``
    (else the local pool's size) jobs. The local pool chooses per job instead (runner.job_threads)."""
    cores = cpu_count or available_cores()
    share = cores // (settings.worker_concurrency or pool_size(settings, cores))
    return max(1, math.floor(cores * settings.worker_cpu_per_task), share)


# What the pool's template process imports once, for every worker forked from it to share
# (copy-on-write): the worker's own stack and the ML engine. The job kinds' modules are added.
TEMPLATE_PRELOAD = (
    "mlservice.jobs.runner",
    "mlservice.live",
    "mlservice.ml",
    "sklearn.neural_network",
    "pyarrow.parquet",
    "threadpoolctl",
)


def worker_context(job_kinds: tuple[kinds.JobKind, ...]) -> multiprocessing.context.BaseContext:
    """Workers fork from multiprocessing's fork server, a template process started once with
    the ML stack imported: a new worker is ready in a fraction of a second (a spawned one took
    ~13 s to import it) and shares those pages instead of holding its own copy (~200 MB each).
    The template is a fresh interpreter, not a fork of `serve`, so it holds none of the
    server's threads, locks or sockets."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows: no fork at all
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    handlers = {kind.handler.__module__ for kind in job_kinds if kind.handler is not None}
    context.set_forkserver_preload(sorted({*TEMPLATE_PRELOAD, *handlers}))
    return context


def start_template(context: multiprocessing.context.BaseContext) -> None:
    """Start the pool's template with SIGINT blocked, as it and every worker forked from it then
    stay: Ctrl-C reaches the whole process group, and the template spends its first seconds
    importing the ML stack, before multiprocessing has it ignore SIGINT (which also drops one
    pending); a Ctrl-C then printed a KeyboardInterrupt traceback from the template, and one
    from each worker with a running job (which restores the handler the template started with).
    ``serve`` ends them itself (``_stop``). Blocked in this thread only, not ignored in the
    process: a Ctrl-C in that moment still reaches ``serve`` (ignoring it there lost one, and
    ``serve`` went on running), and any thread may start the template (a leader's take-over)."""
    if context.get_start_method() != "forkserver":
        return
    from multiprocessing import forkserver, resource_tracker

    # First: starting the resource tracker (forkserver.ensure_running does) unblocks SIGINT here.
    resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # inherited through fork and exec
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _stop(executor: ProcessPoolExecutor) -> None:
    """Shut the pool down and end its worker processes. A worker that died holding the call
    queue's lock would leave the others blocked on it for ever, and the interpreter's exit
    handler joins every pool: terminate them rather than wait. A job cut short here is marked
    interrupted at the next start, like after a crash."""
    processes = list(getattr(executor, "_processes", {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()


class LocalJobQueue:
    """A bounded pool of worker processes inside ``serve``: CPU-heavy training never holds the
    API's interpreter. Workers are forked on demand from a template that has the ML stack
    imported (worker_context); `serve` starts the template up front (start()). Each job's CPU
    threads follow how many jobs run when it starts (runner.job_threads), counted in ``running``,
    shared by the pool's workers. A worker that dies takes its job with it (marked failed) and
    the pool is rebuilt, with a fresh count."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.size = pool_size(settings)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.live_endpoint: str | None = None  # the live-updates hub workers forward to
        self._warming: threading.Thread | None = None

    def start(self) -> None:
        """Start the template now (`serve` calls this at start-up), so that it has imported the
        ML stack before the first job: that job then waits only for a fork (seen before the
        template: a drift check queued behind an auto-retrain started 13 s late). One worker
        is forked at once too; the others come when jobs overlap. In a thread: forking waits
        for the template's imports (seconds), which must not hold up the server's start."""
        self._pool()  # the template starts here, see start_template
        self._warming = threading.Thread(target=self._warm_up, name="job-pool-start", daemon=True)
        self._warming.start()

    def _warm_up(self) -> None:
        try:
            self._pool().submit(os.getpid)
        except Exception as exc:  # noqa: BLE001 - the first job starts the pool again
            if not self._closed:
                log.warning("the job pool did not start up front (%r); the first job starts it", exc)

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                job_kinds = kinds.registered()
                context = worker_context(job_kinds)
                self._executor = ProcessPoolExecutor(
                    max_workers=self.size,
                    mp_context=context,
                    initializer=init_worker,
                    # The template is a fresh interpreter: it knows the job kinds only if given them.
                    initargs=(
                        self.settings,
                        None,
                        self.live_endpoint,
                        os.getpid(),
                        job_kinds,
                        context.Value("i", 0),
                    ),
                )
                start_template(context)
            return self._executor

    def enqueue(self, job_id: str) -> None:
        try:
            future = self._pool().submit(execute_job, job_id)
        except BrokenProcessPool:
            self._rebuild()
            future = self._pool().submit(execute_job, job_id)
        future.add_done_callback(lambda done: self._after(job_id, done))

    def _after(self, job_id: str, future: Future) -> None:
        if future.cancelled() or self._closed:
            # Shutting down ends the workers on purpose: the job is left as it stands, running or
            # queued, for the next start's recovery (not failed as a crash, nor a new pool spawned).
            return
        error = future.exception()
        if error is None:
            for follow_up in future.result().follow_up:
                self.enqueue(follow_up)
            return
        log.error("job %s ended abnormally: %r", job_id, error)
        from mlservice.db import Database
        from mlservice.jobs.service import interrupt_or_requeue

        database = Database(
            self.settings.effective_database_url, timeout=self.settings.db_timeout, pool_size=1
        )
        try:
            reason = (
                "the worker process died" if isinstance(error, BrokenProcessPool) else repr(error)
            )
            requeue = interrupt_or_requeue(database, job_id, reason)
        finally:
            database.dispose()
        if isinstance(error, BrokenProcessPool):
            self._rebuild(broken=future)
        if requeue:
            self.enqueue(job_id)

    def _rebuild(self, broken: Future | None = None) -> None:
        with self._lock:
            # Several futures report the same broken pool; rebuild it once.
            if broken is not None and getattr(self._executor, "_broken", False) is False:
                return
            old, self._executor = self._executor, None
        if old is not None:
            _stop(old)
        self._pool()

    def health(self) -> dict:
        return {"backend": "local", "ok": True, "workers": self.size}

    def shutdown(self) -> None:
        if self._warming is not None:
            # A worker still being forked is not in the pool's list yet: _stop would miss it, and
            # once forked after this process is gone it fails on the pool's vanished semaphore.
            self._warming.join(timeout=WARM_UP_WAIT_S)
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            _stop(executor)


async def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


QueueDep = Annotated[JobQueue, Depends(get_queue)]


def submit(session: Session, queue: JobQueue, job: Job) -> JobCreated:
    """The end of every endpoint that starts a job: commit first, so the worker that picks the id
    up finds the job row, then queue it; the caller answers 202 with the id to poll."""
    session.commit()
    queue.enqueue(job.id)
    return JobCreated(job_id=job.id)
