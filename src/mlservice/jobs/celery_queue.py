"""The Celery adapter of the job queue port (``ML_QUEUE=celery``) and the `mlservice worker` side.

The message carries only the job id; the jobs table stays the truth. Delivery guarantees:

- acks late + reject on worker lost: a message is acknowledged only when its job ended, and a
  pool process that dies puts it back, so a dead worker loses no job;
- every running job has a heartbeat (``jobs.heartbeat_at``, refreshed by the worker every
  ``ML_JOB_HEARTBEAT_S``). A whole worker machine can vanish without a word to the broker, so
  the API's scheduler reconciles: a running job whose heartbeat is older than
  ``ML_JOB_HEARTBEAT_TIMEOUT_S`` is requeued (``ML_RETRY_LOST_JOBS``, up to
  ``ML_JOB_MAX_ATTEMPTS``) or failed with "interrupted: worker lost" — never stuck "running";
- a redelivered message (the broker's visibility timeout, a requeue) starts the job only when it
  is queued, or running with a stale heartbeat: duplicates of a live job are dropped.

Routing by job type: each job kind names its queue (``JobKind.queue``): train/retrain → ``train``
(the queue a GPU worker takes), predict/quality → ``predict``, drift → ``drift``, anything else →
``default``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlservice.jobs.kinds import kind_for
from mlservice.settings import Settings

log = logging.getLogger(__name__)

QUEUES = ("train", "predict", "drift", "default")
TASK = "mlservice.run_job"
HEALTH_CACHE_S = 5.0


def queue_for(job_type: str | None) -> str:
    try:
        return kind_for(job_type or "").queue
    except LookupError:
        return "default"


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def make_celery(settings: Settings) -> Any:
    from celery import Celery
    from kombu import Queue

    app = Celery("mlservice", broker=settings.broker_url, set_as_current=False)
    transport: dict[str, Any] = {"visibility_timeout": settings.broker_visibility_timeout_s}
    if settings.broker_key_prefix:
        transport["global_keyprefix"] = settings.broker_key_prefix
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds only the job it runs
        task_ignore_result=True,  # results live in the jobs table
        task_default_queue="default",
        task_queues=[Queue(name, routing_key=name) for name in QUEUES],
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )

    @app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def run_job(task: Any, job_id: str) -> str:
        return _run_in_worker(settings, job_id, task.request.hostname)

    return app


def _run_in_worker(settings: Settings, job_id: str, worker: str | None) -> str:
    from mlservice.jobs.queue import blas_threads
    from mlservice.jobs.runner import _context, execute_job, init_worker, worker_context

    if _context is None:  # a pool without worker_process_init (solo, threads)
        init_worker(settings, blas_threads(settings))
    execution = execute_job(
        job_id, takeover_after_s=settings.job_heartbeat_timeout_s, heartbeat_s=settings.job_heartbeat_s,
        worker=f"{worker or 'celery'}/{os.getpid()}",
    )
    if execution.follow_up:
        follow_ups = CeleryJobQueue(settings, database=worker_context().database)
        for follow_up in execution.follow_up:
            follow_ups.enqueue(follow_up)
    return execution.status


def check_broker(settings: Settings) -> str | None:
    """None when the broker answers; else one line saying what is wrong. Retries with
    exponential back-off for up to ``ML_BROKER_WAIT_S`` seconds first."""
    import redis

    deadline = time.monotonic() + settings.broker_wait_s
    delay = 0.5
    while True:
        try:
            client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2)
            try:
                client.ping()
            finally:
                client.close()
            return None
        except (redis.RedisError, OSError, ValueError) as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = f" (after retrying for {settings.broker_wait_s:g} s)" if settings.broker_wait_s else ""
                return (f"error: ML_QUEUE=celery but the broker ML_BROKER_URL={redacted(settings.broker_url)} is "
                        f"unreachable{waited}: {exc}. Start Redis, fix ML_BROKER_URL, or set ML_BROKER_WAIT_S to wait for it.")
            log.warning("broker %s unreachable (%s); retrying in %.1f s", redacted(settings.broker_url), exc, min(delay, remaining))
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 10.0)


class CeleryJobQueue:
    """Sends job ids to Celery; `mlservice worker` processes on any machine run them."""

    owns_running_jobs = False  # running jobs belong to workers, not to this API process

    def __init__(self, settings: Settings, database: Any = None) -> None:
        self.settings = settings
        self.app = make_celery(settings)
        self._database = database
        self._own_database = database is None
        self._lock = threading.Lock()
        self._health: tuple[float, dict[str, Any]] | None = None

    def _db(self) -> Any:
        with self._lock:
            if self._database is None:
                from mlservice.db import Database

                self._database = Database(self.settings.effective_database_url, timeout=self.settings.db_timeout, pool_size=1)
            return self._database

    def start(self) -> None:
        pass  # the connection opens on the first send

    def enqueue(self, job_id: str) -> None:
        from sqlalchemy import select

        from mlservice.jobs.models import Job

        with self._db().session() as session:
            job_type = session.scalar(select(Job.type).where(Job.id == job_id))
        queue = queue_for(job_type)
        self.app.send_task(TASK, args=[job_id], queue=queue, routing_key=queue)

    def health(self) -> dict[str, Any]:
        """Broker reachable, and how many workers answer a ping (cached a few seconds: the
        ping waits its whole timeout for answers)."""
        now = time.monotonic()
        cached = self._health
        if cached is not None and now - cached[0] < HEALTH_CACHE_S:
            return cached[1]
        workers = 0
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
            broker_ok = True
            workers = len(self.app.control.inspect(timeout=1.0).ping() or {})
        except Exception:  # noqa: BLE001 - health reports, never raises
            broker_ok = False
        value = {"backend": "celery", "ok": broker_ok and workers > 0, "broker": broker_ok, "workers": workers}
        self._health = (time.monotonic(), value)
        return value

    def shutdown(self) -> None:
        self.app.close()
        if self._own_database and self._database is not None:
            self._database.dispose()


def run_worker(settings: Settings, *, queues: list[str], concurrency: int, name: str | None) -> int:
    """`mlservice worker`: a Celery worker with a prefork pool; each pool process runs
    ``init_worker`` (its own database engine, bounded BLAS threads, the Redis publisher for live
    updates, death with its parent)."""
    from celery.signals import worker_process_init

    from mlservice.jobs.queue import blas_threads, pool_size
    from mlservice.jobs.runner import init_worker

    app = make_celery(settings)
    main_pid = os.getpid()  # prefork pool processes are forked from this one

    @worker_process_init.connect(weak=False)
    def _init(**_kwargs: Any) -> None:
        init_worker(settings, blas_threads(settings), parent_pid=main_pid)

    argv = [
        "worker", "--queues", ",".join(queues), "--concurrency", str(concurrency or pool_size(settings)),
        "--hostname", name or "mlservice@%h", "--loglevel", settings.log_level,
        "--without-gossip", "--without-mingle", "--pool", "prefork",
    ]
    app.worker_main(argv)
    return 0
