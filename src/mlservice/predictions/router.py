from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from mlservice.artifacts import ArtifactsDep
from mlservice.auth.deps import CurrentPrincipal
from mlservice.bodies import Upload, documented_body, json_body, json_or_multipart, validate
from mlservice.datasets.service import read_limits
from mlservice.db import SessionDep
from mlservice.errors import Unprocessable, error_responses
from mlservice.jobs.models import JobType
from mlservice.jobs.queue import QueueDep, submit
from mlservice.jobs.schemas import JobCreated
from mlservice.origin import request_origin
from mlservice.predictions import service
from mlservice.predictions.schemas import (
    ExportFormat,
    PredictJobRead,
    PredictRequest,
    QualityRequest,
    SyncPredictRequest,
    SyncPredictResponse,
)
from mlservice.settings import SettingsDep

router = APIRouter(tags=["predictions"], responses=error_responses(401, 422))
# A batch job over records, a dataset or an upload; limited per caller like training.
BATCH_ERRORS = error_responses(400, 403, 404, 409, 413, 415, 429)

# Endpoints declare it after the principal: dependencies run in order, so an anonymous
# caller gets 401 before its upload is read or its body judged.
Body = Annotated[tuple[dict, Upload | None], Depends(json_or_multipart)]
SyncBody = Annotated[SyncPredictRequest, Depends(json_body(SyncPredictRequest))]


def _sources(records, dataset_id, upload) -> None:  # type: ignore[no-untyped-def]
    if (records is not None) + (dataset_id is not None) + (upload is not None) != 1:
        raise Unprocessable("give exactly one of 'data' (records), 'dataset_id' or a file", code="data_source")


@router.post(
    "/predict",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses=BATCH_ERRORS,
    openapi_extra=documented_body(PredictRequest, {"model_key": "model key", "version": "optional version"}),
)
def predict_async(
    principal: CurrentPrincipal,
    body: Body,
    request: Request,
    session: SessionDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> JobCreated:
    payload, upload = body
    data = validate(PredictRequest, payload)
    _sources(data.data, data.dataset_id, upload)
    job = service.start_batch(
        session, artifacts, principal, request_origin(request), job_type=JobType.predict,
        model_key=data.model_key, version=data.version, records=data.data, dataset_id=data.dataset_id,
        upload=upload, limits=read_limits(settings),
    )
    submit(session, queue, job.id)
    return JobCreated(job_id=job.id)


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
    format: ExportFormat = "json",  # noqa: A002 - the query parameter users type
) -> StreamingResponse:
    stream, media_type, filename = service.export_rows(session, artifacts, principal, job_id, format)
    return StreamingResponse(
        stream, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.post("/models/{model_key}/predict", response_model=SyncPredictResponse, tags=["models"],
             responses=error_responses(400, 403, 404, 409, 413, 415, 429),
             openapi_extra=documented_body(SyncPredictRequest))
async def predict_sync(
    model_key: str,
    request: Request,
    principal: CurrentPrincipal,
    body: SyncBody,  # after the principal: anonymous callers get 401, whatever they sent
    settings: SettingsDep,
) -> Response:
    state = request.app.state
    answer = await service.predict_sync(
        state.model_cache, state.version_resolver, state.prediction_log, principal,
        model_key, body.version, body.data, settings.sync_predict_max_rows,
    )
    state.metrics.count_sync_predictions(model_key, len(answer["results"]))
    return Response(orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


@router.post(
    "/quality",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses=BATCH_ERRORS,
    openapi_extra=documented_body(QualityRequest, {"model_key": "model key", "target": "label column", "version": "optional"}),
)
def quality_check(
    principal: CurrentPrincipal,
    body: Body,
    request: Request,
    session: SessionDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> JobCreated:
    payload, upload = body
    data = validate(QualityRequest, payload)
    _sources(data.data, data.dataset_id, upload)
    job = service.start_batch(
        session, artifacts, principal, request_origin(request), job_type=JobType.quality,
        model_key=data.model_key, version=data.version, records=data.data, dataset_id=data.dataset_id,
        upload=upload, limits=read_limits(settings), extra_params={"target": data.target},
    )
    submit(session, queue, job.id)
    return JobCreated(job_id=job.id)
