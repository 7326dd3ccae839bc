from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from mlservice.artifacts import ArtifactsDep
from mlservice.auth.deps import CurrentPrincipal
from mlservice.bodies import Upload, documented_body, json_or_multipart, validate
from mlservice.datasets.service import read_limits
from mlservice.db import SessionDep
from mlservice.errors import error_responses
from mlservice.jobs.queue import QueueDep, submit
from mlservice.jobs.schemas import JobCreated
from mlservice.origin import request_origin
from mlservice.settings import SettingsDep
from mlservice.training import service
from mlservice.training.schemas import TrainRequest

router = APIRouter(tags=["training"])

# Endpoints declare it after the principal: dependencies run in order, so an anonymous
# caller gets 401 before its upload is read or its body judged.
Body = Annotated[tuple[dict, Upload | None], Depends(json_or_multipart)]


@router.post(
    "/train",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429),
    openapi_extra=documented_body(
        TrainRequest,
        {"model_key": "model key", "target": "target column", "features": "JSON list",
         "column_types": "JSON object", "params": "JSON object"},
    ),
)
def train(
    principal: CurrentPrincipal,
    body: Body,
    request: Request,
    session: SessionDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> JobCreated:
    payload, upload = body
    train_request = validate(TrainRequest, payload)
    job = service.start_training(
        session, artifacts, principal, request_origin(request), train_request,
        limits=read_limits(settings), upload=upload,
    )
    submit(session, queue, job.id)
    return JobCreated(job_id=job.id)
