"""Periodic work inside `serve` (APScheduler): the daily drift check and housekeeping.

The daily check is idempotent in the database (one row per model and day), so it runs once per
model and day whether it fires here, on another replica, or in the catch-up at start-up after
the server was down at the scheduled time."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from mlservice.artifacts import ArtifactStore
from mlservice.datasets.service import sweep_orphan_files
from mlservice.db import Database
from mlservice.drift.service import run_daily_checks
from mlservice.events.queries import delete_expired_events
from mlservice.jobs.queue import JobQueue
from mlservice.jobs.service import reconcile_lost_jobs
from mlservice.predictions import log as prediction_log
from mlservice.settings import Settings

log = logging.getLogger(__name__)
# APScheduler logs every run at INFO; the reconciler runs every few seconds.
logging.getLogger("apscheduler").setLevel(logging.WARNING)
# Leftovers younger than this may still belong to a write in progress (here or on a worker).
LEFTOVER_AGE_S = 24 * 3600


def delete_expired_prediction_logs(settings: Settings, artifacts: ArtifactStore) -> None:
    """The daily clean-up of the sync prediction log (``ML_PREDICTION_LOG_RETENTION_DAYS``)."""
    removed = prediction_log.delete_older_than(artifacts, settings.prediction_log_retention_days)
    if removed:
        log.info("prediction log retention removed %d day folder(s)", removed)


def sweep_leftovers(database: Database, artifacts: ArtifactStore) -> None:
    """Files a crash left behind: temporary files and dataset files whose upload never committed."""
    with database.session() as session:
        orphans = sweep_orphan_files(session, artifacts, LEFTOVER_AGE_S)
    temporary = artifacts.sweep_temporary(LEFTOVER_AGE_S)
    if orphans or temporary:
        log.info("removed %d orphaned dataset file(s) and %d temporary file(s)", orphans, temporary)


def reconcile(database: Database, queue: JobQueue, settings: Settings) -> list[str]:
    """Distributed mode: requeue (or fail) running jobs whose worker stopped beating, and send
    again queued jobs whose message may have been lost."""
    requeued = reconcile_lost_jobs(database, settings)
    for job_id in requeued:
        log.warning("job %s lost its worker or its message; requeued", job_id)
        queue.enqueue(job_id)
    return requeued


def build_scheduler(settings: Settings, artifacts: ArtifactStore, database: Database, queue: JobQueue) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=settings.timezone)
    at = settings.daily_drift_check_time
    scheduler.add_job(
        run_daily_checks, CronTrigger(hour=at.hour, minute=at.minute, timezone=settings.timezone), args=(database, queue, settings, artifacts),
        id="daily-drift-check", coalesce=True, misfire_grace_time=6 * 3600,
    )
    scheduler.add_job(
        delete_expired_prediction_logs, CronTrigger(hour=3, minute=17, timezone=settings.timezone), args=(settings, artifacts),
        id="prediction-log-retention", coalesce=True, misfire_grace_time=3600,
    )
    scheduler.add_job(
        sweep_leftovers, CronTrigger(hour=3, minute=37, timezone=settings.timezone), args=(database, artifacts),
        id="sweep-leftovers", coalesce=True, misfire_grace_time=3600,
    )
    scheduler.add_job(
        delete_expired_events, CronTrigger(hour=3, minute=27, timezone=settings.timezone), args=(database, settings),
        id="event-retention", coalesce=True, misfire_grace_time=3600,
    )
    if settings.queue == "celery":
        scheduler.add_job(
            reconcile, IntervalTrigger(seconds=settings.job_reconcile_s), args=(database, queue, settings),
            id="reconcile-lost-jobs", coalesce=True, max_instances=1,
        )
    return scheduler
