"""True labels sent back for predicted rows, and what they say about the predictions: the
realised accuracy (drift reports) and labelled rows to train on (retraining)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from mlservice.artifacts import ArtifactStore
from mlservice.errors import Conflict, NotFound, Unprocessable
from mlservice.jobs.models import JobStatus, JobType
from mlservice.jobs.service import visible_job
from mlservice.predictions.models import PredictionFeedback
from mlservice.predictions.service import results_path
from mlservice.principal import Principal


def add_feedback(
    session: Session, artifacts: ArtifactStore, principal: Principal, job_id: str, labels: list[dict[str, Any]]
) -> dict[str, Any]:
    """True labels for rows of a completed prediction job: ``[{"row": i, "label": "..."}]``."""
    job = visible_job(session, principal, job_id)
    if job.type != JobType.predict.value:
        raise NotFound(f"job {job_id} is not a predict job")
    if job.status != JobStatus.completed.value:
        raise Conflict(f"job {job_id} is {job.status}; feedback needs a completed prediction", code="job_not_completed")
    predictions = pq.read_table(artifacts.path(results_path(job.id)), columns=["prediction"]).column(0).to_pylist()
    bad = [item["row"] for item in labels if not 0 <= item["row"] < len(predictions)]
    if bad:
        raise Unprocessable(f"row(s) {bad[:10]} are outside 0…{len(predictions) - 1}", code="bad_row")
    existing = {
        f.row_index: f for f in session.scalars(
            select(PredictionFeedback).where(PredictionFeedback.job_id == job.id)
        )
    }
    for item in labels:
        row, label = item["row"], str(item["label"])
        if row in existing:
            existing[row].label = label
        else:
            session.add(PredictionFeedback(
                job_id=job.id, model_key=job.model_key or "", version=job.model_version or "",
                row_index=row, label=label, predicted=str(predictions[row]), user_id=principal.user_id,
            ))
    session.flush()
    stored = session.scalars(select(PredictionFeedback).where(PredictionFeedback.job_id == job.id)).all()
    correct = sum(f.label == f.predicted for f in stored)
    return {"job_id": job.id, "labelled_rows": len(stored), "realised_accuracy": correct / len(stored) if stored else None}


def realised_accuracy(session: Session, model_key: str, since: datetime | None, until: datetime | None) -> dict[str, Any] | None:
    query = select(PredictionFeedback).where(PredictionFeedback.model_key == model_key)
    if since:
        query = query.where(PredictionFeedback.created_at >= since)
    if until:
        query = query.where(PredictionFeedback.created_at < until)
    rows = session.scalars(query).all()
    if not rows:
        return None
    return {"labelled_rows": len(rows), "accuracy": sum(r.label == r.predicted for r in rows) / len(rows)}


def labels_by_job(session: Session, model_key: str) -> dict[str, dict[int, str]]:
    """Every label sent back for the model's predictions: job id → row index → label."""
    by_job: dict[str, dict[int, str]] = {}
    for item in session.scalars(select(PredictionFeedback).where(PredictionFeedback.model_key == model_key)):
        by_job.setdefault(item.job_id, {})[item.row_index] = item.label
    return by_job
