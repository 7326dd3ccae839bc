"""Periodic work inside `serve` (APScheduler): the daily drift check and housekeeping.

The daily check is idempotent in the database (one row per model and day), so it runs once per
model and day whether it fires here, on another replica, or in the catch-up at start-up after
the server was down at the scheduled time."""

from __future__ import annotations

import logging
import time

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from mlservice.artifacts import ArtifactStore, remove_stale
from mlservice.datasets.service import sweep_orphan_files
from mlservice.db import Database
from mlservice.drift.service import run_daily_checks
from mlservice.events.queries import delete_expired_events
from mlservice.jobs.models import Job, JobStatus
from mlservice.jobs.queue import JobQueue
from mlservice.jobs.service import reconcile_lost_jobs
from mlservice.predictions import log as prediction_log
from mlservice.settings import Settings

log = logging.getLogger(__name__)
# APScheduler logs every run at INFO; the reconciler runs every few seconds.
logging.getLogger("apscheduler").setLevel(logging.WARNING)
# Leftovers younger than this may still belong to a write in progress (here or on a worker).
LEFTOVER_AGE_S = 24 * 3600
# Ends after which a batch's results are never read again: only a completed batch serves them.
UNSERVED = (JobStatus.failed.value, JobStatus.cancelled.value)
IDS_PER_QUERY = 500  # under every backend's limit of bound parameters


def delete_expired_prediction_logs(settings: Settings, artifacts: ArtifactStore) -> None:
    """The daily clean-up of the sync prediction log (``ML_PREDICTION_LOG_RETENTION_DAYS``)."""
    removed = prediction_log.delete_older_than(artifacts, settings.prediction_log_retention_days)
    if removed:
        log.info("prediction log retention removed %d day folder(s)", removed)


def sweep_unserved_results(
    database: Database, artifacts: ArtifactStore, older_than_s: float
) -> int:
    """Remove the results file of a batch that ended failed or cancelled after writing it (its
    last step, the log write, failed, or its process died before the job ended): only a completed
    batch serves results. A running or queued batch (a lost worker's job runs again) keeps its
    file, and so does any file written within ``older_than_s``: a worker the reconciler gave up on
    may still be writing it."""
    directory = artifacts.path("predictions")
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    old = {
        path.parent.name: path
        for path in directory.glob("*/results.parquet")
        if path.stat().st_mtime < cutoff
    }
    ids = sorted(old)
    unserved: list[str] = []
    with database.session() as session:
        for start in range(0, len(ids), IDS_PER_QUERY):
            query = select(Job.id).where(
                Job.id.in_(ids[start : start + IDS_PER_QUERY]), Job.status.in_(UNSERVED)
            )
            unserved += session.scalars(query)
    return remove_stale((old[job_id] for job_id in unserved), older_than_s)


def sweep_leftovers(database: Database, artifacts: ArtifactStore) -> None:
    """Files a crash or a failure left behind: temporary files, dataset files whose upload never
    committed, and the results of batches that ended without completing."""
    with database.session() as session:
        orphans = sweep_orphan_files(session, artifacts, LEFTOVER_AGE_S)
    temporary = artifacts.sweep_temporary(LEFTOVER_AGE_S)
    results = sweep_unserved_results(database, artifacts, LEFTOVER_AGE_S)
    if orphans or temporary or results:
        log.info(
            "removed %d orphaned dataset file(s), %d temporary file(s) and the results of %d failed "
            "or cancelled batch(es)",
            orphans,
            temporary,
            results,
        )


def reconcile(database: Database, queue: JobQueue, settings: Settings) -> list[str]:
    """Distributed mode: requeue (or fail) running jobs whose worker stopped beating, and send
    again queued jobs whose message may have been lost."""
    requeued = reconcile_lost_jobs(database, settings)
    for job_id in requeued:
        log.warning("job %s lost its worker or its message; requeued", job_id)
        queue.enqueue(job_id)
    return requeued


def build_scheduler(
    settings: Settings, artifacts: ArtifactStore, database: Database, queue: JobQueue
) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=settings.timezone)
    at = settings.daily_drift_check_time
    scheduler.add_job(
        run_daily_checks,
        CronTrigger(hour=at.hour, minute=at.minute, timezone=settings.timezone),
        args=(database, queue, settings, artifacts),
        id="daily-drift-check",
        coalesce=True,
        misfire_grace_time=6 * 3600,
    )
    scheduler.add_job(
        delete_expired_prediction_logs,
        CronTrigger(hour=3, minute=17, timezone=settings.timezone),
        args=(settings, artifacts),
        id="prediction-log-retention",
        coalesce=True,
        misfire_grace_time=3600,
    )
    scheduler.add_job(
        sweep_leftovers,
        CronTrigger(hour=3, minute=37, timezone=settings.timezone),
        args=(database, artifacts),
        id="sweep-leftovers",
        coalesce=True,
        misfire_grace_time=3600,
    )
    scheduler.add_job(
        delete_expired_events,
        CronTrigger(hour=3, minute=27, timezone=settings.timezone),
        args=(database, settings),
        id="event-retention",
        coalesce=True,
        misfire_grace_time=3600,
    )
    if settings.queue == "celery":
        scheduler.add_job(
            reconcile,
            IntervalTrigger(seconds=settings.job_reconcile_s),
            args=(database, queue, settings),
            id="reconcile-lost-jobs",
            coalesce=True,
            max_instances=1,
        )
    return scheduler
