from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class BatchRequest(BaseModel):
    """What every batch job over a model takes: {"model_key", "version"?, "data": [{...}]} (the
    0.11.2 shape), or a dataset instead of the data."""

    model_config = ConfigDict(extra="forbid")

    model_key: str = Field(min_length=1, max_length=100)
    version: str | None = Field(None, max_length=32, description="default: the active version")
    data: list[dict[str, Any]] | None = None
    dataset_id: str | None = None


class PredictRequest(BatchRequest):
    """A batch prediction: a job whose results are read page by page or exported."""


class SyncPredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(None, max_length=32)
    data: list[dict[str, Any]] = Field(description="records to predict")


class QualityRequest(BatchRequest):
    """A quality check: the model's metrics on rows whose true class is in ``target``."""

    target: str = Field(min_length=1, max_length=200, description="the label column")


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


class FeedbackItem(BaseModel):
    row: int = Field(ge=0)
    label: str | int | float | bool


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[FeedbackItem] = Field(min_length=1, max_length=1_000_000)


class FeedbackRead(BaseModel):
    job_id: str
    labelled_rows: int
    realised_accuracy: float | None


class ActivityRead(BaseModel):
    hours: int
    bucket_s: int = Field(description="seconds per count: one hour")
    start: datetime = Field(description="start of the first bucket, a whole UTC hour; the last bucket is the current hour")
    models: dict[str, list[int]] = Field(description="each registered model's predictions per bucket, oldest first")
