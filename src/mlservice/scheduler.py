"""Periodic work inside `serve` (APScheduler): housekeeping now, the daily drift check later."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from mlservice.artifacts import ArtifactStore
from mlservice.predictions import log as prediction_log
from mlservice.settings import Settings

log = logging.getLogger(__name__)


def apply_retention(settings: Settings, artifacts: ArtifactStore) -> None:
    removed = prediction_log.delete_older_than(artifacts, settings.prediction_log_retention_days)
    if removed:
        log.info("prediction log retention removed %d day folder(s)", removed)


def build_scheduler(settings: Settings, artifacts: ArtifactStore) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=settings.timezone)
    scheduler.add_job(
        apply_retention, CronTrigger(hour=3, minute=17), args=(settings, artifacts),
        id="prediction-log-retention", coalesce=True, misfire_grace_time=3600,
    )
    return scheduler
