"""What the training and the retrain jobs share: how far a fit's progress bar has come, the
warning about classes too rare to evaluate, and saving the fitted model as a new version."""

from __future__ import annotations

import math
import shutil

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlservice.jobs.kinds import WorkerContext
from mlservice.jobs.models import Job
from mlservice.jobs.reporter import JobReporter
from mlservice.jobs.runner import rebalance_threads, watch_other_work
from mlservice.ml import TrainedModel, save_bundle
from mlservice.registry import service as registry
from mlservice.registry.models import ModelVersion

# Share of the progress bar each stage starts at; fitting the network takes most of the time.
STAGE_START = {"validate": 5, "profile": 8, "fit_features": 12, "fit_model": 18, "evaluate": 92}
FIT_SPAN = (18.0, 92.0)
SHOWN_CLASSES = 20


def stage_reporter(reporter: JobReporter):  # type: ignore[no-untyped-def]
    """``on_stage`` for :func:`mlservice.ml.train`: the job's stage, and the job's CPU threads
    fitted to the machine as the model's fit starts, judged over the feature fitting just before
    (at least 0.2 s): the request that uploaded the data may have held a core when the job
    started, and a training of a single long epoch would otherwise keep that start's count."""

    def on_stage(name: str) -> None:
        reporter.stage(name, STAGE_START.get(name))
        if name == "fit_features":
            watch_other_work()
        elif name == "fit_model":
            rebalance_threads(min_window_s=0.2)

    return on_stage


def fit_progress(epoch: int, max_epochs: int, early_stopping: bool) -> float:
    """With early stopping the number of epochs is unknown: approach the end asymptotically."""
    done = 1 - math.exp(-epoch / 25) if early_stopping else epoch / max(max_epochs, 1)
    low, high = FIT_SPAN
    return low + (high - low) * min(done, 1.0)


def rare_class_report(info: dict) -> dict:
    """The job result's part about classes too rare for the holdout (``info["rare_classes"]``,
    see ``ml.training.unevaluated_classes``): listed with their rows, and a warning to show."""
    rare = info.get("rare_classes") or []
    if not rare:
        return {"rare_classes": [], "warnings": []}
    shown = ", ".join(f"{c['class']!r} ({c['rows']} row{'s' if c['rows'] != 1 else ''})" for c in rare[:SHOWN_CLASSES])
    more = f" and {len(rare) - SHOWN_CLASSES} more" if len(rare) > SHOWN_CLASSES else ""
    warning = (f"{len(rare)} class(es) have no rows in the holdout (too few to hold any out, or, in a retrain, "
               f"none in the frozen holdout): the model learned them, but its accuracy on them is not "
               f"measured: {shown}{more}")
    return {"rare_classes": rare, "warnings": [warning]}


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
        registered = registered_by(session, job)
        version = registered.version if registered is not None else None
    if version is None:
        context.artifacts.delete(bundle_relative)
    return version


def registered_by(session: Session, job: Job) -> ModelVersion | None:
    return session.scalars(
        select(ModelVersion).where(ModelVersion.model_key == job.model_key, ModelVersion.job_id == job.id)
    ).first()
