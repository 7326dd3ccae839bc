"""Retraining a model: a challenger trained on the model's base data plus the true labels sent
back (and, if ``ML_RETRAIN_PSEUDO_LABELS``, the champion's confident predictions), promoted only
when it does at least as well as the champion on the newest true labels it never saw and does
not lose more than ``ML_RETRAINING_ACCURACY_DROP_THRESHOLD`` on the frozen holdout. Started by a
drift check (drift.jobs) or by an admin.

The set is rebuilt from its sources on every retrain, never from the champion's own training
set: that one already holds earlier labels, and retraining on it made sets snowball (each
label entering again with every generation)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlservice.alerts.service import raise_alert
from mlservice.db import utcnow
from mlservice.errors import Conflict, NotFound
from mlservice.jobs.kinds import JobOutcome, WorkerContext
from mlservice.jobs.models import Job, JobStatus, JobType
from mlservice.jobs.reporter import JobReporter
from mlservice.jobs.runner import rebalance_threads
from mlservice.jobs.service import new_job
from mlservice.ml import TrainedModel, evaluate_bundle, train
from mlservice.origin import Origin
from mlservice.predictions import log as prediction_log
from mlservice.predictions.jobs import model_cache
from mlservice.predictions.models import PredictionFeedback
from mlservice.predictions.service import load_inputs
from mlservice.principal import Principal
from mlservice.registry import service as registry
from mlservice.registry.models import ModelVersion
from mlservice.settings import Settings
from mlservice.training.fitting import fit_progress, rare_class_report, save_version, stage_reporter

# Where a labelled row comes from and when it was seen; dropped before training.
OBSERVED_AT, ROW_KEY = "__observed_at", "__row_key"
# Accuracies are ratios of counts: equal counts give equal floats, but a difference such as
# 0.75 - 0.80 is -0.05000000000000004, which must not fail a -0.05 threshold.
TOLERANCE = 1e-9


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


# ------------------------------------------------------------------------------ the set


@dataclass
class RetrainingSet:
    frame: pd.DataFrame  # what the challenger learns from: base rows, then labelled rows oldest first
    recent_truth: pd.DataFrame  # the newest true labels: judged on, never learned from
    rows: dict[str, int]


def base_version(session: Session, key: str, version: ModelVersion) -> ModelVersion:
    """The version a line of retrains started from (its parent_version chain's root, deleted or
    not): its training data is the base every retrain of the line learns from again."""
    seen = {version.version}
    while version.parent_version and version.parent_version not in seen:
        parent = session.scalars(select(ModelVersion).where(
            ModelVersion.model_key == key, ModelVersion.version == version.parent_version)).first()
        if parent is None:
            break
        seen.add(parent.version)
        version = parent
    return version


def _base_rows(context: WorkerContext, key: str, champion: ModelVersion, columns: list[str]) -> pd.DataFrame:
    with context.database.session() as session:
        relative = base_version(session, key, champion).training_data_path
    if relative is None:
        raise NotFound(f"the training data of {key!r}'s first version is gone: nothing to retrain from",
                       code="base_data_missing")
    base = pd.read_parquet(context.artifacts.path(relative))
    return base[[c for c in columns if c in base.columns]]


def _labelled_rows(context: WorkerContext, key: str, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """Every predicted row of this model with a true label sent back, once each (the feedback
    table holds one label per row, the latest sent), oldest first by when the row was predicted.
    Also returns how many labelled rows were skipped because their inputs were deleted."""
    *features, target = columns
    with context.database.session() as session:
        feedback = pd.DataFrame(session.execute(
            select(PredictionFeedback.job_id, PredictionFeedback.row_index, PredictionFeedback.label, Job.created_at)
            .join(Job, Job.id == PredictionFeedback.job_id)
            .where(PredictionFeedback.model_key == key)
        ).all(), columns=["job_id", "row", "label", "seen_at"])
        inputs: dict[str, pd.DataFrame] = {}
        for job_id in feedback["job_id"].unique():
            try:
                inputs[job_id] = load_inputs(session, context.artifacts, session.get(Job, job_id))
            except (NotFound, FileNotFoundError):
                pass  # the prediction's input dataset was deleted: counted below
    frames, skipped = [], 0
    for job_id, labels in feedback.sort_values(["seen_at", "job_id", "row"], kind="stable").groupby(
            "job_id", sort=False):
        if job_id not in inputs:
            skipped += len(labels)
            continue
        rows = inputs[job_id].iloc[labels["row"].to_numpy()]
        part = rows[[c for c in features if c in rows.columns]].reset_index(drop=True)
        part[target] = labels["label"].to_numpy()
        part[OBSERVED_AT] = pd.to_datetime(labels["seen_at"].to_numpy(), utc=True)
        part[ROW_KEY] = [f"{job_id}:{row}" for row in labels["row"]]
        frames.append(part)
    if not frames:
        return pd.DataFrame(columns=[*columns, OBSERVED_AT, ROW_KEY]), skipped
    # Jobs came in time order, each job's rows in row order: a stable sort keeps both.
    labelled = _concat(frames).sort_values(OBSERVED_AT, kind="stable")
    return labelled.reset_index(drop=True), skipped


def _pseudo_labelled_rows(
    context: WorkerContext, key: str, champion: ModelVersion, columns: list[str], truly_labelled: set[str],
) -> pd.DataFrame:
    """Rows logged since the champion was trained, predicted with a confidence of at least
    ML_CLIENT_DATA_CONFIDENCE_THRESHOLD, labelled with their predicted class; a row that has a
    true label is left out (the true label wins, and the row enters once)."""
    *features, target = columns
    logged = prediction_log.read_log(context.artifacts, key, since=champion.created_at)
    if not len(logged):
        return pd.DataFrame(columns=[*columns, OBSERVED_AT, ROW_KEY])
    # A batch prediction logs its rows in input order, so a row's place among its job's logged
    # rows is the row number feedback names. Sync predictions have no job and no feedback.
    row_keys = logged["_job_id"].astype(str) + ":" + logged.groupby("_job_id", dropna=False).cumcount().astype(str)
    keep = (logged["_confidence"] >= context.settings.client_data_confidence_threshold) & ~row_keys.isin(truly_labelled)
    rows = logged.loc[keep, [c for c in features if c in logged.columns]].reset_index(drop=True)
    rows[target] = logged.loc[keep, "_prediction"].to_numpy()
    rows[OBSERVED_AT] = pd.to_datetime(logged.loc[keep, "_ts"].to_numpy(), utc=True)
    rows[ROW_KEY] = row_keys[keep].to_numpy()
    return rows


def hold_out_recent_truth(labelled: pd.DataFrame, share: float, min_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to learn from, the newest labelled rows to judge on): the latest ``share`` of them,
    at least ``min_rows``; with fewer than ``min_rows`` labelled rows there is nothing to judge
    on, and every one is learned from."""
    count = len(labelled)
    if count < min_rows:
        return labelled, labelled.iloc[0:0]
    size = min(count, max(min_rows, math.ceil(share * count)))
    return labelled.iloc[:count - size], labelled.iloc[count - size:]


