from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Request, Response, status

from mlservice.artifacts import ArtifactsDep
from mlservice.auth.deps import CurrentPrincipal
from mlservice.datasets.service import read_limits
from mlservice.db import SessionDep, utcnow
from mlservice.db.pagination import Page, PageDep
from mlservice.drift import service
from mlservice.drift.models import DriftReport
from mlservice.drift.schemas import DriftCheckRequest, ReportRead, ReportSummary
from mlservice.errors import Unprocessable, error_responses
from mlservice.jobs.queue import QueueDep, submit
from mlservice.jobs.schemas import JobCreated
from mlservice.origin import request_origin
from mlservice.settings import SettingsDep

router = APIRouter(tags=["drift"], responses=error_responses(401, 422))


ACCURACY_FIELDS = ("realised_accuracy", "estimated_accuracy", "estimated_accuracy_interval", "holdout_accuracy",
                   "performance")


def report_summary(report: DriftReport) -> ReportSummary:
    body = report.report
    columns = ReportSummary.model_validate(report).model_dump(exclude={*ACCURACY_FIELDS, "feature_psi", "psi_threshold"})
    return ReportSummary(**columns, **{name: body.get(name) for name in ACCURACY_FIELDS},
                         feature_psi={f["name"]: f.get("psi") for f in body.get("features", [])},
                         psi_threshold=body.get("config", {}).get("psi_threshold"))


def report_read(report: DriftReport) -> ReportRead:
    body = report.report
    return ReportRead(
        **report_summary(report).model_dump(),
        features=body.get("features", []),
        prediction_drift=body.get("prediction"),
        drifted_features=body.get("drifted_features", []),
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
    return submit(session, queue, service.start_check(
        session, artifacts, principal, request_origin(request), model_key=body.model_key,
        version=body.version, since=since, until=body.until, dataset_id=body.dataset_id,
        records=body.data, limits=read_limits(settings),
    ))


@router.get("/drift/daily-reports", response_model=Page[ReportSummary])
def list_reports(
    _principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    model_key: str | None = None,
    verdict: Literal["no_drift", "drift", "not_enough_data"] | None = None,
    trigger: Literal["manual", "daily"] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> Response:
    rows, total = service.list_reports(
        session, model_key=model_key, verdict=verdict, trigger=trigger, created_after=created_after,
        created_before=created_before, limit=page.limit, offset=page.offset,
    )
    return Page[ReportSummary].of([report_summary(r) for r in rows], total, page).as_response()


@router.get("/drift/reports/{report_id}", response_model=ReportRead, responses=error_responses(404))
def get_report(report_id: int, _principal: CurrentPrincipal, session: SessionDep) -> ReportRead:
    return report_read(service.get_report(session, report_id))
