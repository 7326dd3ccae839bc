"""True labels sent back for predicted rows, and what they say about the predictions: the
realised accuracy (drift reports) and labelled rows to train on (retraining)."""

from __future__ import annotations

from collections.abc import Iterable
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

LABEL_MAX_CHARS = PredictionFeedback.__table__.c.label.type.length
IN_CHUNK = 500  # job ids per IN (...) query: stays far below every backend's parameter limit


def _label_text(value: Any) -> str:
    # JSON has one number type: 1.0 sent for a class the model knows as 1 must match its
    # predictions, which are stored as str(class).
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _checked_labels(labels: list[dict[str, Any]], rows: int) -> dict[int, str]:
    """row → label, refusing (before anything is stored) rows the job does not have, a row
    given two different labels in one request, and labels the database cannot hold."""
    outside = sorted({item["row"] for item in labels if not 0 <= item["row"] < rows})
    if outside:
        raise Unprocessable(
            f"row(s) {outside[:10]}{' …' if len(outside) > 10 else ''} are outside 0…{rows - 1}: "
            f"the prediction job has {rows} row(s), numbered from 0 in the order they were sent",
            code="bad_row",
        )
    chosen: dict[int, str] = {}
    conflicting: set[int] = set()
    for item in labels:
        label = _label_text(item["label"])
        if not label.strip():
            raise Unprocessable(f"row {item['row']} has an empty label", code="bad_label")
        if len(label) > LABEL_MAX_CHARS:
            raise Unprocessable(f"row {item['row']}'s label is longer than {LABEL_MAX_CHARS} characters",
                                code="bad_label")
        if chosen.setdefault(item["row"], label) != label:
            conflicting.add(item["row"])
    if conflicting:
        rows_named = sorted(conflicting)
        raise Unprocessable(
            f"row(s) {rows_named[:10]}{' …' if len(rows_named) > 10 else ''} are given different labels in "
            "this request: send one label per row (a later request may correct a label: the latest wins)",
            code="conflicting_labels",
        )
    return chosen


def add_feedback(
    session: Session, artifacts: ArtifactStore, principal: Principal, job_id: str, labels: list[dict[str, Any]]
) -> dict[str, Any]:
    """True labels for rows of a completed prediction job: ``[{"row": i, "label": "..."}]``.

    A row labelled again in a later request takes the new label (the latest wins). A label the
    model never predicted (a new class) is kept: retraining learns it from these rows."""
    job = visible_job(session, principal, job_id)
    if job.type != JobType.predict.value:
        raise NotFound(f"job {job_id} is not a predict job")
    if job.status != JobStatus.completed.value:
        raise Conflict(f"job {job_id} is {job.status}; feedback needs a completed prediction", code="job_not_completed")
    predictions = pq.read_table(artifacts.path(results_path(job.id)), columns=["prediction"]).column(0).to_pylist()
    chosen = _checked_labels(labels, len(predictions))
    existing = {
        f.row_index: f for f in session.scalars(
            select(PredictionFeedback).where(PredictionFeedback.job_id == job.id)
        )
    }
    for row, label in chosen.items():
        if row in existing:
            existing[row].label = label
            existing[row].user_id = principal.user_id
        else:
            session.add(PredictionFeedback(
                job_id=job.id, model_key=job.model_key or "", version=job.model_version or "",
                row_index=row, label=label, predicted=str(predictions[row]), user_id=principal.user_id,
            ))
    session.flush()
    stored = session.scalars(select(PredictionFeedback).where(PredictionFeedback.job_id == job.id)).all()
    correct = sum(f.label == f.predicted for f in stored)
    return {"job_id": job.id, "labelled_rows": len(stored), "realised_accuracy": correct / len(stored) if stored else None}


def realised_accuracy(session: Session, model_key: str, version: str, job_ids: Iterable[str]) -> dict[str, Any] | None:
    """Accuracy on the labelled rows of these prediction jobs that ``version`` predicted (a
    drift check passes the jobs whose rows its window holds)."""
    ids = sorted({str(j) for j in job_ids})
    labelled = correct = 0
    for start in range(0, len(ids), IN_CHUNK):
        for label, predicted in session.execute(
            select(PredictionFeedback.label, PredictionFeedback.predicted).where(
                PredictionFeedback.model_key == model_key, PredictionFeedback.version == version,
                PredictionFeedback.job_id.in_(ids[start:start + IN_CHUNK]),
            )
        ):
            labelled += 1
            correct += label == predicted
    return {"labelled_rows": labelled, "accuracy": correct / labelled} if labelled else None


def labels_by_job(session: Session, model_key: str) -> dict[str, dict[int, str]]:
    """Every label sent back for the model's predictions: job id → row index → label."""
    by_job: dict[str, dict[int, str]] = {}
    for item in session.scalars(select(PredictionFeedback).where(PredictionFeedback.model_key == model_key)):
        by_job.setdefault(item.job_id, {})[item.row_index] = item.label
    return by_job