def cap_rows(base: pd.DataFrame, labelled: pd.DataFrame, max_rows: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Keep the newest ``max_rows`` rows: the base counts as the oldest (its rows in upload
    order), then labelled rows by the time they were predicted. Returns what is kept and how
    many rows were dropped."""
    excess = len(base) + len(labelled) - max_rows
    if excess <= 0:
        return base, labelled, 0
    from_base = min(excess, len(base))
    return base.iloc[from_base:], labelled.iloc[excess - from_base:], excess


def collect_retraining_set(context: WorkerContext, key: str, champion: ModelVersion) -> RetrainingSet:
    settings = context.settings
    columns = [*champion.features, champion.target]
    base = _base_rows(context, key, champion, columns)
    truly_labelled, without_inputs = _labelled_rows(context, key, columns)
    learned_truth, recent_truth = hold_out_recent_truth(
        truly_labelled, settings.retrain_recent_share, settings.retrain_recent_min_rows)
    pseudo = (_pseudo_labelled_rows(context, key, champion, columns, set(truly_labelled[ROW_KEY]))
              if settings.retrain_pseudo_labels else truly_labelled.iloc[0:0])
    labelled = _concat([learned_truth.assign(__truth=True), pseudo.assign(__truth=False)])
    labelled = labelled.sort_values(OBSERVED_AT, kind="stable")
    base, labelled, dropped = cap_rows(base, labelled, settings.retrain_max_rows)
    truth = labelled["__truth"].astype(bool)
    frame = _concat([base, labelled[[c for c in columns if c in labelled.columns]]])
    rows = {
        "base": len(base), "feedback": int(truth.sum()), "pseudo_labels": int((~truth).sum()),
        "dropped_by_cap": dropped, "recent_truth": len(recent_truth), "total": len(frame),
        "feedback_without_inputs": without_inputs,
    }
    return RetrainingSet(frame, recent_truth.drop(columns=[OBSERVED_AT, ROW_KEY]).reset_index(drop=True), rows)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """pandas turns a column into objects when concatenated with an empty frame's (numbers
    would then read as categories): leave empty parts out."""
    filled = [frame for frame in frames if len(frame)]
    return pd.concat(filled, ignore_index=True) if filled else frames[0].reset_index(drop=True)


# ------------------------------------------------------------------------------ training


def _train_challenger(
    reporter: JobReporter, champion: ModelVersion, champion_model: TrainedModel, frame: pd.DataFrame,
) -> TrainedModel:
    """The champion's own settings (layers included), column overrides and seed; judged on the
    champion's frozen holdout, whose rows are left out of training."""
    config = copy.deepcopy(champion_model.config)

    def on_epoch(info) -> None:  # type: ignore[no-untyped-def]
        rebalance_threads()
        reporter.progress(fit_progress(info.epoch, info.max_epochs, config.early_stopping),
                          details={"epoch": info.epoch, "max_epochs": info.max_epochs})

    column_types = {c["name"]: c["kind"] for c in champion.schema["columns"] if c.get("overridden")}
    return train(
        frame, champion.target, config, column_types=column_types or None, features=champion.features,
        holdout=champion_model.holdout, on_stage=stage_reporter(reporter),
        on_epoch=on_epoch, should_stop=reporter.should_stop,
        random_state=int(champion.training.get("info", {}).get("random_state", 0)),
    )


