"""Retraining a model: a challenger trained on the champion's data plus what clients sent since
(confident predictions, labels sent back), promoted only when it does as well on the champion's
frozen holdout. Started by a drift check (drift.jobs) or by an admin."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlservice.alerts.service import raise_alert
from mlservice.db import utcnow
from mlservice.errors import Conflict
from mlservice.jobs.kinds import JobOutcome, WorkerContext
from mlservice.jobs.models import Job, JobStatus, JobType
from mlservice.jobs.reporter import JobReporter
from mlservice.jobs.service import new_job
from mlservice.ml import evaluate_bundle, train
from mlservice.origin import Origin
from mlservice.predictions import log as prediction_log
from mlservice.predictions.feedback import labels_by_job
from mlservice.predictions.jobs import model_cache
from mlservice.predictions.service import load_inputs
from mlservice.principal import Principal
from mlservice.registry import service as registry
from mlservice.registry.models import ModelVersion
from mlservice.settings import Settings
from mlservice.training.fitting import STAGE_START, fit_progress, save_version


def retrain_blocker(session: Session, settings: Settings, model_key: str, now: datetime) -> str | None:
    """Why a retrain of this model may not start now (one at a time, then a cool-down)."""
    active = session.scalar(select(func.count()).select_from(Job).where(
        Job.model_key == model_key, Job.type == JobType.retrain.value,
        Job.status.in_((JobStatus.queued.value, JobStatus.running.value)),
    ))
    if active:
        return "a retrain of this model is already queued or running"
    last = session.scalar(select(func.max(Job.created_at)).where(
        Job.model_key == model_key, Job.type == JobType.retrain.value,
    ))
    if last is not None and now - last < timedelta(hours=settings.retrain_cooldown_hours):
        return f"the last retrain started less than {settings.retrain_cooldown_hours} h ago (ML_RETRAIN_COOLDOWN_HOURS)"
    return None


def start_retrain(
    session: Session, settings: Settings, principal: Principal | None, origin: Origin, model_key: str,
    *, report_id: int | None = None, ignore_cooldown: bool = False,
) -> Job:
    champion = registry.get_version(session, model_key, None)
    blocker = retrain_blocker(session, settings, model_key, utcnow())
    if blocker and (not ignore_cooldown or "already" in blocker):
        raise Conflict(f"cannot retrain {model_key!r} now: {blocker}", code="retrain_blocked")
    return new_job(session, JobType.retrain, principal, origin, model_key=model_key, model_version=champion.version,
                   params={"champion": champion.version, "report_id": report_id})


def _client_rows(context: WorkerContext, key: str, champion: ModelVersion, target: str) -> tuple[pd.DataFrame, dict]:
    """Logged rows since the champion was trained, confident enough to trust their predicted
    class as a label, plus rows whose true label was sent back (those win)."""
    threshold = context.settings.client_data_confidence_threshold
    logged = prediction_log.read_log(context.artifacts, key, since=champion.created_at)
    counts = {"logged": len(logged), "confident": 0, "feedback": 0}
    frames = []
    if len(logged):
        confident = logged[logged["_confidence"] >= threshold]
        counts["confident"] = len(confident)
        rows = confident[[c for c in champion.features if c in confident.columns]].copy()
        rows[target] = confident["_prediction"].to_numpy()
        frames.append(rows)
    with context.database.session() as session:
        by_job = labels_by_job(session, key)
        inputs_by_job = {}
        for job_id in by_job:
            job = session.get(Job, job_id)
            if job is not None:
                inputs_by_job[job_id] = load_inputs(session, context.artifacts, job)
    for job_id, labels in by_job.items():
        inputs = inputs_by_job.get(job_id)
        if inputs is None:
            continue
        rows = inputs.iloc[sorted(labels)].copy()
        rows[target] = [labels[i] for i in sorted(labels)]
        frames.append(rows[[c for c in [*champion.features, target] if c in rows.columns]])
        counts["feedback"] += len(rows)
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), counts


def run_retrain(context: WorkerContext, job: Job, reporter: JobReporter) -> JobOutcome:
    key = job.model_key or ""
    reporter.stage("load", 1)
    with context.database.session() as session:
        champion = registry.get_version(session, key, job.params["champion"])
        session.expunge(champion)
    champion_model = model_cache(context).get(champion.bundle_path)
    original = pd.read_parquet(context.artifacts.path(champion.training_data_path))
    target = champion.target
    client, counts = _client_rows(context, key, champion, target)
    frame = pd.concat([original, client], ignore_index=True) if len(client) else original
    config = copy.deepcopy(champion_model.config)  # the champion's own settings, layers included
    random_state = int(champion.training.get("info", {}).get("random_state", 0))

    def on_epoch(info) -> None:  # type: ignore[no-untyped-def]
        reporter.progress(fit_progress(info.epoch, info.max_epochs, config.early_stopping),
                          details={"epoch": info.epoch, "max_epochs": info.max_epochs})

    column_types = {c["name"]: c["kind"] for c in champion.schema["columns"] if c.get("overridden")}
    challenger = train(
        frame, target, config, column_types=column_types or None, features=champion.features,
        holdout=champion_model.holdout, on_stage=lambda name: reporter.stage(name, STAGE_START.get(name)),
        on_epoch=on_epoch, should_stop=reporter.should_stop, random_state=random_state,
    )
    reporter.stage("save", 94)
    data_path = f"retrain/{job.id}/training.parquet"
    context.artifacts.write_with(data_path, lambda tmp: frame.to_parquet(tmp, index=False))
    version = save_version(context, job, challenger, data_path, parent_version=champion.version)
    context.artifacts.delete(f"retrain/{job.id}")
    reporter.stage("compare", 98)
    # Both on the champion's frozen holdout rows.
    champion_accuracy = evaluate_bundle(champion_model, champion_model.holdout, target)["accuracy"]
    challenger_accuracy = challenger.metrics["accuracy"]
    difference = challenger_accuracy - champion_accuracy
    threshold = context.settings.retraining_accuracy_drop_threshold
    promoted = difference >= threshold
    with context.database.session(write=True) as session:
        model = registry.get_model(session, key)
        if promoted and model.active_version == champion.version:
            registry.activate_as_system(session, model, version, "promoted")
        elif not promoted:
            raise_alert(
                session, kind="retrain_rejected", severity="warning", dedup_key=f"retrain_rejected:{key}",
                model_key=key,
                message=f"Retrained {key} {version} was not promoted: holdout accuracy {challenger_accuracy:.4f} vs "
                        f"champion {champion.version} {champion_accuracy:.4f} (difference {difference:+.4f} < "
                        f"{threshold:+.4f}, ML_RETRAINING_ACCURACY_DROP_THRESHOLD)",
                link={"type": "job", "id": job.id}, details={"version": version, "champion": champion.version},
            )
    return JobOutcome(
        result={
            "model_key": key, "version": version, "champion": champion.version, "promoted": promoted,
            "champion_accuracy": champion_accuracy, "challenger_accuracy": challenger_accuracy,
            "difference": difference, "threshold": threshold, "rows": {"original": len(original), **counts},
            "report_id": job.params.get("report_id"),
        },
        model_version=version,
    )
