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
from mlservice.settings import Settings

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    def start(self) -> None: ...

    def enqueue(self, job_id: str) -> None: ...

    def shutdown(self) -> None: ...


def pool_size(settings: Settings, cpu_count: int | None = None) -> int:
    cores = cpu_count or os.cpu_count() or 1
    wanted = math.floor(cores / settings.worker_cpu_per_task)
    return max(settings.min_workers, min(settings.max_workers_limit, wanted))


def blas_threads(settings: Settings, cpu_count: int | None = None) -> int:
    cores = cpu_count or os.cpu_count() or 1
    return max(1, math.floor(cores * settings.worker_cpu_per_task))


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
    API's interpreter. `serve` starts every worker up front (start()); elsewhere (tests) the pool
    is created on the first job. A worker that dies takes its job with
    it (marked failed) and the pool is rebuilt."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.size = pool_size(settings)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.live_endpoint: str | None = None  # the live-updates hub workers forward to

    def start(self) -> None:
        """Spawn every worker now (`serve` calls this at start-up). The executor would
        otherwise spawn one only when a job finds no idle worker, and that job would wait for
        the new process to import the ML stack (seen: a drift check queued behind an
        auto-retrain started 13 s late)."""
        executor = self._pool()
        for _ in range(self.size):  # none is idle yet, so each call spawns a worker
            executor.submit(os.getpid)

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.size,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=init_worker,
                    # Spawned: a fresh interpreter, which knows the job kinds only if given them.
                    initargs=(self.settings, blas_threads(self.settings), self.live_endpoint, os.getpid(),
                              kinds.registered()),
                )
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

        database = Database(self.settings.effective_database_url, timeout=self.settings.db_timeout, pool_size=1)
        try:
            reason = "the worker process died" if isinstance(error, BrokenProcessPool) else repr(error)
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
