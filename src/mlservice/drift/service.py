"""Drift monitoring: starting checks (manual and daily), and their reports."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlservice.artifacts import ArtifactStore
from mlservice.datasets import service as datasets
from mlservice.db import Database, utcnow
from mlservice.db.pagination import paginate, where_given, within
from mlservice.drift.models import DailyCheckRun, DriftReport
from mlservice.errors import NotFound, Unprocessable
from mlservice.jobs.models import Job, JobType
from mlservice.jobs.queue import JobQueue
from mlservice.jobs.service import new_job
from mlservice.ml import ReadLimits, read_records
from mlservice.origin import SYSTEM_ORIGIN, Origin
from mlservice.principal import Principal
from mlservice.registry import service as registry
from mlservice.registry.models import RegisteredModel
from mlservice.settings import Settings

log = logging.getLogger(__name__)


def start_check(
    session: Session,
    artifacts: ArtifactStore,
    principal: Principal | None,
    origin: Origin,
    *,
    model_key: str,
    version: str | None,
    since: datetime | None,
    until: datetime | None,
    dataset_id: str | None,
    records: list[dict[str, Any]] | None,
    limits: ReadLimits,
    trigger: str = "manual",
) -> Job:
    row = registry.get_version(session, model_key, version)
    if since and until and since >= until:
        raise Unprocessable("'since' must be before 'until'", code="bad_window")
    params: dict[str, Any] = {"trigger": trigger, "since": since.isoformat() if since else None,
                              "until": until.isoformat() if until else None}
    if dataset_id is not None and records is not None:
        raise Unprocessable("give at most one of 'dataset_id' and 'data'", code="data_source")
    if dataset_id is not None:
        if principal is None:
            raise Unprocessable("a system check reads the prediction log only", code="data_source")
        params["dataset_id"] = datasets.visible_dataset(session, principal, dataset_id).id
    job = new_job(session, JobType.drift, principal, origin, model_key=model_key,
                  model_version=row.version, params=params)
    if records is not None:
        if not records:
            raise Unprocessable("'data' is empty: send at least one record", code="empty_data")
        frame = read_records(records, limits=limits)
        relative = f"drift/{job.id}/input.parquet"
        artifacts.write_with(relative, lambda tmp: frame.to_parquet(tmp, index=False))
        job.params = {**params, "input_path": relative}
    return job


def last_window_end(session: Session, model_key: str) -> datetime | None:
    return session.scalar(
        select(func.max(DriftReport.window_end)).where(
            DriftReport.model_key == model_key, DriftReport.source == "log"
        )
    )


def scheduled_moment(settings: Settings, day: date) -> datetime:
    zone = ZoneInfo(settings.timezone)
    return datetime.combine(day, settings.daily_drift_check_time, tzinfo=zone)


def due_day(settings: Settings, now: datetime) -> date | None:
    """The local day whose check is due at ``now`` (None before today's check time)."""
    local = now.astimezone(ZoneInfo(settings.timezone))
    return local.date() if local.time() >= settings.daily_drift_check_time else None


def run_daily_checks(database: Database, queue: JobQueue, settings: Settings, artifacts: ArtifactStore,
                     now: datetime | None = None) -> list[str]:
    """Start today's check for every model with an active version — once per model and day,
    whoever calls (the scheduler at the set time, a replica, or start-up catching up after a
    restart): the (model, day) row is the lock."""
    now = now or utcnow()
    day = due_day(settings, now)
    if day is None:
        return []
    started: list[str] = []
    with database.session() as session:
        keys = session.scalars(select(RegisteredModel.key).where(RegisteredModel.active_version.is_not(None))).all()
    for key in keys:
        try:
            with database.session(write=True) as session:
                session.add(DailyCheckRun(model_key=key, run_date=day))
                session.flush()
                job = start_check(
                    session, artifacts, None, SYSTEM_ORIGIN, model_key=key, version=None,
                    since=None, until=now, dataset_id=None, records=None, limits=ReadLimits(), trigger="daily",
                )
                run = session.scalars(select(DailyCheckRun).where(
                    DailyCheckRun.model_key == key, DailyCheckRun.run_date == day)).one()
                run.job_id = job.id
                job_id = job.id
        except IntegrityError:
            continue  # already started today, by us before a restart or by another replica
        queue.enqueue(job_id)
        started.append(job_id)
    if started:
        log.info("daily drift check started for %d model(s)", len(started))
    return started


def list_reports(
    session: Session,
    *,
    model_key: str | None,
    verdict: str | None,
    trigger: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[DriftReport], int]:
    query = where_given(select(DriftReport), (DriftReport.model_key, model_key), (DriftReport.verdict, verdict),
                        (DriftReport.trigger, trigger))
    query = within(query, DriftReport.created_at, created_after, created_before)
    return paginate(session, query, DriftReport.created_at.desc(), DriftReport.id.desc(), limit=limit, offset=offset)


def get_report(session: Session, report_id: int) -> DriftReport:
    report = session.get(DriftReport, report_id)
    if report is None:
        raise NotFound(f"drift report {report_id} does not exist")
    return report