# ------------------------------------------------------------------------------ judging


@dataclass(frozen=True)
class Scores:
    """Champion's and challenger's accuracy on the same rows."""

    rows: int
    champion: float
    challenger: float

    @property
    def difference(self) -> float:
        return self.challenger - self.champion

    def as_dict(self) -> dict[str, float | int]:
        return {"rows": self.rows, "champion_accuracy": self.champion, "challenger_accuracy": self.challenger,
                "difference": self.difference}


def judge(holdout: Scores, recent: Scores | None, threshold: float) -> tuple[bool, str]:
    """(promoted, the rule that decided, as a sentence). With recent true labels the challenger
    must be at least as good on them and lose no more than ``threshold`` on the frozen holdout
    (the catastrophe guard); without, it must not be worse on the frozen holdout, the only
    truth there is."""
    on_holdout = f"{holdout.challenger:.4f} vs the champion's {holdout.champion:.4f} on the frozen holdout"
    if recent is None:
        if holdout.difference >= -TOLERANCE:
            return True, f"promoted: no recent true labels to judge on, and the challenger is not worse ({on_holdout})"
        return False, f"not promoted: no recent true labels to judge on, and the challenger is worse ({on_holdout})"
    on_recent = (f"{recent.challenger:.4f} vs the champion's {recent.champion:.4f} on the {recent.rows} most "
                 "recent labelled rows")
    failures = []
    if recent.difference < -TOLERANCE:
        failures.append(f"the challenger is worse on recent truth ({on_recent})")
    if holdout.difference < threshold - TOLERANCE:
        failures.append(f"it loses {holdout.difference:+.4f} on the frozen holdout, more than "
                        f"ML_RETRAINING_ACCURACY_DROP_THRESHOLD ({threshold:+.4f}) allows ({on_holdout})")
    if failures:
        return False, "not promoted: " + "; ".join(failures)
    return True, (f"promoted: the challenger is at least as good on recent truth ({on_recent}) and within "
                  f"ML_RETRAINING_ACCURACY_DROP_THRESHOLD ({threshold:+.4f}) on the frozen holdout "
                  f"({holdout.difference:+.4f}: {on_holdout})")


