"""Predictions: sync calls for real-time clients, async jobs for batches, results and export."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from mlservice.artifacts import ArtifactStore
from mlservice.datasets import service as datasets
from mlservice.datasets.models import Dataset
from mlservice.db import Database
from mlservice.errors import Conflict, NotFound, PayloadTooLarge, Unprocessable
from mlservice.jobs.models import Job, JobStatus, JobType
from mlservice.jobs.service import new_job, visible_job
from mlservice.ml import MissingColumnsError, ReadLimits, read_records, read_table
from mlservice.origin import Origin
from mlservice.predictions import log as prediction_log
from mlservice.predictions.schemas import BatchRequest
from mlservice.principal import Principal
from mlservice.registry import service as registry
from mlservice.registry.models import ModelVersion

# A promotion or rollback is served by every API process and replica within this (the one that
# made it forgets at once). One indexed read per model key and process per period: negligible.
ACTIVE_VERSION_TTL_S = 0.5
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ServedVersion:
    model_key: str
    version: str
    bundle_path: str
    log_features: tuple[tuple[str, str], ...]

    @cached_property
    def log_schema(self) -> pa.Schema:
        return prediction_log.feature_schema(self.log_features)


def served_version(row: ModelVersion) -> ServedVersion:
    kinds = {c["name"]: c["kind"] for c in row.schema.get("columns", [])}
    return ServedVersion(
        row.model_key, row.version, row.bundle_path,
        tuple((name, kinds.get(name, "categorical")) for name in row.features),
    )


class VersionResolver:
    """model key (+ optional version) → the version to serve. Which version is active is
    cached for ``ACTIVE_VERSION_TTL_S`` on the sync hot path: a promotion reaches every
    replica within that time."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._cache: dict[tuple[str, str | None], tuple[float, ServedVersion]] = {}
        self._lock = threading.Lock()

    def resolve(self, model_key: str, version: str | None) -> ServedVersion:
        key = (model_key, version)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and (version is not None or now - hit[0] < ACTIVE_VERSION_TTL_S):
            return hit[1]
        with self.database.session() as session:
            served = served_version(registry.get_version(session, model_key, version))
        if hit is not None and hit[1] == served:
            served = hit[1]  # the same object, with the log schema it has already built
        with self._lock:
            self._cache[key] = (now, served)
        return served

    def forget(self, model_key: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == model_key]:
                del self._cache[key]


def _missing_columns_error(exc: MissingColumnsError) -> Unprocessable:
    return Unprocessable(str(exc), code="missing_columns", details={"missing": list(exc.missing)})


FAST_ROWS = 64  # up to this many rows are predicted on the event loop; more go to a thread


async def predict_sync(
    models: registry.ModelCache,
    resolver: VersionResolver,
    log_writer: prediction_log.SyncLogWriter,
    principal: Principal,
    model_key: str,
    version: str | None,
    records: list[dict[str, Any]],
    max_rows: int,
) -> dict[str, Any]:
    """The real-time path. A one-row prediction costs about 0.1 ms of CPU, less than handing it
    to a thread would, so small batches run inline; the log write is awaited, not blocked on."""
    if not records:
        raise Unprocessable("'data' is empty: send at least one record", code="empty_data")
    if len(records) > max_rows:
        raise PayloadTooLarge(
            f"{len(records)} rows is more than the sync limit of {max_rows} (ML_SYNC_PREDICT_MAX_ROWS); "
            "use POST /predict for batches",
            code="batch_too_large",
        )
    served = resolver.resolve(model_key, version)
    model = models.get(served.bundle_path, model_key=served.model_key, version=served.version)
    try:
        if len(records) <= FAST_ROWS:
            prediction = model.predict_records(records)
        else:
            prediction = await run_in_threadpool(model.predict_records, records)
    except MissingColumnsError as exc:
        raise _missing_columns_error(exc) from None
    await log_writer.append_async(model_key, prediction_log.SyncRows(
        served.log_schema, served.version, records, prediction.labels, prediction.confidences,
        principal.user_id,
    ))
    return {
        "model_key": model_key,
        "version": served.version,
        "results": prediction.to_records(),
        "ignored_columns": prediction.ignored_columns,
    }


# Async batches -----------------------------------------------------------------------------


def input_path(job_id: str) -> str:
    return f"predictions/{job_id}/input.parquet"


def results_path(job_id: str) -> str:
    return f"predictions/{job_id}/results.parquet"


