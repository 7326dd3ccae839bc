from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DriftCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_key: str = Field(min_length=1, max_length=100)
    version: str | None = Field(None, max_length=32, description="default: the active version")
    since: datetime | None = Field(None, description="default: the end of the last check's window")
    until: datetime | None = Field(None, description="default: now")
    last_days: int | None = Field(None, ge=1, le=3650, description="instead of since: the last N days")
    dataset_id: str | None = Field(None, description="check an uploaded dataset instead of the log")
    data: list[dict[str, Any]] | None = Field(None, description="check these records instead of the log")


class ReportSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    model_key: str
    version: str
    job_id: str | None
    trigger: str
    source: str
    window_start: datetime | None
    window_end: datetime | None
    verdict: str
    sample_size: int
    drifted_share: float
    created_at: datetime


class ReportRead(ReportSummary):
    features: list[dict[str, Any]]
    prediction_drift: dict[str, Any] | None
    drifted_features: list[str]
    realised_accuracy: dict[str, Any] | None
    thresholds: dict[str, Any]