def _scores(champion_model: TrainedModel, challenger: TrainedModel, rows: pd.DataFrame, target: str) -> Scores:
    return Scores(len(rows), evaluate_bundle(champion_model, rows, target)["accuracy"],
                  evaluate_bundle(challenger, rows, target)["accuracy"])


# ------------------------------------------------------------------------------ the job


def _record(context: WorkerContext, job: Job, champion: ModelVersion, version: str, promoted: bool, rule: str) -> None:
    key = champion.model_key
    with context.database.session(write=True) as session:
        model = registry.get_model(session, key)
        if promoted and model.active_version == champion.version:
            registry.activate_as_system(session, model, version, "promoted")
        elif not promoted:
            raise_alert(
                session, kind="retrain_rejected", severity="warning", dedup_key=f"retrain_rejected:{key}",
                model_key=key, message=f"Retrained {key} {version} (champion {champion.version}) was {rule}",
                link={"type": "job", "id": job.id}, details={"version": version, "champion": champion.version},
            )


def run_retrain(context: WorkerContext, job: Job, reporter: JobReporter) -> JobOutcome:
    key = job.model_key or ""
    reporter.stage("load", 1)
    with context.database.session() as session:
        champion = registry.get_version(session, key, job.params["champion"])
        session.expunge(champion)
    champion_model = model_cache(context).get(champion.bundle_path, model_key=key, version=champion.version)
    retraining = collect_retraining_set(context, key, champion)
    challenger = _train_challenger(reporter, champion, champion_model, retraining.frame)
    challenger.info["retraining_rows"] = retraining.rows

    reporter.stage("save", 94)
    data_path = f"retrain/{job.id}/training.parquet"
    context.artifacts.write_with(data_path, lambda tmp: retraining.frame.to_parquet(tmp, index=False))
    version = save_version(context, job, challenger, data_path, parent_version=champion.version)
    context.artifacts.delete(f"retrain/{job.id}")

    reporter.stage("compare", 98)
    target = champion.target
    holdout = _scores(champion_model, challenger, champion_model.holdout, target)
    recent = _scores(champion_model, challenger, retraining.recent_truth, target) if len(retraining.recent_truth) else None
    threshold = context.settings.retraining_accuracy_drop_threshold
    promoted, rule = judge(holdout, recent, threshold)
    _record(context, job, champion, version, promoted, rule)
    return JobOutcome(
        result={
            "model_key": key, "version": version, "champion": champion.version, "promoted": promoted, "rule": rule,
            "threshold": threshold, "rows": retraining.rows,
            "holdout": holdout.as_dict(), "recent_truth": recent.as_dict() if recent else None,
            # 0.11-era fields: the frozen holdout's figures.
            "champion_accuracy": holdout.champion, "challenger_accuracy": holdout.challenger,
            "difference": holdout.difference, "report_id": job.params.get("report_id"),
            **rare_class_report(challenger.info),
        },
        model_version=version,
    )
