"""How many predictions each model answered per hour: the dashboard's sparklines.

Counted from the prediction log's timestamp column alone (Parquet reads just that column), so
a day with a million logged rows costs a column read and one ``bincount``, not a row read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from mlservice.artifacts import ArtifactStore
from mlservice.predictions.log import log_tables
from mlservice.registry.models import RegisteredModel

BUCKET_SECONDS = 3600
_MICROS = 1_000_000
_TS = pa.timestamp("us", tz="UTC")


def hourly_counts(store: ArtifactStore, model_key: str, start: datetime, hours: int) -> list[int]:
    """Predictions logged in each hour from ``start`` (an hour boundary), oldest first."""
    end = start + timedelta(hours=hours)
    counts = np.zeros(hours, dtype=np.int64)
    start_us = int(start.timestamp()) * _MICROS
    for table in log_tables(store, model_key, start.date(), end.date(), columns=["_ts"]):
        micros = pc.cast(pc.cast(table["_ts"], _TS), pa.int64()).to_numpy()
        buckets = (micros - start_us) // (BUCKET_SECONDS * _MICROS)
        buckets = buckets[(buckets >= 0) & (buckets < hours)]
        counts += np.bincount(buckets, minlength=hours)
    return counts.tolist()


def prediction_activity(session: Session, store: ArtifactStore, hours: int, now: datetime | None = None) -> dict[str, Any]:
    """Hourly counts of every registered model over the last ``hours`` hours.

    Buckets are whole clock hours (UTC) and the last one is the hour in progress, so a refresh
    moves counts into the same bars instead of shifting every bar by a few minutes."""
    moment = now or datetime.now(UTC)
    start = moment.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    keys = session.scalars(select(RegisteredModel.key).order_by(RegisteredModel.key)).all()
    return {
        "hours": hours,
        "bucket_s": BUCKET_SECONDS,
        "start": start,
        "models": {key: hourly_counts(store, key, start, hours) for key in keys},
    }
