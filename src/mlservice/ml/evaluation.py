"""Evaluation: stratified train/holdout split and classification metrics."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from .model import stratified_split_indices

__all__ = ["split_holdout", "compute_metrics", "to_jsonable", "class_indices",
           "permutation_importance"]


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


def class_indices(y: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    """Index of each label in ``classes`` (compared as text, as :func:`compute_metrics` does);
    -1 for a label the model does not know."""
    pos = {str(c): i for i, c in enumerate(classes)}
    return np.fromiter((pos.get(str(v), -1) for v in y), dtype=np.int64, count=len(y))


def permutation_importance(
    features: Any,
    estimator: Any,
    frame: pd.DataFrame,
    y_idx: np.ndarray,
    *,
    max_rows: int = 2_000,
    repeats: int = 2,
    max_permuted_rows: int = 200_000,
    random_state: int = 0,
) -> dict[str, float]:
    """Mean accuracy drop when one feature column's values are shuffled across rows
    (``repeats`` shuffles, a fixed seed), for every input feature of the fitted
    ``features`` pipeline, on at most ``max_rows`` rows of ``frame``.

    The rows are transformed once: the pipeline is column-wise
    (:meth:`~mlservice.ml.features.FeaturePipeline.output_columns`), so only the
    feature's output columns are permuted before each forward pass. Wide tables
    use fewer rows so that at most ``max_permuted_rows`` rows are predicted in all."""
    cols = features.output_columns()
    n_feat = max(1, len(cols))
    rows = min(max_rows, len(frame), max(200, max_permuted_rows // (n_feat * repeats)))
    if rows == 0:
        return {c: 0.0 for c in cols}
    rng = np.random.default_rng(random_state)
    pick = np.sort(rng.choice(len(frame), rows, replace=False)) if rows < len(frame) \
        else np.arange(len(frame))
    X = features.transform(frame.iloc[pick])
    y = np.asarray(y_idx)[pick]
    # counts of right rows, not shares, so that no drop is float noise like -5e-17
    base = int(np.sum(estimator.predict_proba(X).argmax(axis=1) == y))
    sparse = sp.issparse(X)
    out: dict[str, float] = {}
    for name, oc in cols.items():
        lost = 0
        for _ in range(repeats):
            perm = rng.permutation(rows)
            if sparse:
                mask = np.zeros(X.shape[1], dtype=np.float32)
                mask[oc] = 1.0
                D = sp.diags(mask, format="csr")
                Xp = (X - X @ D + X[perm] @ D).tocsr()
            else:
                Xp = X.copy()
                Xp[:, oc] = X[np.ix_(perm, oc)]
            lost += base - int(np.sum(estimator.predict_proba(Xp).argmax(axis=1) == y))
        out[name] = lost / (repeats * rows)
    return out


def split_holdout(
    frame: pd.DataFrame, target: str, fraction: float = 0.15, random_state: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified split into (train, holdout): about ``fraction`` of every class
    goes to the holdout, at least one row of every class stays in train, so a
    class with a single row (too small to split) is trained on and never held out."""
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
