from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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


class Performance(BaseModel):
    """The checked version's accuracy on the window against its holdout accuracy."""

    reference: float | None = Field(description="the version's holdout accuracy")
    value: float | None = Field(description="realised accuracy when enough rows were labelled, else the estimate")
    source: Literal["realised", "estimated"] | None
    sample_size: int = Field(description="rows the value rests on (labelled rows for realised)")
    change: float | None = Field(description="value - reference")
    threshold: float = Field(description="ML_RETRAINING_ACCURACY_DROP_THRESHOLD")
    dropped: bool = Field(description="change <= threshold, on at least ML_DRIFT_MIN_SAMPLES rows")


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
    # The accuracy fields live in the report's JSON (router.report_summary fills them), so a
    # list of reports can draw accuracy over time without fetching each report.
    realised_accuracy: dict[str, Any] | None = Field(
        None, description="{labelled_rows, accuracy} of feedback for the version's rows in the window")
    estimated_accuracy: float | None = Field(
        None, description="mean calibrated confidence of the version's predictions in the window; null without any")
    estimated_accuracy_interval: list[float] | None = Field(None, description="[low, high]")
    holdout_accuracy: float | None = None
    performance: Performance | None = Field(None, description="null on reports made before 0.12")
    # Per-feature PSI in the list too, so the dashboard draws each feature's PSI over time from
    # one list call instead of fetching every report with all its bins.
    feature_psi: dict[str, float | None] = Field(default_factory=dict, description="{feature: PSI}")
    psi_threshold: float | None = Field(None, description="ML_DRIFT_PSI_THRESHOLD when the check ran")


class ReportRead(ReportSummary):
    features: list[dict[str, Any]] = Field(description="drifted first, by impact (importance × PSI), else by PSI")
    prediction_drift: dict[str, Any] | None
    drifted_features: list[str]
    thresholds: dict[str, Any]
