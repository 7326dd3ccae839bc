"""Drift-check and retrain jobs, run by a worker."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select

from mlservice import live
from mlservice.alerts.service import raise_alert, resolve
from mlservice.datasets.models import Dataset
from mlservice.db import utcnow
from mlservice.drift import service as drift
from mlservice.drift.models import DriftReport, PredictionFeedback
from mlservice.errors import NotFound
from mlservice.jobs.models import Job
from mlservice.jobs.runner import JobOutcome, WorkerContext
from mlservice.jobs.service import JobReporter
from mlservice.ml import DriftConfig, check_drift, evaluate_bundle, train
from mlservice.origin import SYSTEM_ORIGIN
from mlservice.predictions import log as prediction_log
from mlservice.registry import service as registry
from mlservice.registry.models import ModelVersion
from mlservice.training.jobs import STAGE_START, fit_progress, save_version


def _models(context: WorkerContext) -> registry.ModelCache:
    return context.cache.setdefault("models", registry.ModelCache(context.artifacts, capacity=4))


def drift_config(context: WorkerContext) -> DriftConfig:
    settings = context.settings
    return DriftConfig(
        psi_threshold=settings.drift_psi_threshold,
        js_threshold=settings.drift_js_threshold,
        min_sample_size=settings.drift_min_samples,
    )


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def run_drift_check(context: WorkerContext, job: Job, reporter: JobReporter) -> JobOutcome:
    params = job.params
    key, version = job.model_key or "", job.model_version or ""
    reporter.stage("load", 5)
    with context.database.session() as session:
        row = registry.get_version(session, key, version)
        bundle_path, version_created = row.bundle_path, row.created_at
        since = _parse(params.get("since"))
        if since is None and "dataset_id" not in params and "input_path" not in params:
            since = drift.last_window_end(session, key) or version_created
        dataset_path = None
        if "dataset_id" in params:
            dataset = session.get(Dataset, params["dataset_id"])
            if dataset is None:
                raise NotFound("the dataset to check was deleted before the check started")
            dataset_path = dataset.path
    until = _parse(params.get("until")) or utcnow()
    model = _models(context).get(bundle_path)
    if dataset_path or "input_path" in params:
        source = "dataset" if dataset_path else "data"
        frame = pd.read_parquet(context.artifacts.path(dataset_path or params["input_path"]))
        prediction = model.predict_frame(frame) if len(frame) else None
        classes = prediction.labels if prediction else None
        confidences = prediction.confidences if prediction else None
        window = (None, None)
    else:
        source = "log"
        frame = prediction_log.read_log(context.artifacts, key, since=since, until=until,
                                        strings_as_categories=True)
        classes = frame["_prediction"] if len(frame) else None
        confidences = frame["_confidence"].to_numpy() if len(frame) else None
        window = (since, until)
    reporter.stage("compare", 40)
    result = check_drift(model.profile, frame, predicted_classes=classes, confidences=confidences,
                         config=drift_config(context))
    result["features"].sort(key=lambda f: (-(f["psi"] or 0), f["name"]))
    reporter.stage("report", 85)
    with context.database.session(write=True) as session:
        result["realised_accuracy"] = drift.realised_accuracy(session, key, window[0], window[1])
        report = DriftReport(
            model_key=key, version=version, job_id=job.id, trigger=params.get("trigger", "manual"),
            source=source, window_start=window[0], window_end=window[1], verdict=result["verdict"],
            sample_size=result["sample_size"], drifted_share=result["drifted_share"], report=result,
        )
        session.add(report)
        session.flush()
        report_id = report.id
        live.drift_report_ready(report)  # sent to the WebSocket clients after the commit
        retrain_job_id = _react(context, session, job, report, result)
    return JobOutcome(follow_up=[retrain_job_id] if retrain_job_id else [], result={
        "report_id": report_id, "model_key": key, "version": version, "verdict": result["verdict"],
        "sample_size": result["sample_size"], "drifted_share": result["drifted_share"],
        "drifted_features": result["drifted_features"], "retrain_job_id": retrain_job_id,
    })


def _react(context: WorkerContext, session, job: Job, report: DriftReport, result: dict[str, Any]) -> str | None:  # type: ignore[no-untyped-def]
    """Alert on drift (one alert per model, refreshed on later days); start a safe retrain."""
    key = report.model_key
    dedup = f"drift:{key}"
    if result["verdict"] != "drift":
        if result["verdict"] == "no_drift":
            resolve(session, dedup)
        return None
    worst = max((f["psi"] or 0 for f in result["features"]), default=0)
    severity = "critical" if worst >= 0.25 else "warning"
    names = ", ".join(result["drifted_features"][:5]) or "prediction output"
    raise_alert(
        session, kind="drift", severity=severity, dedup_key=dedup, model_key=key,
        message=f"Drift in {key} {report.version}: {result['n_drifted']} of {result['n_features']} features "
                f"({names}); largest PSI {worst:.3f}",
        link={"type": "drift_report", "id": report.id}, details={"report_id": report.id},
    )
    settings = context.settings
    if not settings.auto_retrain:
        return None
    blocker = drift.retrain_blocker(session, settings, key, utcnow())
    if blocker:
        result["retrain_skipped"] = blocker
        return None
    retrain = drift.start_retrain(session, settings, None, SYSTEM_ORIGIN, key, report_id=report.id)
    return retrain.id


# Retraining ---------------------------------------------------------------------------------


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
        feedback = session.scalars(select(PredictionFeedback).where(PredictionFeedback.model_key == key)).all()
        by_job: dict[str, dict[int, str]] = {}
        for item in feedback:
            by_job.setdefault(item.job_id, {})[item.row_index] = item.label
        inputs_by_job = {}
        for job_id in by_job:
            job = session.get(Job, job_id)
            if job is not None:
                from mlservice.predictions.service import load_inputs

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
    champion_model = _models(context).get(champion.bundle_path)
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
