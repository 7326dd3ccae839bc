"""The job queue port for one of several API processes (``serve --workers N``).

Every process commits a job's row before it enqueues the id (``jobs.queue.submit``). In the
leader the id goes straight to the pool; in a follower there is nothing more to do: the leader
polls for queued rows every ``POLL_S`` and hands the ones it has not dispatched yet to its pool.
The database stays the only hand-over channel, so a job submitted while the leader is dying is
found by the next leader's start-up recovery or its first poll, never lost. A job dispatched
twice (a poll racing a requeue) is harmless: a worker only starts a job it can move from queued
to running (``JobReporter.start``), so the second one is skipped.

In distributed mode (Celery) every process enqueues to the broker itself; only the scheduler is
elected."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import select

from mlservice.db import Database
from mlservice.jobs.models import Job, JobStatus
from mlservice.jobs.queue import JobQueue

log = logging.getLogger(__name__)

POLL_S = 0.2


class ElectedQueue:
    """Wraps the local pool (or the Celery adapter); ``lead()`` is called once elected."""

    def __init__(self, inner: JobQueue, database: Database) -> None:
        self.inner = inner
        self.database = database
        self.leading = False
        self._local = getattr(inner, "owns_running_jobs", True)
        self._dispatched: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:  # live_endpoint, owns_running_jobs, size, ...
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "live_endpoint":  # set by the hub for the pool's initializer
            setattr(self.inner, name, value)
        else:
            super().__setattr__(name, value)

    def start(self) -> None:
        """Nothing until elected: a follower runs no pool."""

    def lead(self) -> None:
        self.leading = True
        self.inner.start()
        if self._local:
            self._poller = threading.Thread(target=self._poll_loop, name="job-handoff", daemon=True)
            self._poller.start()

    def enqueue(self, job_id: str) -> None:
        if not self._local:
            self.inner.enqueue(job_id)  # the broker is shared by every process
        elif self.leading:
            self._dispatch(job_id)
        # else: the committed row is the hand-over; the leader's poll picks it up

    def _dispatch(self, job_id: str) -> None:
        with self._lock:
            self._dispatched.add(job_id)
        self.inner.enqueue(job_id)

    def _poll_loop(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.poll()
            except Exception:  # a busy database: try again next round
                log.warning("could not poll for queued jobs", exc_info=True)

    def poll(self) -> list[str]:
        """Dispatch the queued jobs not dispatched yet; returns their ids."""
        with self.database.session() as session:
            queued = session.scalars(
                select(Job.id).where(Job.status == JobStatus.queued.value).order_by(Job.created_at)
            ).all()
        with self._lock:
            self._dispatched &= set(queued)  # started, finished or cancelled: forget them
            fresh = [job_id for job_id in queued if job_id not in self._dispatched]
        for job_id in fresh:
            self._dispatch(job_id)
        return fresh

    def shutdown(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        if self.leading or not self._local:
            self.inner.shutdown()
