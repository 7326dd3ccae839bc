"""The training job, run by a worker: load → engine stages → save a new version."""

from __future__ import annotations

import math
import shutil

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlservice.artifacts import ArtifactStore
from mlservice.datasets.models import Dataset
from mlservice.errors import NotFound
from mlservice.jobs.models import Job
from mlservice.jobs.runner import JobOutcome, WorkerContext
from mlservice.jobs.service import JobReporter
from mlservice.ml import EpochInfo, TrainedModel, save_bundle, train
from mlservice.registry import service as registry
from mlservice.registry.models import ModelVersion
from mlservice.training.service import training_config

# Share of the progress bar each stage starts at; fitting the network takes most of the time.
STAGE_START = {"validate": 5, "profile": 8, "fit_features": 12, "fit_model": 18, "evaluate": 92}
FIT_SPAN = (18.0, 92.0)
HISTORY_LIMIT = 500


def fit_progress(epoch: int, max_epochs: int, early_stopping: bool) -> float:
    """With early stopping the number of epochs is unknown: approach the end asymptotically."""
    done = 1 - math.exp(-epoch / 25) if early_stopping else epoch / max(max_epochs, 1)
    low, high = FIT_SPAN
    return low + (high - low) * min(done, 1.0)


def load_training_frame(context: WorkerContext, dataset_id: str) -> tuple[pd.DataFrame, str]:
    with context.database.session() as session:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise NotFound(f"dataset {dataset_id} was deleted before training started")
        relative = dataset.path
    return pd.read_parquet(context.artifacts.path(relative)), relative


def run_training(context: WorkerContext, job: Job, reporter: JobReporter) -> JobOutcome:
    params = job.params
    reporter.stage("load", 1)
    frame, dataset_relative = load_training_frame(context, params["dataset_id"])
    config, random_state = training_config(context.settings, params.get("params"))
    history: list[dict] = []

    def on_epoch(info: EpochInfo) -> None:
        history.append({"epoch": info.epoch, "loss": info.loss, "validation_score": info.validation_score})
        reporter.progress(
            fit_progress(info.epoch, info.max_epochs, config.early_stopping),
            details={"epoch": info.epoch, "max_epochs": info.max_epochs, "backend": info.backend,
                     "history": history[-HISTORY_LIMIT:]},
        )

    trained = train(
        frame,
        params["target"],
        config,
        column_types=params.get("column_types"),
        features=params.get("features"),
        on_stage=lambda name: reporter.stage(name, STAGE_START.get(name)),
        on_epoch=on_epoch,
        should_stop=reporter.should_stop,
        random_state=random_state,
    )
    # Progress writes are throttled; the finished job keeps the whole loss curve.
    reporter.progress(95, details={"epoch": len(history), "max_epochs": config.max_iter,
                                   "backend": trained.info.get("backend"), "history": history[-HISTORY_LIMIT:]},
                      force=True)
    reporter.stage("save", 96)
    version = save_version(context, job, trained, dataset_relative)
    return JobOutcome(result=_result(job, version, trained.metrics, trained.info), model_version=version)


def _result(job: Job, version: str, metrics: dict, info: dict) -> dict:
    return {
        "model_key": job.model_key,
        "version": version,
        "metrics": registry.summary_metrics(metrics),
        "rows": info.get("rows"),
        "epochs": info.get("epochs"),
        "backend": info.get("backend"),
        "hidden_layers": info.get("hidden_layers"),
    }


def registered_outcome(session: Session, _artifacts: ArtifactStore, job: Job) -> tuple[dict, str] | None:
    """Registering the version is a training's last step: a job killed after it did its work
    (see jobs.service.recover_interrupted)."""
    registered = _registered_by(session, job)
    if registered is None or registered.deleted_at is not None:
        return None
    info = (registered.training or {}).get("info") or {}
    return _result(job, registered.version, registered.metrics, info), registered.version


def save_version(
    context: WorkerContext, job: Job, trained: TrainedModel, dataset_relative: str,
    *, parent_version: str | None = None,
) -> str:
    """Bundle first (atomic, under a path unique to the job), then the registry row. A failure
    on the way removes the files, so no half version is ever referenced."""
    artifacts = context.artifacts
    key = job.model_key
    assert key is not None
    bundle_relative = f"models/{key}/{job.id}"
    data_relative = f"models/{key}/{job.id}.training.parquet"
    earlier = _left_by_earlier_attempt(context, job, bundle_relative)
    if earlier is not None:
        return earlier
    try:
        save_bundle(trained, artifacts.path(bundle_relative))
        artifacts.write_with(data_relative, lambda tmp: shutil.copyfile(artifacts.path(dataset_relative), tmp))
        for _attempt in range(3):
            try:
                with context.database.session(write=True) as session:
                    version = registry.next_version(session, key)
                    registry.register_version(
                        session,
                        key=key,
                        version=version,
                        principal_user_id=job.user_id,
                        target=trained.target,
                        classes=[str(c) for c in trained.classes],
                        features=list(trained.feature_columns),
                        schema=trained.schema.to_dict(),
                        metrics=trained.metrics,
                        training={"config": trained.config.to_dict(), "info": trained.info},
                        bundle_path=bundle_relative,
                        training_data_path=data_relative,
                        dataset_id=job.params.get("dataset_id"),
                        parent_version=parent_version,
                        job_id=job.id,
                    )
                return version
            except IntegrityError:
                continue  # another job took this version number at the same moment
        raise RuntimeError(f"could not allocate a version number for {key!r}")
    except BaseException:
        artifacts.delete(bundle_relative)
        artifacts.delete(data_relative)
        raise


def _left_by_earlier_attempt(context: WorkerContext, job: Job, bundle_relative: str) -> str | None:
    """A retried job (its worker was lost, distributed mode) may find its bundle path taken by an
    earlier attempt. Registered before that attempt's end was recorded: that is the job's version
    (no second one, and its bundle is never deleted). Registered by nothing: a leftover, removed
    so this attempt can write its own."""
    if not context.artifacts.path(bundle_relative).exists():
        return None
    with context.database.session() as session:
        registered = _registered_by(session, job)
        version = registered.version if registered is not None else None
    if version is None:
        context.artifacts.delete(bundle_relative)
    return version


def _registered_by(session: Session, job: Job) -> ModelVersion | None:
    return session.scalars(
        select(ModelVersion).where(ModelVersion.model_key == job.model_key, ModelVersion.job_id == job.id)
    ).first()
