"""Datasets: parse an upload once, keep it as Parquet, describe its columns."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from mlservice.artifacts import ArtifactStore, remove_stale
from mlservice.datasets.models import Dataset
from mlservice.db.pagination import owned_or_404, paginate, visible_to
from mlservice.errors import Unprocessable
from mlservice.ml import ReadLimits, infer_schema, read_records, read_table
from mlservice.principal import Principal
from mlservice.settings import Settings

PREVIEW_ROWS = 20
SUPPORTED_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json",
                      ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def read_limits(settings: Settings) -> ReadLimits:
    return ReadLimits(max_bytes=settings.max_body_bytes, max_table_bytes=settings.max_table_bytes)


# The columns' lengths (datasets.name, datasets.filename): PostgreSQL refuses longer values.
MAX_NAME = 200
MAX_FILENAME = 255


def safe_filename(filename: str | None) -> str | None:
    """Only the last path component, without control characters (NUL among them); never used
    to build a path on disk."""
    if not filename:
        return None
    name = "".join(ch for ch in Path(filename.replace("\\", "/")).name if ch.isprintable())
    return fit(name, MAX_FILENAME) if name.strip(". ") else None


def fit(name: str, limit: int) -> str:
    """``name`` cut to ``limit`` characters, keeping its suffix (the format is read from it)."""
    if len(name) <= limit:
        return name
    suffix = Path(name).suffix
    suffix = suffix if len(suffix) < limit // 2 else ""
    return name[: limit - len(suffix)] + suffix


def describe_columns(frame: pd.DataFrame) -> list[dict[str, Any]]:
    schema = infer_schema(frame)
    return [
        {"name": c.name, "type": c.kind, "reason": c.reason, "missing_share": round(c.missing_share, 6)}
        for c in schema.columns
    ]


def store_frame(
    session: Session,
    artifacts: ArtifactStore,
    principal: Principal | None,
    frame: pd.DataFrame,
    *,
    name: str,
    filename: str | None,
    fmt: str,
) -> Dataset:
    """Write the Parquet file, then the row; if the row fails, the file goes too."""
    if "\x00" in name or any("\x00" in str(column) for column in frame.columns):
        raise Unprocessable("names cannot contain the NUL character (\\x00)", code="invalid_value")
    dataset_id = uuid.uuid4().hex
    relative = f"datasets/{dataset_id}.parquet"
    columns = describe_columns(frame)
    path = artifacts.write_with(relative, lambda tmp: frame.to_parquet(tmp, index=False))
    try:
        dataset = Dataset(
            id=dataset_id,
            name=name,
            filename=filename,
            format=fmt,
            rows=len(frame),
            columns=columns,
            size_bytes=path.stat().st_size,
            path=relative,
            user_id=principal.user_id if principal else None,
        )
        session.add(dataset)
        session.flush()
    except BaseException:
        artifacts.delete(relative)
        raise
    return dataset


def ingest_bytes(
    session: Session,
    artifacts: ArtifactStore,
    principal: Principal,
    data: bytes,
    *,
    filename: str | None,
    name: str | None,
    limits: ReadLimits,
) -> Dataset:
    filename = safe_filename(filename)
    fmt = SUPPORTED_SUFFIXES.get(Path(filename).suffix.lower()) if filename else None
    frame = read_table(data, format=fmt, filename=filename, limits=limits)
    return store_frame(
        session, artifacts, principal, frame,
        name=name or fit(filename or "upload", MAX_NAME), filename=filename, fmt=fmt or "sniffed",
    )


def ingest_records(
    session: Session,
    artifacts: ArtifactStore,
    principal: Principal,
    records: list[dict[str, Any]],
    *,
    name: str,
    limits: ReadLimits,
) -> Dataset:
    frame = read_records(records, limits=limits)
    return store_frame(session, artifacts, principal, frame, name=name, filename=None, fmt="records")


def visible_dataset(session: Session, principal: Principal, dataset_id: str) -> Dataset:
    return owned_or_404(session.get(Dataset, dataset_id), principal, f"dataset {dataset_id}")


def list_datasets(
    session: Session, principal: Principal, *, limit: int, offset: int
) -> tuple[list[Dataset], int]:
    query = visible_to(select(Dataset), Dataset.user_id, principal)
    return paginate(session, query, Dataset.created_at.desc(), limit=limit, offset=offset)


def load_frame(artifacts: ArtifactStore, dataset: Dataset, columns: list[str] | None = None) -> pd.DataFrame:
    return pd.read_parquet(artifacts.path(dataset.path), columns=columns)


def json_safe_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    for record in records:
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                record[key] = None
    return records


def preview(artifacts: ArtifactStore, dataset: Dataset) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(artifacts.path(dataset.path)).read_row_group(0) if dataset.rows else None
    if table is None:
        return []
    return json_safe_records(table.slice(0, PREVIEW_ROWS).to_pandas())


def sweep_orphan_files(session: Session, artifacts: ArtifactStore, older_than_s: float) -> int:
    """Remove dataset files no row points at: an upload cut off between writing its file and
    committing its row. Only old ones, so an upload still in flight keeps its file."""
    directory = artifacts.path("datasets")
    if not directory.is_dir():
        return 0
    known = set(session.scalars(select(Dataset.path)))
    orphans = (path for path in directory.glob("*.parquet") if artifacts.relative(path) not in known)
    return remove_stale(orphans, older_than_s)


def delete_dataset(session: Session, artifacts: ArtifactStore, principal: Principal, dataset_id: str) -> None:
    dataset = visible_dataset(session, principal, dataset_id)
    relative = dataset.path
    session.delete(dataset)
    session.flush()
    artifacts.delete(relative)
