from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from mlservice.artifacts import ArtifactsDep
from mlservice.auth.deps import CurrentPrincipal
from mlservice.auth.schemas import Page
from mlservice.datasets.service import read_limits
from mlservice.db import SessionDep, utcnow
from mlservice.drift import service
from mlservice.drift.models import DriftReport
from mlservice.drift.schemas import (
    DriftCheckRequest,
    FeedbackRead,
    FeedbackRequest,
    ReportRead,
    ReportSummary,
)
from mlservice.errors import Forbidden, Unprocessable, error_responses
from mlservice.jobs.queue import QueueDep, submit
from mlservice.jobs.schemas import JobCreated
from mlservice.origin import request_origin
from mlservice.settings import SettingsDep

router = APIRouter(tags=["drift"], responses=error_responses(401, 422))


def report_read(report: DriftReport) -> ReportRead:
    body = report.report
    return ReportRead(
        **ReportSummary.model_validate(report).model_dump(),
        features=body.get("features", []),
        prediction_drift=body.get("prediction"),
        drifted_features=body.get("drifted_features", []),
        realised_accuracy=body.get("realised_accuracy"),
        thresholds=body.get("config", {}),
    )


@router.post("/drift/check", status_code=status.HTTP_202_ACCEPTED, response_model=JobCreated,
             responses=error_responses(400, 403, 404, 409, 413, 429))
def check(
    body: DriftCheckRequest,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> JobCreated:
    if body.last_days is not None and body.since is not None:
        raise Unprocessable("give 'since' or 'last_days', not both", code="bad_window")
    since = utcnow() - timedelta(days=body.last_days) if body.last_days else body.since
    job = service.start_check(
        session, artifacts, principal, request_origin(request), model_key=body.model_key,
        version=body.version, since=since, until=body.until, dataset_id=body.dataset_id,
        records=body.data, limits=read_limits(settings),
    )
    submit(session, queue, job.id)
    return JobCreated(job_id=job.id)


@router.get("/drift/daily-reports", response_model=Page[ReportSummary])
def list_reports(
    _principal: CurrentPrincipal,
    session: SessionDep,
    model_key: str | None = None,
    verdict: Literal["no_drift", "drift", "not_enough_data"] | None = None,
    trigger: Literal["manual", "daily"] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    rows, total = service.list_reports(
        session, model_key=model_key, verdict=verdict, trigger=trigger, created_after=created_after,
        created_before=created_before, limit=limit, offset=offset,
    )
    return Page[ReportSummary](items=[ReportSummary.model_validate(r) for r in rows], total=total, limit=limit, offset=offset).as_response()


@router.get("/drift/reports/{report_id}", response_model=ReportRead, responses=error_responses(404))
def get_report(report_id: int, _principal: CurrentPrincipal, session: SessionDep) -> ReportRead:
    return report_read(service.get_report(session, report_id))


@router.post("/predict/{job_id}/feedback", response_model=FeedbackRead, tags=["predictions"],
             responses=error_responses(400, 403, 404, 409))
def feedback(
    job_id: str, body: FeedbackRequest, principal: CurrentPrincipal, session: SessionDep, artifacts: ArtifactsDep
) -> FeedbackRead:
    labels = [{"row": item.row, "label": item.label} for item in body.labels]
    return FeedbackRead(**service.add_feedback(session, artifacts, principal, job_id, labels))


@router.post("/models/{model_key}/retrain", status_code=status.HTTP_202_ACCEPTED, response_model=JobCreated, tags=["models"],
             responses=error_responses(403, 404, 409))
def retrain(
    model_key: str,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> JobCreated:
    """Admins: train a challenger now (same rules as the automatic retrain, without the cool-down)."""
    if not principal.is_admin:
        # Like promotion: the challenger may become the active version that answers everyone.
        raise Forbidden("a retrain may make its challenger the active version, which needs an admin account")
    job = service.start_retrain(session, settings, principal, request_origin(request), model_key, ignore_cooldown=True)
    submit(session, queue, job.id)
    return JobCreated(job_id=job.id)
