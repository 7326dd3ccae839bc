from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class VersionSummary(BaseModel):
    version: str
    active: bool
    created_at: datetime
    created_by: int | None
    metrics: dict[str, Any]
    job_id: str | None
    dataset_id: str | None
    parent_version: str | None
    target: str
    classes: list[Any]
    features: list[str]


class VersionDetail(VersionSummary):
    column_schema: dict[str, Any]
    full_metrics: dict[str, Any]
    training: dict[str, Any]


class ModelSummary(BaseModel):
    model_key: str
    active_version: str | None
    versions: int
    status: str
    metrics: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class ChangeRead(BaseModel):
    version: str | None
    action: str
    previous_version: str | None
    user_id: int | None
    created_at: datetime


class ModelDetail(BaseModel):
    model_key: str
    active_version: str | None
    target: str | None
    features: list[str]
    column_schema: dict[str, Any] | None
    versions: list[VersionSummary]
    changes: list[ChangeRead]
