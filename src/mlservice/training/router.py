from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from mlservice.artifacts import ArtifactsDep
from mlservice.auth.deps import AdminPrincipal, CurrentPrincipal
from mlservice.bodies import Upload, documented_body, json_or_multipart
from mlservice.datasets.service import read_limits
from mlservice.db import SessionDep
from mlservice.errors import error_responses
from mlservice.jobs.queue import QueueDep, submit
from mlservice.jobs.schemas import JobCreated
from mlservice.origin import request_origin
from mlservice.settings import SettingsDep
from mlservice.training import service
from mlservice.training.retrain import start_retrain
from mlservice.training.schemas import TrainRequest

router = APIRouter(tags=["training"])

# Endpoints declare it after the principal: dependencies run in order, so an anonymous
# caller gets 401 before its upload is read or its body judged.
Body = Annotated[tuple[TrainRequest, Upload | None], Depends(json_or_multipart(TrainRequest))]


@router.post(
    "/train",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429),
    openapi_extra=documented_body(TrainRequest, upload=True),
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
    train_request, upload = body
    return submit(session, queue, service.start_training(
        session, artifacts, principal, request_origin(request), train_request,
        limits=read_limits(settings), upload=upload,
    ))


@router.post("/models/{model_key}/retrain", status_code=status.HTTP_202_ACCEPTED, response_model=JobCreated,
             tags=["models"], responses=error_responses(401, 403, 404, 409, 422))
def retrain(
    model_key: str,
    request: Request,
    admin: AdminPrincipal,  # the challenger may become the active version that answers everyone
    session: SessionDep,
    settings: SettingsDep,
    queue: QueueDep,
) -> JobCreated:
    """Admins: train a challenger now (same rules as the automatic retrain, without the cool-down)."""
    return submit(session, queue, start_retrain(
        session, settings, admin, request_origin(request), model_key, ignore_cooldown=True,
    ))
