"""The drift domain's job kind: a drift check, run by a worker. A check that finds drift, or
accuracy fallen by ``ML_RETRAINING_ACCURACY_DROP_THRESHOLD`` or more, raises an alert and may
start a retrain (training.retrain)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from mlservice import live
from mlservice.alerts.service import raise_alert, resolve
from mlservice.datasets.models import Dataset
from mlservice.db import utcnow
from mlservice.drift import service as drift
from mlservice.drift.models import DriftReport
from mlservice.drift.performance import assess, rank_features
from mlservice.errors import NotFound
from mlservice.jobs.kinds import JobKind, JobOutcome, WorkerContext
from mlservice.jobs.models import Job, JobType
from mlservice.jobs.reporter import JobReporter
from mlservice.ml import DriftConfig, check_drift
from mlservice.origin import SYSTEM_ORIGIN
from mlservice.predictions import log as prediction_log
from mlservice.predictions.feedback import realised_accuracy
from mlservice.predictions.jobs import model_cache
from mlservice.registry import service as registry
from mlservice.training.retrain import retrain_blocker, start_retrain


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
        bundle_path, version_created, metrics = row.bundle_path, row.created_at, row.metrics or {}
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
    model = model_cache(context).get(bundle_path, model_key=key, version=version)
    if dataset_path or "input_path" in params:
        source = "dataset" if dataset_path else "data"
        frame = pd.read_parquet(context.artifacts.path(dataset_path or params["input_path"]))
        prediction = model.predict_frame(frame) if len(frame) else None
        classes = prediction.labels if prediction else None
        confidences = prediction.confidences if prediction else None
        own_confidences, job_ids = confidences, []  # every row is predicted by this version now
        window = (None, None)
    else:
        source = "log"
        frame = prediction_log.read_log(context.artifacts, key, since=since, until=until,
                                        strings_as_categories=True)
        classes = frame["_prediction"] if len(frame) else None
        confidences = frame["_confidence"].to_numpy() if len(frame) else None
        # Drift is about the inputs, whoever predicted them; accuracy is about this version, so
        # rows another version predicted in the window (before a promotion) are left out of it.
        own = frame[frame["_version"] == version] if len(frame) else frame
        own_confidences = own["_confidence"].to_numpy() if len(own) else None
        job_ids = own["_job_id"].dropna().unique().tolist() if len(own) else []
        window = (since, until)
    reporter.stage("compare", 40)
    result = check_drift(model.profile, frame, predicted_classes=classes, confidences=confidences,
                         config=drift_config(context))
    result["drifted_features"] = rank_features(result["features"], metrics.get("feature_importance"))
    reporter.stage("report", 85)
    with context.database.session(write=True) as session:
        # Feedback exists only for rows of logged prediction jobs: a dataset has none.
        result["realised_accuracy"] = realised_accuracy(session, key, version, job_ids) if job_ids else None
        result.update(assess(
            confidences=own_confidences, realised=result["realised_accuracy"], metrics=metrics,
            threshold=context.settings.retraining_accuracy_drop_threshold,
            min_rows=context.settings.drift_min_samples,
        ))
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
        # _react adds why a retrain started or not; the row was flushed before (the alerts
        # link to its id), and a JSON column does not notice the dict changing in place.
        report.report = {**result, "retrain_job_id": retrain_job_id}
    return JobOutcome(follow_up=[retrain_job_id] if retrain_job_id else [], result={
        "report_id": report_id, "model_key": key, "version": version, "verdict": result["verdict"],
        "sample_size": result["sample_size"], "drifted_share": result["drifted_share"],
        "drifted_features": result["drifted_features"], "estimated_accuracy": result["estimated_accuracy"],
        "performance": result["performance"], "retrain_job_id": retrain_job_id,
        "retrain_reasons": result["retrain_reasons"], "retrain_skipped": result.get("retrain_skipped"),
    })


def _react(context: WorkerContext, session, job: Job, report: DriftReport, result: dict[str, Any]) -> str | None:  # type: ignore[no-untyped-def]
    """Alert on drift and on a performance drop (one alert of each per model, refreshed on
    later checks, resolved by a check that finds the condition gone); start a safe retrain."""
    key = report.model_key
    reasons = []
    if result["verdict"] == "drift":
        reasons.append("drift")
        _alert_drift(session, report, result)
    elif result["verdict"] == "no_drift":
        resolve(session, f"drift:{key}")
    performance = result["performance"]
    if performance["dropped"]:
        reasons.append("performance_drop")
        _alert_performance(session, report, performance)
    elif performance["change"] is not None and performance["sample_size"] >= context.settings.drift_min_samples:
        resolve(session, f"performance:{key}")
    result["retrain_reasons"] = reasons
    settings = context.settings
    if not reasons or not settings.auto_retrain:
        return None
    blocker = retrain_blocker(session, settings, key, utcnow())
    if blocker:
        result["retrain_skipped"] = blocker
        return None
    retrain = start_retrain(session, settings, None, SYSTEM_ORIGIN, key, report_id=report.id)
    return retrain.id


def _alert_drift(session, report: DriftReport, result: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    key = report.model_key
    worst = max((f["psi"] or 0 for f in result["features"]), default=0)
    severity = "critical" if worst >= 0.25 else "warning"
    # drifted_features is ranked by impact (importance × PSI): the first named matter most
    names = ", ".join(result["drifted_features"][:5]) or "prediction output"
    raise_alert(
        session, kind="drift", severity=severity, dedup_key=f"drift:{key}", model_key=key,
        message=f"Drift in {key} {report.version}: {result['n_drifted']} of {result['n_features']} features "
                f"({names}); largest PSI {worst:.3f}",
        link={"type": "drift_report", "id": report.id}, details={"report_id": report.id},
    )


def _alert_performance(session, report: DriftReport, performance: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    key = report.model_key
    # twice the threshold's fall is past a warning: the model is wrong much more often than tested
    severity = "critical" if performance["change"] <= 2 * performance["threshold"] else "warning"
    raise_alert(
        session, kind="performance_drop", severity=severity, dedup_key=f"performance:{key}", model_key=key,
        message=f"Accuracy of {key} {report.version} fell to {performance['value']:.3f} "
                f"({performance['source']}, {performance['sample_size']} rows) from {performance['reference']:.3f} "
                f"on its holdout: {performance['change']:+.3f}, at or below the threshold {performance['threshold']:+.3f}",
        link={"type": "drift_report", "id": report.id},
        details={"report_id": report.id, **performance},
    )


DRIFT = JobKind(JobType.drift, ("load", "compare", "report"), run_drift_check, queue="drift")
KINDS = (DRIFT,)
