"""The training domain's job kinds: a training (load → engine stages → save a new version) and a
retrain (training.retrain), run by a worker."""

from __future__ import annotations

import pandas as pd
from sqlalchemy.orm import Session

from mlservice.artifacts import ArtifactStore
from mlservice.datasets.models import Dataset
from mlservice.errors import NotFound
from mlservice.jobs.kinds import JobKind, JobOutcome, WorkerContext
from mlservice.jobs.models import Job, JobType
from mlservice.jobs.reporter import JobReporter
from mlservice.jobs.runner import rebalance_threads
from mlservice.ml import EpochInfo, train
from mlservice.registry import service as registry
from mlservice.training.fitting import (
    fit_progress,
    rare_class_report,
    registered_by,
    save_version,
    stage_reporter,
)
from mlservice.training.retrain import run_retrain
from mlservice.training.service import training_config

HISTORY_LIMIT = 500


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
        rebalance_threads()
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
        on_stage=stage_reporter(reporter),
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
        **rare_class_report(info),
    }


def registered_outcome(session: Session, _artifacts: ArtifactStore, job: Job) -> tuple[dict, str] | None:
    """Registering the version is a training's last step: a job killed after it did its work
    (see jobs.service.recover_interrupted)."""
    registered = registered_by(session, job)
    if registered is None or registered.deleted_at is not None:
        return None
    info = (registered.training or {}).get("info") or {}
    return _result(job, registered.version, registered.metrics, info), registered.version


TRAINING_STAGES = ("load", "validate", "profile", "fit_features", "fit_model", "evaluate", "save")
TRAIN = JobKind(JobType.train, TRAINING_STAGES, run_training, recovery=registered_outcome, queue="train")
RETRAIN = JobKind(JobType.retrain, (*TRAINING_STAGES, "compare"), run_retrain, queue="train")
KINDS = (TRAIN, RETRAIN)
