"""The predictions domain's job kinds: batch predictions and quality checks, run by a worker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from mlservice.artifacts import ArtifactStore
from mlservice.errors import Unprocessable
from mlservice.jobs.kinds import JobKind, JobOutcome, WorkerContext
from mlservice.jobs.models import Job, JobType
from mlservice.jobs.reporter import JobReporter
from mlservice.ml import MissingColumnsError, evaluate_bundle
from mlservice.predictions import log as prediction_log
from mlservice.predictions.service import load_inputs, results_path, served_version
from mlservice.registry import service as registry

CHUNK_ROWS = 20_000


def model_cache(context: WorkerContext) -> registry.ModelCache:
    """The worker process's loaded models, shared by every job it runs."""
    return context.cache.setdefault("models", registry.ModelCache(context.artifacts, capacity=4))


def _model_for(context: WorkerContext, job: Job):  # type: ignore[no-untyped-def]
    cache = model_cache(context)
    with context.database.session() as session:
        row = registry.get_version(session, job.model_key or "", job.model_version)
        served = served_version(row)
        inputs = load_inputs(session, context.artifacts, job)
    return cache.get(served.bundle_path), served, inputs


def run_batch_prediction(context: WorkerContext, job: Job, reporter: JobReporter) -> JobOutcome:
    reporter.stage("load", 2)
    model, served, inputs = _model_for(context, job)
    reporter.stage("predict", 10)
    labels: list = []
    confidences: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    ignored: list[str] = []
    for start in range(0, max(len(inputs), 1), CHUNK_ROWS):
        reporter.check_cancelled()
        chunk = inputs.iloc[start:start + CHUNK_ROWS]
        try:
            prediction = model.predict_frame(chunk)
        except MissingColumnsError as exc:
            raise Unprocessable(str(exc), code="missing_columns") from None
        labels.extend(prediction.labels)
        confidences.append(prediction.confidences)
        probabilities.append(prediction.probabilities)
        ignored = prediction.ignored_columns
        reporter.progress(10 + 80 * min(1.0, (start + len(chunk)) / max(len(inputs), 1)))
    reporter.stage("save", 92)
    confidence = np.concatenate(confidences) if confidences else np.empty(0, np.float32)
    proba = np.vstack(probabilities) if probabilities else np.empty((0, len(model.classes)))
    columns = {
        "prediction": pa.array([str(label) for label in labels], pa.string()),
        "confidence": pa.array(confidence.astype(np.float32)),
    }
    for index, cls in enumerate(model.classes):
        columns[f"p:{cls}"] = pa.array(proba[:, index].astype(np.float32))
    table = pa.table(columns)
    context.artifacts.write_with(results_path(job.id), lambda tmp: pq.write_table(table, tmp))
    logged = prediction_log.build_table(
        served.log_schema, inputs, version=served.version, labels=labels,
        confidences=confidence, job_id=job.id, user_id=job.user_id,
    )
    prediction_log.write_batch(context.artifacts, served.model_key, logged, prediction_log.batch_name(served.version, job.id))
    shares = pd.Series(labels, dtype=object).value_counts(normalize=True).round(6).to_dict() if labels else {}
    return JobOutcome(
        result={
            "rows": len(labels),
            "model_key": served.model_key,
            "version": served.version,
            "class_shares": {str(k): float(v) for k, v in shares.items()},
            "mean_confidence": float(confidence.mean()) if len(confidence) else None,
            "ignored_columns": ignored,
        }
    )


def discard_logged_rows(_session: Session, artifacts: ArtifactStore, job: Job) -> None:
    """At recovery (see JobKind.recovery): a batch killed after writing its log fails, and
    rows of a failed job must not count towards drift."""
    if job.model_key:
        prediction_log.delete_job_rows(artifacts, job.model_key, job.id)


def run_quality_check(context: WorkerContext, job: Job, reporter: JobReporter) -> JobOutcome:
    reporter.stage("load", 5)
    model, served, inputs = _model_for(context, job)
    reporter.stage("evaluate", 30)
    target = job.params["target"]
    if target not in inputs.columns:
        raise Unprocessable(f"unknown target column {target!r}", code="unknown_target")
    try:
        metrics = evaluate_bundle(model, inputs, target)
    except MissingColumnsError as exc:
        raise Unprocessable(str(exc), code="missing_columns") from None
    return JobOutcome(result={
        "model_key": served.model_key,
        "version": served.version,
        "metrics": metrics,
        "summary": registry.summary_metrics(metrics),
    })


PREDICT = JobKind(JobType.predict, ("load", "predict", "save"), run_batch_prediction,
                  recovery=discard_logged_rows, queue="predict")
QUALITY = JobKind(JobType.quality, ("load", "evaluate"), run_quality_check, queue="predict")
KINDS = (PREDICT, QUALITY)
