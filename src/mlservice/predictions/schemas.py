from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class PredictRequest(BaseModel):
    """Seed shape: {"model_key", "version"?, "data": [{...}]} — or a dataset instead of data."""

    model_config = ConfigDict(extra="forbid")

    model_key: str = Field(min_length=1, max_length=100)
    version: str | None = Field(None, max_length=32, description="default: the active version")
    data: list[dict[str, Any]] | None = None
    dataset_id: str | None = None


class SyncPredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(None, max_length=32)
    data: list[dict[str, Any]] = Field(description="records to predict")


class QualityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_key: str = Field(min_length=1, max_length=100)
    version: str | None = Field(None, max_length=32)
    target: str = Field(min_length=1, max_length=200)
    data: list[dict[str, Any]] | None = None
    dataset_id: str | None = None


class RowResult(BaseModel):
    prediction: Any
    confidence: float
    probabilities: dict[str, float]


class SyncPredictResponse(BaseModel):
    model_key: str
    version: str
    results: list[RowResult]
    ignored_columns: list[str]


class PredictJobRead(BaseModel):
    job_id: str
    status: str
    stage: str | None
    progress: float
    model_key: str | None
    version: str | None
    error: str | None
    total: int | None
    results: list[RowResult] | None


ExportFormat = Literal["json", "csv"]
