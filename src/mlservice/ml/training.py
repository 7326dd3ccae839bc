"""High-level training entry point and the trained-model object.

:func:`train` runs the stages ``validate → profile → fit_features →
fit_model → evaluate`` (the job layer adds ``load`` and ``save``) and returns
a :class:`TrainedModel`: schema, fitted feature pipeline, network, holdout
metrics, baseline profile and the holdout rows. The same class comes back
from :func:`mlservice.ml.bundle.load_bundle`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .calibration import (
    apply_temperature,
    cross_fitted_ece,
    expected_calibration_error,
    fit_temperature,
)
from .drift import DriftConfig, check_drift
from .errors import DataError, MissingColumnsError, TrainingCancelled
from .evaluation import (
    class_indices,
    compute_metrics,
    permutation_importance,
    split_holdout,
    to_jsonable,
)
from .features import FeatureConfig, FeaturePipeline
from .io import ReadLimits, check_limits, read_records, validate_target
from .model import AdaptiveMLPClassifier, EpochInfo
from .profile import ProfileConfig, build_profile, profile_predictions
from .schema import IGNORED, Schema, SchemaConfig, infer_schema

__all__ = [
    "TrainingConfig",
    "TrainedModel",
    "Prediction",
    "train",
    "evaluate_bundle",
    "STAGES",
]

STAGES = ("validate", "profile", "fit_features", "fit_model", "evaluate")


@dataclass
class TrainingConfig:
    """All knobs of :func:`train`. The service's ``ML_*`` settings of the same names override
    these defaults, and a training request may override those (``mlservice.training``)."""

    hidden_layer_sizes: tuple[int, ...] = (512, 256, 128)
    large_dataset_hidden_layers: tuple[int, ...] = (1024, 512, 256, 128)
    large_dataset_threshold: int = 500_000
    adaptive_architecture: bool = True
    activation: str = "relu"
    solver: str = "adam"
    max_iter: int = 5000
    batch_size: int | str = "auto"
    learning_rate_init: float = 0.001
    alpha: float = 0.0001
    early_stopping: bool = True
    validation_fraction: float = 0.1
    n_iter_no_change: int = 10
    tol: float = 1e-4
    device: str = "auto"
    backend: str = "auto"
    holdout_fraction: float = 0.15
    min_rows: int = 20
    features: FeatureConfig = field(default_factory=FeatureConfig)
    schema: SchemaConfig = field(default_factory=SchemaConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    limits: ReadLimits = field(default_factory=ReadLimits)

    def estimator(self, random_state: int | None = 0) -> AdaptiveMLPClassifier:
        return AdaptiveMLPClassifier(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            large_dataset_hidden_layers=tuple(self.large_dataset_hidden_layers),
            large_dataset_threshold=self.large_dataset_threshold,
            adaptive=self.adaptive_architecture,
            activation=self.activation,
            solver=self.solver,
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            learning_rate_init=self.learning_rate_init,
            alpha=self.alpha,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            device=self.device,
            backend=self.backend,
            random_state=random_state,
        )

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


@dataclass
class Prediction:
    """Predictions for a batch: one label, confidence and probability row per input row."""

    labels: list[Any]
    confidences: np.ndarray
    probabilities: np.ndarray
    classes: list[Any]
    ignored_columns: list[str] = field(default_factory=list)

    def to_records(self) -> list[dict[str, Any]]:
        cls = [str(c) for c in self.classes]
        return [
            {
                "prediction": lab,
                "confidence": float(conf),
                "probabilities": dict(zip(cls, map(float, row))),
            }
            for lab, conf, row in zip(self.labels, self.confidences, self.probabilities)
        ]


@dataclass
class TrainedModel:
    """A fitted model version: what :func:`train` returns and
    :func:`~mlservice.ml.bundle.load_bundle` loads."""

    target: str
    schema: Schema
    features: FeaturePipeline
    estimator: AdaptiveMLPClassifier
    metrics: dict[str, Any]
    profile: dict[str, Any]
    holdout: pd.DataFrame
    config: TrainingConfig = field(default_factory=TrainingConfig)
    info: dict[str, Any] = field(default_factory=dict)
    bundle_path: Path | None = None
    #: temperature scaling fitted on the holdout and applied to every prediction's
    #: probabilities (1.0: none, as for bundles made before calibration)
    temperature: float = 1.0

    #: batches up to this size take the pandas-free path in predict_records
    fast_path_max_rows = 64

    def __post_init__(self) -> None:
        self._classes_list = [c.item() if isinstance(c, np.generic) else c
                              for c in self.estimator.classes_]
        self._feature_set = frozenset(self.schema.features)

    @property
    def classes(self) -> list[Any]:
        return list(self._classes_list)

    @property
    def feature_columns(self) -> list[str]:
        return self.schema.features

    # ------------------------------------------------------------------ predict
    def _result(self, P: np.ndarray, ignored: list[str]) -> Prediction:
        # the label comes from the raw probabilities: scaling keeps the argmax, and this way
        # float32 rounding of near-ties cannot change a label
        idx = P.argmax(axis=1)
        if self.temperature != 1.0:
            P = apply_temperature(P, self.temperature)
        cl = self._classes_list
        return Prediction(
            labels=[cl[i] for i in idx.tolist()],
            confidences=P[np.arange(len(idx)), idx],
            probabilities=P,
            classes=cl,
            ignored_columns=ignored,
        )

    def predict_frame(self, frame: pd.DataFrame) -> Prediction:
        """Vectorised prediction for a DataFrame (extra columns ignored and reported)."""
        _, extra = self.features.check_columns(frame.columns)
        if len(frame) == 0:
            k = len(self._classes_list)
            return Prediction([], np.empty(0, np.float32), np.empty((0, k), np.float32),
                              self._classes_list, extra)
        X = self.features.transform(frame)
        return self._result(self.estimator.predict_proba(X), extra)

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        """Prediction for a list of dicts. Up to ``fast_path_max_rows`` rows skip
        pandas (precomputed maps and constants → float32 vector → numpy
        forward pass); larger batches use the vectorised DataFrame path. Both
        give the same probabilities (to float32 rounding)."""
        if not isinstance(records, (list, tuple)):
            raise DataError("records must be a list of objects", code="bad_records")
        if len(records) > self.fast_path_max_rows:
            frame = read_records(records, limits=None, na_values=())
            return self.predict_frame(frame)
        fs = self._feature_set
        extra: list[str] = []
        for rec in records:
            if not isinstance(rec, Mapping):
                raise DataError("every record must be an object", code="bad_records")
            for k in rec:
                if k not in fs and k not in extra:
                    extra.append(k)
        X = self.features.transform_records(records)
        return self._result(self.estimator.predict_proba(X), extra)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_frame(frame).probabilities

    def predict(self, frame: pd.DataFrame) -> list[Any]:
        return self.predict_frame(frame).labels

    # ------------------------------------------------------------------ monitor
    def check_drift(
        self,
        frame: pd.DataFrame,
        *,
        with_predictions: bool = True,
        config: DriftConfig = DriftConfig(),
    ) -> dict[str, Any]:
        """Drift of ``frame`` (and of the model's predictions on it) against
        this version's baseline profile."""
        pred = conf = None
        if with_predictions and len(frame):
            try:
                p = self.predict_frame(frame)
                pred, conf = p.labels, p.confidences
            except MissingColumnsError:
                pass
        return check_drift(self.profile, frame, predicted_classes=pred, confidences=conf,
                           config=config)

    def evaluate(self, frame: pd.DataFrame, target: str | None = None) -> dict[str, Any]:
        return evaluate_bundle(self, frame, target or self.target)


def evaluate_bundle(model: TrainedModel, labelled_frame: pd.DataFrame, target: str) -> dict[str, Any]:
    """Metrics of ``model`` on labelled rows (e.g. another version's holdout)."""
    if target not in labelled_frame.columns:
        raise DataError(f"unknown target column {target!r}", code="unknown_target")
    frame = labelled_frame[labelled_frame[target].notna()]
    if len(frame) == 0:
        raise DataError("no labelled rows to evaluate on", code="empty_file")
    pred = model.predict_frame(frame)
    y = _normalise_labels(frame[target])
    return compute_metrics(y, pred.probabilities, model.classes)


def _normalise_labels(y: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(y.dtype) or pd.api.types.is_integer_dtype(y.dtype):
        return y.to_numpy()
    if pd.api.types.is_float_dtype(y.dtype):
        a = y.to_numpy(dtype=np.float64)
        return a.astype(np.int64) if np.all(a == np.round(a)) else a
    return y.astype(str).str.strip().to_numpy(dtype=object)


def unevaluated_classes(trained_on: pd.Series, held_out: pd.Series) -> list[dict[str, Any]]:
    """The classes trained on with no row in the holdout, so their accuracy is not measured:
    too rare to split (a single row always stays in training) or absent from a given holdout.
    ``[{"class", "rows"}]`` with their training rows, the rarest first."""
    held = set(held_out.astype(str))
    counts = trained_on.astype(str).value_counts()
    rare = sorted((int(rows), label) for label, rows in counts.items() if label not in held)
    return [{"class": label, "rows": rows} for rows, label in rare]


def _row_hashes(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    sub = frame[cols].copy()
    for c in cols:
        if not pd.api.types.is_numeric_dtype(sub[c].dtype):
            sub[c] = sub[c].astype(object).where(sub[c].notna(), None).map(
                lambda v: None if v is None else str(v))
        else:
            sub[c] = sub[c].astype(np.float64)
    return pd.util.hash_pandas_object(sub, index=False).to_numpy()


def train(
    frame: pd.DataFrame | Sequence[Mapping[str, Any]],
    target: str,
    config: TrainingConfig | None = None,
    *,
    column_types: Mapping[str, str] | None = None,
    features: Sequence[str] | None = None,
    holdout: pd.DataFrame | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_epoch: Callable[[EpochInfo], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    random_state: int = 0,
) -> TrainedModel:
    """Train a model version on ``frame`` to predict ``target``.

    ``column_types`` overrides inferred column types; ``features`` restricts
    the feature columns. ``holdout`` (e.g. the previous version's holdout
    rows) is used as the holdout set instead of a fresh stratified split, and
    rows of ``frame`` equal to a holdout row are left out of training, so
    versions are compared on the same rows. ``on_stage(name)`` is called at
    the start of each of :data:`STAGES`; ``on_epoch(EpochInfo)`` after each
    epoch; ``should_stop()`` between epochs and stages (True raises
    :class:`~mlservice.ml.errors.TrainingCancelled`). Bad input raises
    :class:`~mlservice.ml.errors.DataError`; a target with a single class is
    refused, but a rare class is not: every class keeps at least one row in
    training (a single-row class goes to training only, never to the holdout
    nor to early stopping's validation split), so the model knows every class.

    After fitting, the probabilities are calibrated by temperature scaling
    fitted on the holdout (``TrainedModel.temperature``), and the metrics gain
    ``ece`` (cross-fitted on the holdout's halves), ``ece_uncalibrated``,
    ``temperature`` and ``feature_importance`` (permutation, on at most 2,000
    holdout rows).
    """
    cfg = config or TrainingConfig()
    timings: dict[str, float] = {}
    state = {"stage": None, "t": time.perf_counter()}

    def stage(name: str) -> None:
        now = time.perf_counter()
        if state["stage"]:
            timings[state["stage"]] = now - state["t"]
        if should_stop is not None and should_stop():
            raise TrainingCancelled(0)
        state.update(stage=name, t=now)
        if on_stage is not None:
            on_stage(name)

    # ---------------------------------------------------------------- validate
    stage("validate")
    if not isinstance(frame, pd.DataFrame):
        frame = read_records(frame, limits=cfg.limits)
    check_limits(frame, cfg.limits)
    validate_target(frame, target, min_class_rows=1)
    n_in = len(frame)
    frame = frame[frame[target].notna()].reset_index(drop=True)
    dropped_missing_target = n_in - len(frame)
    frame[target] = _normalise_labels(frame[target])
    if len(frame) < cfg.min_rows:
        raise DataError(
            f"{len(frame)} labelled rows is too few to train on; at least {cfg.min_rows} "
            "are needed",
            code="too_few_rows",
        )
    schema = infer_schema(frame, target, column_types=column_types, features=features,
                          config=cfg.schema)
    if not schema.features:
        reasons = "; ".join(f"{c.name}: {c.reason}" for c in schema.columns) or "no columns"
        raise DataError(f"no usable feature columns ({reasons})", code="no_features")
    if holdout is not None:
        missing = [c for c in [*schema.features, target] if c not in holdout.columns]
        if missing:
            raise MissingColumnsError(missing, "the holdout rows lack column(s): "
                                      + ", ".join(map(repr, missing)))
        holdout_df = holdout[holdout[target].notna()].reset_index(drop=True).copy()
        holdout_df[target] = _normalise_labels(holdout_df[target])
        cols = [*schema.features, target]
        seen = set(_row_hashes(holdout_df, cols).tolist())
        in_holdout = np.fromiter((h in seen for h in _row_hashes(frame, cols).tolist()),
                                 dtype=bool, count=len(frame))
        train_df = frame[~in_holdout]
    else:
        train_df, holdout_df = split_holdout(frame, target, cfg.holdout_fraction, random_state)
    if len(holdout_df) == 0:
        raise DataError("too few rows to keep a holdout set", code="too_few_rows")
    validate_target(train_df, target, min_class_rows=1)
    rare_classes = unevaluated_classes(train_df[target], holdout_df[target])

    # ---------------------------------------------------------------- profile
    stage("profile")
    profile = build_profile(frame, schema, cfg.profile)

    # ---------------------------------------------------------------- features
    stage("fit_features")
    pipe = FeaturePipeline(schema, cfg.features).fit(train_df)
    X = pipe.transform(train_df)

    # ---------------------------------------------------------------- model
    stage("fit_model")
    est = cfg.estimator(random_state)
    est.fit(X, train_df[target].to_numpy(), on_epoch=on_epoch, should_stop=should_stop)
    del X

    # ---------------------------------------------------------------- evaluate
    stage("evaluate")
    model = TrainedModel(
        target=target,
        schema=schema,
        features=pipe,
        estimator=est,
        metrics={},
        profile=profile,
        holdout=holdout_df.reset_index(drop=True),
        config=cfg,
    )
    raw = model.predict_frame(holdout_df)  # temperature 1.0 yet: uncalibrated
    y_hold = holdout_df[target].to_numpy()
    y_idx = class_indices(y_hold, model.classes)
    right = raw.probabilities.argmax(axis=1) == y_idx
    model.temperature = fit_temperature(raw.probabilities, y_idx)
    P = apply_temperature(raw.probabilities, model.temperature)
    confidences = P[np.arange(len(P)), raw.probabilities.argmax(axis=1)]
    # what is served and logged is calibrated, so metrics (log loss) and the baseline of the
    # confidence drift check are computed from the calibrated probabilities too
    metrics = compute_metrics(y_hold, P, model.classes)
    metrics["validation_accuracy"] = est.best_validation_score_
    metrics["temperature"] = model.temperature
    metrics["ece_uncalibrated"] = expected_calibration_error(raw.confidences, right)
    # the ECE of probabilities calibrated on the same rows would flatter them: cross-fit
    metrics["ece"] = cross_fitted_ece(raw.probabilities, y_idx, random_state=random_state)
    t_imp = time.perf_counter()
    metrics["feature_importance"] = permutation_importance(
        pipe, est, holdout_df, y_idx, random_state=random_state)
    importance_s = time.perf_counter() - t_imp
    profile["prediction"] = profile_predictions(
        raw.labels, confidences, model.classes, cfg.profile.confidence_edges
    )
    model.metrics = metrics
    timings["evaluate"] = time.perf_counter() - state["t"]
    model.info = to_jsonable(
        {
            "rows": n_in,
            "rows_dropped_missing_target": dropped_missing_target,
            "train_rows": len(train_df),
            "holdout_rows": len(holdout_df),
            "rare_classes": rare_classes,
            "n_features_out": pipe.n_features_out_,
            "text_modes": pipe.text_modes_,
            "ignored_columns": {c.name: c.reason for c in schema.columns if c.kind == IGNORED},
            "hidden_layers": list(est.hidden_layers_),
            "backend": est.backend_,
            "device": est.device_,
            "epochs": est.n_iter_,
            "history": est.history_,
            "stage_seconds": timings,
            "feature_importance_seconds": importance_s,
            "random_state": random_state,
        }
    )
    return model
