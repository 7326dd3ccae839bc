from __future__ import annotations

from fastapi import APIRouter, Response, status

from mlservice.auth.deps import AdminPrincipal, CurrentPrincipal
from mlservice.db import SessionDep
from mlservice.db.pagination import Page, PageDep
from mlservice.errors import error_responses
from mlservice.predictions.deps import VersionResolverDep
from mlservice.registry import service
from mlservice.registry.models import ModelVersion
from mlservice.registry.schemas import (
    ChangeRead,
    ModelDetail,
    ModelSummary,
    VersionDetail,
    VersionSummary,
)

router = APIRouter(prefix="/models", tags=["models"], responses=error_responses(401, 422))


def _summary(row: ModelVersion, active: str | None) -> VersionSummary:
    return VersionSummary(
        version=row.version, active=row.version == active, created_at=row.created_at,
        created_by=row.created_by, metrics=service.summary_metrics(row.metrics), job_id=row.job_id,
        dataset_id=row.dataset_id, parent_version=row.parent_version, target=row.target,
        classes=row.classes, features=row.features,
    )


def _detail(session, key: str) -> ModelDetail:  # type: ignore[no-untyped-def]
    model = service.get_model(session, key)
    versions = service.live_versions(session, key)
    active = next((v for v in versions if v.version == model.active_version), None)
    return ModelDetail(
        model_key=model.key,
        active_version=model.active_version,
        target=active.target if active else None,
        features=active.features if active else [],
        column_schema=active.schema if active else None,
        versions=[_summary(v, model.active_version) for v in versions],
        changes=[ChangeRead.model_validate(c, from_attributes=True) for c in service.changes(session, key)],
    )


@router.get("", response_model=Page[ModelSummary])
def list_models(_principal: CurrentPrincipal, session: SessionDep, page: PageDep) -> Response:
    items, total = service.list_models(session, limit=page.limit, offset=page.offset)
    return Page[ModelSummary].of([ModelSummary(**item) for item in items], total, page).as_response()


@router.get("/{model_key}", response_model=ModelDetail, responses=error_responses(404))
def get_model(model_key: str, _principal: CurrentPrincipal, session: SessionDep) -> ModelDetail:
    return _detail(session, model_key)


@router.get("/{model_key}/versions/{version}", response_model=VersionDetail,
            responses=error_responses(404))
def get_version(model_key: str, version: str, _principal: CurrentPrincipal, session: SessionDep) -> VersionDetail:
    row = service.get_version(session, model_key, version)
    model = service.get_model(session, model_key)
    return VersionDetail(
        **_summary(row, model.active_version).model_dump(),
        column_schema=row.schema, full_metrics=row.metrics, training=row.training,
    )


ADMIN_CHANGE = error_responses(403, 404, 409)


@router.post("/{model_key}/versions/{version}/promote", response_model=ModelDetail,
             responses=ADMIN_CHANGE)
def promote(
    model_key: str, version: str, admin: AdminPrincipal, session: SessionDep, versions: VersionResolverDep
) -> ModelDetail:
    service.promote(session, admin, model_key, version)
    versions.forget(model_key)
    return _detail(session, model_key)


@router.post("/{model_key}/rollback", response_model=ModelDetail, responses=ADMIN_CHANGE)
def rollback(model_key: str, admin: AdminPrincipal, session: SessionDep, versions: VersionResolverDep) -> ModelDetail:
    service.rollback(session, admin, model_key)
    versions.forget(model_key)
    return _detail(session, model_key)


@router.delete("/{model_key}/versions/{version}", status_code=status.HTTP_204_NO_CONTENT,
               responses=ADMIN_CHANGE)
def delete_version(model_key: str, version: str, admin: AdminPrincipal, session: SessionDep) -> None:
    service.delete_version(session, admin, model_key, version)

