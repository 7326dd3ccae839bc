from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from mlservice.artifacts import ArtifactsDep
from mlservice.auth.deps import CurrentPrincipal
from mlservice.bodies import Upload, documented_body, json_body, json_or_multipart
from mlservice.datasets.service import read_limits
from mlservice.db import SessionDep
from mlservice.errors import error_responses
from mlservice.jobs.models import JobType
from mlservice.jobs.queue import QueueDep, submit
from mlservice.jobs.schemas import JobCreated
from mlservice.origin import request_origin
from mlservice.predictions import service
from mlservice.predictions.activity import prediction_activity
from mlservice.predictions.feedback import add_feedback
from mlservice.predictions.schemas import (
    ActivityRead,
    BatchRequest,
    ExportFormat,
    FeedbackRead,
    FeedbackRequest,
    PredictJobRead,
    PredictRequest,
    QualityRequest,
    SyncPredictRequest,
    SyncPredictResponse,
)
from mlservice.principal import Principal
from mlservice.settings import SettingsDep

router = APIRouter(tags=["predictions"], responses=error_responses(401, 422))
# A batch job over records, a dataset or an upload; limited per caller like training.
BATCH_ERRORS = error_responses(400, 403, 404, 409, 413, 415, 429)

# Endpoints declare them after the principal: dependencies run in order, so an anonymous
# caller gets 401 before its upload is read or its body judged.
PredictBody = Annotated[tuple[PredictRequest, Upload | None], Depends(json_or_multipart(PredictRequest))]
QualityBody = Annotated[tuple[QualityRequest, Upload | None], Depends(json_or_multipart(QualityRequest))]
parse_sync_body = json_body(SyncPredictRequest)


@router.post("/models/{model_key}/predict", response_model=SyncPredictResponse, tags=["models"],
             responses=error_responses(400, 403, 404, 409, 413, 415, 429),
             openapi_extra=documented_body(SyncPredictRequest))
async def predict_sync(model_key: str, principal: CurrentPrincipal, request: Request) -> Response:
    # The hot path takes one dependency, the principal: FastAPI's solving costs ~10 us per
    # dependency, so the body is parsed and the app's objects are taken here, in the order the
    # dependencies ran (after the principal: anonymous callers get 401, whatever they sent).
    body = await parse_sync_body(request)
    state = request.app.state
    answer = await service.predict_sync(
        state.model_cache, state.version_resolver, state.prediction_log, principal, model_key, body.version,
        body.data, state.settings.sync_predict_max_rows,
    )
    state.metrics.count_sync_predictions(model_key, len(answer["results"]))
    return Response(orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


class BatchStart:
    """What both batch endpoints need to start their job, after the principal and the body."""

    def __init__(self, request: Request, session: SessionDep, artifacts: ArtifactsDep, settings: SettingsDep,
                 queue: QueueDep) -> None:
        self.request, self.session, self.artifacts, self.settings, self.queue = request, session, artifacts, settings, queue

    def __call__(self, principal: Principal, job_type: JobType, body: tuple[BatchRequest, Upload | None]) -> JobCreated:
        data, upload = body
        return submit(self.session, self.queue, service.start_batch(
            self.session, self.artifacts, principal, request_origin(self.request), job_type, data,
            upload=upload, limits=read_limits(self.settings),
        ))


StartBatch = Annotated[BatchStart, Depends()]


@router.post(
    "/predict",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses=BATCH_ERRORS,
    openapi_extra=documented_body(PredictRequest, upload=True),
)
def predict_async(principal: CurrentPrincipal, body: PredictBody, start: StartBatch) -> JobCreated:
    return start(principal, JobType.predict, body)


@router.get("/predict/{job_id}", response_model=PredictJobRead, responses=error_responses(404))
def predict_results(
    job_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    artifacts: ArtifactsDep,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    body = service.job_results(session, artifacts, principal, job_id, limit=limit, offset=offset)
    return Response(orjson.dumps(body), media_type="application/json")


@router.get(
    "/predict/{job_id}/export",
    responses={
        200: {"description": "The rows with their predictions: JSON records, or CSV with format=csv",
              "content": {"text/csv": {"schema": {"type": "string"}}}},
        **error_responses(404, 409),
    },
)
def export_predictions(
    job_id: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    artifacts: ArtifactsDep,
    format: ExportFormat = "json",
) -> StreamingResponse:
    stream, media_type, filename = service.export_rows(session, artifacts, principal, job_id, format)
    return StreamingResponse(
        stream, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/predictions/activity", response_model=ActivityRead)
def activity(
    _principal: CurrentPrincipal,
    session: SessionDep,
    artifacts: ArtifactsDep,
    hours: Annotated[int, Query(ge=1, le=168, description="how many hours back, the current one included")] = 24,
) -> ActivityRead:
    """Predictions per hour of every model (sync and batch), counted from the prediction log."""
    return ActivityRead(**prediction_activity(session, artifacts, hours))


@router.post(
    "/quality",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses=BATCH_ERRORS,
    openapi_extra=documented_body(QualityRequest, upload=True),
)
def quality_check(principal: CurrentPrincipal, body: QualityBody, start: StartBatch) -> JobCreated:
    return start(principal, JobType.quality, body)


@router.post("/predict/{job_id}/feedback", response_model=FeedbackRead, responses=error_responses(400, 403, 404, 409))
def feedback(
    job_id: str, body: FeedbackRequest, principal: CurrentPrincipal, session: SessionDep, artifacts: ArtifactsDep
) -> FeedbackRead:
    """True labels for rows of a completed prediction job (rows numbered from 0 as sent).

    Rows the job does not have, or one row given different labels in the same request, are
    refused (422) and nothing is stored. A row labelled again in a later request takes the
    latest label. A class the model never predicted is kept, so a retrained challenger can
    learn it."""
    labels = [{"row": item.row, "label": item.label} for item in body.labels]
    return FeedbackRead(**add_feedback(session, artifacts, principal, job_id, labels))
