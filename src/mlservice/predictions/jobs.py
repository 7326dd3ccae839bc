"""The predictions domain's job kinds: batch predictions and quality checks, run by a worker."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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
from mlservice.jobs.runner import pool_share
from mlservice.ml import MissingColumnsError, Prediction, TrainedModel, evaluate_bundle
from mlservice.ml.threads import cpu_threads
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
    model = cache.get(served.bundle_path, model_key=served.model_key, version=served.version)
    return model, served, inputs


def _chunk_rows(rows: int, workers: int) -> int:
    """Rows per chunk: about four chunks per thread, so one slow chunk leaves no thread idle long,
    and never more than ``CHUNK_ROWS`` (memory)."""
    return min(CHUNK_ROWS, max(1, math.ceil(rows / (workers * 4))))


def predict_in_chunks(
    model: TrainedModel,
    inputs: pd.DataFrame,
    *,
    workers: int,
    chunk_rows: int,
    between: Callable[[int], None] = lambda _done: None,
) -> Prediction:
    """The predictions for ``inputs``, in their order, computed chunk by chunk by ``workers``
    threads (numpy's matrix products and most of the feature transform release the GIL, so
    threads use the cores without copying the frame to other processes). Each thread's BLAS
    runs single-threaded meanwhile: the parallelism is the chunks'. ``between(rows_done)`` runs
    on the calling thread after each chunk, in order (progress, cancellation); whatever it or
    a chunk raises ends the whole call, the chunks not yet started cancelled."""
    starts = range(0, max(len(inputs), 1), chunk_rows)

    def one(start: int) -> Prediction:
        try:
            return model.predict_frame(inputs.iloc[start : start + chunk_rows])
        except MissingColumnsError as exc:
            raise Unprocessable(str(exc), code="missing_columns") from None

    parts: list[Prediction] = []
    if workers <= 1 or len(starts) == 1:
        for start in starts:
            parts.append(one(start))
            between(min(len(inputs), start + chunk_rows))
    else:
        with cpu_threads(1), ThreadPoolExecutor(workers, thread_name_prefix="batch-chunk") as pool:
            futures = [pool.submit(one, start) for start in starts]
            try:
                for start, future in zip(starts, futures):
                    parts.append(future.result())
                    between(min(len(inputs), start + chunk_rows))
            finally:
                for future in futures:
                    future.cancel()
    first = parts[0]
    return Prediction(
        labels=[label for part in parts for label in part.labels],
        confidences=np.concatenate([part.confidences for part in parts]),
        probabilities=np.vstack([part.probabilities for part in parts]),
        classes=first.classes,
        ignored_columns=first.ignored_columns,
    )


def run_batch_prediction(context: WorkerContext, job: Job, reporter: JobReporter) -> JobOutcome:
    reporter.stage("load", 2)
    model, served, inputs = _model_for(context, job)
    reporter.stage("predict", 10)
    rows = len(inputs)
    if rows >= context.settings.batch_parallel_min_rows:
        workers = pool_share()
        chunk_rows = _chunk_rows(rows, workers)
    else:
        workers, chunk_rows = 1, CHUNK_ROWS

    def between(done: int) -> None:
        reporter.check_cancelled()
        reporter.progress(10 + 80 * min(1.0, done / max(rows, 1)))

    reporter.check_cancelled()
    # Nothing is written before every chunk has succeeded: a failed job leaves no rows in the log.
    prediction = predict_in_chunks(
        model, inputs, workers=workers, chunk_rows=chunk_rows, between=between
    )
    labels, confidence, proba = prediction.labels, prediction.confidences, prediction.probabilities
    ignored = prediction.ignored_columns
    reporter.stage("save", 92)
    columns = {
        "prediction": pa.array([str(label) for label in labels], pa.string()),
        "confidence": pa.array(confidence.astype(np.float32)),
    }
    for index, cls in enumerate(model.classes):
        columns[f"p:{cls}"] = pa.array(proba[:, index].astype(np.float32))
    table = pa.table(columns)
    # The results file and the log's file are written side by side (Parquet encoding releases
    # the GIL); a failure of either fails the job, whose sweep removes what the other wrote.
    with ThreadPoolExecutor(1, thread_name_prefix="batch-save") as pool:
        results_written = pool.submit(
            context.artifacts.write_with, results_path(job.id), lambda tmp: pq.write_table(table, tmp)
        )
        logged = prediction_log.build_table(
            served.log_schema,
            inputs,
            version=served.version,
            labels=labels,
            confidences=confidence,
            job_id=job.id,
            user_id=job.user_id,
        )
        prediction_log.write_batch(
            context.artifacts,
            served.model_key,
            logged,
            prediction_log.batch_name(served.version, job.id),
        )
        results_written.result()
    shares = (
        pd.Series(labels, dtype=object).value_counts(normalize=True).round(6).to_dict()
        if labels
        else {}
    )
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
    return JobOutcome(
        result={
            "model_key": served.model_key,
            "version": served.version,
            "metrics": metrics,
            "summary": registry.summary_metrics(metrics),
        }
    )


PREDICT = JobKind(
    JobType.predict,
    ("load", "predict", "save"),
    run_batch_prediction,
    recovery=discard_logged_rows,
    queue="predict",
)
QUALITY = JobKind(JobType.quality, ("load", "evaluate"), run_quality_check, queue="predict")
KINDS = (PREDICT, QUALITY)
