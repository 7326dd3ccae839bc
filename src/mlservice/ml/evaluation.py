"""Evaluation: stratified train/holdout split and classification metrics."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from .model import stratified_split_indices

__all__ = ["split_holdout", "compute_metrics", "to_jsonable"]


def to_jsonable(v: Any) -> Any:
    """numpy scalars/arrays → plain Python (for JSON)."""
    if isinstance(v, dict):
        return {str(k): to_jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return to_jsonable(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def split_holdout(
    frame: pd.DataFrame, target: str, fraction: float = 0.15, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified split into (train, holdout): about ``fraction`` of every class
    goes to the holdout, at least one row of every class stays in train."""
    y = frame[target].astype(str).to_numpy()
    keep, held = stratified_split_indices(y, fraction, np.random.default_rng(random_state))
    return frame.iloc[keep], frame.iloc[held]


def compute_metrics(
    y_true: Sequence[Any], proba: np.ndarray, classes: Sequence[Any]
) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. predicted classes absent from y_true
        return _compute_metrics(y_true, proba, classes)


def _compute_metrics(
    y_true: Sequence[Any], proba: np.ndarray, classes: Sequence[Any]
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro-F1, per-class precision/recall/F1/support,
    confusion matrix (rows: true, columns: predicted, in ``classes`` order),
    log loss and the majority-class baseline accuracy. Rows whose true label
    the model does not know count as errors; log loss skips them."""
    classes = [str(c) for c in classes]
    yt = np.asarray([str(v) for v in y_true], dtype=object)
    n = len(yt)
    if n == 0:
        return {"n_samples": 0}
    cls_arr = np.asarray(classes, dtype=object)
    pred = cls_arr[np.asarray(proba).argmax(axis=1)]
    known = np.isin(yt, cls_arr)
    labels = classes + sorted(set(yt[~known].tolist()))
    yt_l, pred_l = yt.tolist(), pred.tolist()
    p, r, f, s = precision_recall_fscore_support(yt_l, pred_l, labels=classes, zero_division=0)
    ll = None
    if known.any():
        pr = np.clip(np.asarray(proba, dtype=np.float64)[known], 1e-15, 1.0)
        pr = pr / pr.sum(axis=1, keepdims=True)
        ll = float(log_loss(yt[known].tolist(), pr, labels=classes))
    counts = pd.Series(yt_l).value_counts()
    return to_jsonable(
        {
            "n_samples": n,
            "accuracy": float(accuracy_score(yt_l, pred_l)),
            "balanced_accuracy": float(balanced_accuracy_score(yt_l, pred_l)),
            "macro_f1": float(f1_score(yt_l, pred_l, labels=classes, average="macro", zero_division=0)),
            "weighted_f1": float(
                f1_score(yt_l, pred_l, labels=classes, average="weighted", zero_division=0)
            ),
            "log_loss": ll,
            "majority_baseline_accuracy": float(counts.iloc[0] / n),
            "unknown_label_rows": int((~known).sum()),
            "per_class": {
                str(c): {
                    "precision": float(p[i]),
                    "recall": float(r[i]),
                    "f1": float(f[i]),
                    "support": int(s[i]),
                }
                for i, c in enumerate(classes)
            },
            "confusion_matrix": {
                "labels": labels,
                "matrix": confusion_matrix(yt_l, pred_l, labels=labels).tolist(),
            },
        }
    )
