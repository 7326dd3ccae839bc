from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from mlservice.artifacts import ArtifactsDep
from mlservice.auth.deps import CurrentPrincipal
from mlservice.datasets import service
from mlservice.datasets.schemas import DatasetDetail, DatasetRead
from mlservice.db import SessionDep
from mlservice.db.pagination import Page, PageDep
from mlservice.errors import error_responses
from mlservice.settings import SettingsDep

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=error_responses(401, 422))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetRead,
             responses=error_responses(400, 403, 413))
def upload_dataset(
    principal: CurrentPrincipal,
    session: SessionDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV, JSON, JSON Lines or Parquet")],
    name: Annotated[str | None, Form(max_length=200)] = None,
) -> DatasetRead:
    data = file.file.read()
    dataset = service.ingest_bytes(
        session, artifacts, principal, data,
        filename=file.filename, name=name, limits=service.read_limits(settings),
    )
    return DatasetRead.model_validate(dataset)


@router.get("", response_model=Page[DatasetRead])
def list_datasets(principal: CurrentPrincipal, session: SessionDep, page: PageDep) -> Response:
    rows, total = service.list_datasets(session, principal, limit=page.limit, offset=page.offset)
    return Page[DatasetRead].of([DatasetRead.model_validate(d) for d in rows], total, page).as_response()


@router.get("/{dataset_id}", response_model=DatasetDetail, responses=error_responses(404))
def get_dataset(
    dataset_id: str, principal: CurrentPrincipal, session: SessionDep, artifacts: ArtifactsDep
) -> DatasetDetail:
    dataset = service.visible_dataset(session, principal, dataset_id)
    return DatasetDetail(
        **DatasetRead.model_validate(dataset).model_dump(), preview=service.preview(artifacts, dataset)
    )


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(403, 404))
def delete_dataset(
    dataset_id: str, principal: CurrentPrincipal, session: SessionDep, artifacts: ArtifactsDep
) -> None:
    service.delete_dataset(session, artifacts, principal, dataset_id)