def start_batch(
    session: Session,
    artifacts: ArtifactStore,
    principal: Principal,
    origin: Origin,
    job_type: JobType,
    request: BatchRequest,
    *,
    upload: tuple[bytes, str | None] | None,
    limits: ReadLimits,
) -> Job:
    """Resolve the version now (so the job is reproducible), store the input, record the job.
    The request's own fields (a quality check's ``target``) become the job's parameters."""
    records, dataset_id = request.data, request.dataset_id
    if (records is not None) + (dataset_id is not None) + (upload is not None) != 1:
        raise Unprocessable("give exactly one of 'data' (records), 'dataset_id' or a file", code="data_source")
    row = registry.get_version(session, request.model_key, request.version)
    params: dict[str, Any] = request.model_dump(exclude=set(BatchRequest.model_fields))
    frame: pd.DataFrame | None = None
    if dataset_id is not None:
        params["dataset_id"] = datasets.visible_dataset(session, principal, dataset_id).id
    elif upload is not None:
        data, filename = upload
        frame = read_table(data, filename=datasets.safe_filename(filename), limits=limits)
    elif records:
        frame = read_records(records, limits=limits)
    else:
        raise Unprocessable("give 'data' (a non-empty list of records), 'dataset_id' or a file", code="empty_data")
    if frame is not None and len(frame) == 0:
        raise Unprocessable("the data has no rows", code="empty_data")
    job = new_job(session, job_type, principal, origin, model_key=request.model_key, model_version=row.version,
                  params=params)
    if frame is not None:
        relative = input_path(job.id)
        artifacts.write_with(relative, lambda tmp: frame.to_parquet(tmp, index=False))
        job.params = {**params, "input_path": relative}
    return job


def _finished_job(session: Session, principal: Principal, job_id: str, job_type: JobType) -> Job:
    job = visible_job(session, principal, job_id)
    if job.type != job_type.value:
        raise NotFound(f"job {job_id} is not a {job_type.value} job")
    return job


def job_results(
    session: Session,
    artifacts: ArtifactStore,
    principal: Principal,
    job_id: str,
    *,
    limit: int | None,
    offset: int,
) -> dict[str, Any]:
    job = _finished_job(session, principal, job_id, JobType.predict)
    body: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status,
        "stage": job.stage,
        "progress": job.progress,
        "model_key": job.model_key,
        "version": job.model_version,
        "error": job.error,
        "total": (job.result or {}).get("rows"),
        "results": None,
    }
    if job.status == JobStatus.completed.value:
        table = pq.read_table(artifacts.path(results_path(job.id)))
        end = table.num_rows if limit is None else min(table.num_rows, offset + limit)
        body["results"] = result_records(table.slice(offset, max(0, end - offset)))
    return body


def result_records(table: pa.Table) -> list[dict[str, Any]]:
    predictions = table.column("prediction").to_pylist()
    confidences = table.column("confidence").to_pylist()
    prob_columns = [name for name in table.column_names if name.startswith("p:")]
    probs = [table.column(name).to_pylist() for name in prob_columns]
    classes = [name[2:] for name in prob_columns]
    return [
        {
            "prediction": predictions[i],
            "confidence": confidences[i],
            "probabilities": {cls: column[i] for cls, column in zip(classes, probs)},
        }
        for i in range(table.num_rows)
    ]


def neutralise_formula(value: Any) -> Any:
    """Spreadsheet formula injection: a cell starting with = + - @ is prefixed with a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def export_rows(
    session: Session, artifacts: ArtifactStore, principal: Principal, job_id: str, fmt: str
) -> tuple[Iterator[bytes], str, str]:
    job = _finished_job(session, principal, job_id, JobType.predict)
    if job.status != JobStatus.completed.value:
        raise Conflict(
            f"job {job_id} is {job.status}; results can be exported once it has completed"
            + (f" (error: {job.error})" if job.error else ""),
            code="job_not_completed",
        )
    results = pq.read_table(artifacts.path(results_path(job.id)))
    inputs = load_inputs(session, artifacts, job)
    if fmt == "json":
        return _json_stream(results), "application/json", f"predictions-{job_id}.json"
    return _csv_stream(inputs, results), "text/csv; charset=utf-8", f"predictions-{job_id}.csv"


def load_inputs(session: Session, artifacts: ArtifactStore, job: Job) -> pd.DataFrame:
    if "input_path" in job.params:
        return pd.read_parquet(artifacts.path(job.params["input_path"]))
    dataset = session.get(Dataset, job.params["dataset_id"])
    if dataset is None:
        raise NotFound(f"the input dataset of job {job.id} was deleted", code="input_deleted")
    return datasets.load_frame(artifacts, dataset)


CHUNK_ROWS = 5000


def _json_stream(results: pa.Table) -> Iterator[bytes]:
    yield b"["
    first = True
    for start in range(0, results.num_rows, CHUNK_ROWS):
        for record in result_records(results.slice(start, CHUNK_ROWS)):
            yield (b"" if first else b",") + orjson.dumps(record)
            first = False
    yield b"]"


def _csv_stream(inputs: pd.DataFrame, results: pa.Table) -> Iterator[bytes]:
    columns = [*map(str, inputs.columns), "prediction", "confidence"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise_formula(c) for c in columns])
    predictions = results.column("prediction").to_pylist()
    confidences = results.column("confidence").to_pylist()
    clean = inputs.astype(object).where(inputs.notna(), None)
    for start in range(0, len(clean), CHUNK_ROWS):
        chunk = clean.iloc[start:start + CHUNK_ROWS].itertuples(index=False, name=None)
        for offset, row in enumerate(chunk):
            i = start + offset
            writer.writerow([*(neutralise_formula(v) for v in row), neutralise_formula(predictions[i]), confidences[i]])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")
