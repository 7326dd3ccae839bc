"""Starting a training: check the request against the data, record the job, hand it on."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from mlservice.artifacts import ArtifactStore
from mlservice.datasets import service as datasets
from mlservice.errors import Unprocessable
from mlservice.jobs.models import Job, JobType
from mlservice.jobs.service import new_job
from mlservice.ml import ReadLimits, TrainingConfig, read_records, read_table, validate_target
from mlservice.origin import Origin
from mlservice.principal import Principal
from mlservice.registry.service import check_model_key
from mlservice.settings import Settings
from mlservice.training.schemas import TrainParams, TrainRequest


def check_columns(columns: list[str], target: str, features: list[str] | None, column_types: dict | None) -> None:
    known = set(columns)
    shown = ", ".join(repr(c) for c in columns[:30]) + (" …" if len(columns) > 30 else "")
    if target not in known:
        raise Unprocessable(f"unknown target column {target!r}; the data has: {shown}", code="unknown_target")
    unknown = [c for c in [*(features or []), *(column_types or {})] if c not in known]
    if unknown:
        raise Unprocessable(
            "unknown column(s) " + ", ".join(map(repr, unknown)) + f"; the data has: {shown}",
            code="unknown_columns",
        )
    if features and target in features:
        raise Unprocessable(f"the target {target!r} cannot also be a feature", code="target_is_feature")


def _checked_frame(frame: pd.DataFrame, request: TrainRequest) -> pd.DataFrame:
    """The data is in hand: refuse it now (unknown columns, a single class) rather than store it for a
    job that can only fail."""
    check_columns(list(map(str, frame.columns)), request.target, request.features, request.column_types)
    validate_target(frame, request.target)
    return frame


def start_training(
    session: Session,
    artifacts: ArtifactStore,
    principal: Principal,
    origin: Origin,
    request: TrainRequest,
    *,
    limits: ReadLimits,
    upload: tuple[bytes, str | None] | None = None,
) -> Job:
    check_model_key(request.model_key)
    sources = (upload is not None) + (request.data is not None) + (request.dataset_id is not None)
    if sources != 1:
        raise Unprocessable(
            "give exactly one source of training data: 'data' (records), 'dataset_id', or a file",
            code="data_source",
        )
    if upload is not None:
        data, filename = upload
        frame = _checked_frame(read_table(data, filename=datasets.safe_filename(filename), limits=limits), request)
        dataset = datasets.store_frame(
            session, artifacts, principal, frame,
            name=f"{request.model_key} training upload", filename=datasets.safe_filename(filename), fmt="upload",
        )
    elif request.data is not None:
        frame = _checked_frame(read_records(request.data, limits=limits), request)
        dataset = datasets.store_frame(
            session, artifacts, principal, frame,
            name=f"{request.model_key} training data", filename=None, fmt="records",
        )
    else:
        dataset = datasets.visible_dataset(session, principal, request.dataset_id or "")
        check_columns([c["name"] for c in dataset.columns], request.target, request.features, request.column_types)
        # The target column alone is cheap to read: a single class is refused now, as for uploads.
        validate_target(datasets.load_frame(artifacts, dataset, columns=[request.target]), request.target)
    return new_job(
        session, JobType.train, principal, origin,
        model_key=request.model_key,
        params={
            "dataset_id": dataset.id,
            "target": request.target,
            "features": request.features,
            "column_types": request.column_types,
            "params": request.params.model_dump(exclude_none=True) if request.params else {},
        },
    )


# TrainingConfig fields with a server-wide ML_* default.
CONFIGURABLE = tuple(field.name for field in fields(TrainingConfig) if field.name in Settings.model_fields)


def training_config(settings: Settings, overrides: dict[str, Any] | None) -> tuple[TrainingConfig, int]:
    """The ML_* defaults, with the request's overrides on top; returns (config, random_state).
    A hyperparameter is a field of ml's TrainingConfig; a setting of the same name is its
    server-wide default, and a TrainParams field of the same name lets a request override it."""
    params = TrainParams.model_validate(overrides or {})
    values = {name: getattr(settings, name) for name in CONFIGURABLE}
    values.update(params.model_dump(exclude_none=True, exclude={"random_state"}))
    return TrainingConfig(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()}), params.random_state or 0
