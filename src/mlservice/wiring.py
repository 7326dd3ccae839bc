"""Wiring from the top: the job kinds each domain declares in its ``jobs.py``, registered with
the jobs system, which never imports a domain. Called by every process that creates or runs
jobs: ``create_app`` (the API, and the local worker pool it spawns, which is handed the
registered kinds) and ``mlservice worker`` (Celery, whose pool processes are forked)."""

from __future__ import annotations

from mlservice.drift import jobs as drift_jobs
from mlservice.jobs import kinds
from mlservice.predictions import jobs as prediction_jobs
from mlservice.training import jobs as training_jobs


def register_job_kinds() -> None:
    kinds.register(*training_jobs.KINDS, *prediction_jobs.KINDS, *drift_jobs.KINDS)
