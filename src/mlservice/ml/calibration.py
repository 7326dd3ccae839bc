"""Calibration of class probabilities and accuracy estimated from them.

A network trained to minimise log loss with early stopping on accuracy is
usually over-confident: of the rows it predicts with 0.9, fewer than 90 % are
right. Temperature scaling (Guo et al., 2017) fixes that with one number T
fitted on held-out rows: ``softmax(log(p) / T)``. It keeps every row's argmax,
so accuracy and the confusion matrix do not move, and with one parameter it
cannot overfit a small holdout the way a per-bin (isotonic) map can.

Once confidences are calibrated, the mean top-class confidence of a window of
predictions estimates the accuracy on that window without labels
(confidence-based performance estimation, as NannyML's CBPE): each row is right
with probability equal to its confidence, so the number of right rows is
Poisson-binomial.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import DataError

__all__ = [
    "fit_temperature",
    "apply_temperature",
    "expected_calibration_error",
    "cross_fitted_ece",
    "estimate_accuracy",
]

#: bounds of the fitted temperature: beyond them the probabilities carry no information
#: (T → ∞ is uniform) or become one-hot (T → 0)
TEMPERATURE_BOUNDS = (0.05, 20.0)
_TINY = 1e-30


def _log_ratios(P: np.ndarray) -> np.ndarray:
    """log(p / max p) per row, float64; zero probabilities become a large negative number."""
    P = np.asarray(P, dtype=np.float64)
    return np.log(np.maximum(P, _TINY)) - np.log(np.maximum(P.max(axis=1, keepdims=True), _TINY))


def _nll(L: np.ndarray, y: np.ndarray, T: float) -> float:
    Z = L / T
    # every row's max of Z is 0, so logsumexp needs no further shift
    lse = np.log(np.exp(Z).sum(axis=1))
    return float(np.mean(lse - Z[np.arange(len(y)), y]))


def fit_temperature(
    P: np.ndarray, y: Sequence[int] | np.ndarray, *, max_rows: int = 50_000
) -> float:
    """The temperature T minimising the negative log-likelihood of
    ``softmax(log(P) / T)`` for the true class indices ``y``.

    Rows whose ``y`` is negative (a label the model does not know) are
    skipped. With no usable rows, or when every usable row is right with a
    probability of 1 already, it returns 1.0 (nothing to learn from). One
    parameter needs few rows: a larger holdout is sampled down to
    ``max_rows`` (fixed seed), which bounds the float64 copy of P."""
    from scipy.optimize import minimize_scalar

    P = np.asarray(P)
    y = np.asarray(y, dtype=np.int64)
    if P.ndim != 2 or len(P) != len(y):
        raise ValueError("P must be (n_rows, n_classes) and y one class index per row")
    ok = y >= 0
    if not ok.any():
        return 1.0
    keep = np.flatnonzero(ok)
    if len(keep) > max_rows:
        keep = np.sort(np.random.default_rng(0).choice(keep, max_rows, replace=False))
    L, y = _log_ratios(P[keep]), y[keep]
    lo, hi = TEMPERATURE_BOUNDS
    res = minimize_scalar(lambda t: _nll(L, y, math.exp(t)), bounds=(math.log(lo), math.log(hi)),
                          method="bounded", options={"xatol": 1e-4})
    T = float(math.exp(res.x))
    # a flat likelihood (e.g. all rows right and one-hot) gives an arbitrary optimum: keep 1.0
    if not res.success or _nll(L, y, T) >= _nll(L, y, 1.0) - 1e-9:
        return 1.0
    return T


def apply_temperature(P: np.ndarray, T: float) -> np.ndarray:
    """``softmax(log(P) / T)`` per row, in P's dtype; P itself when T == 1.

    Computed as ``p ** (1 / T)`` normalised, which is the same thing without
    a log or exp (it runs on every one-row prediction). The top class is at
    least 1/k, so its power cannot underflow unless ``k ** (1 / T)`` is huge;
    then the rows are divided by their max first. Each row's argmax (ties
    aside) is unchanged; callers that need the exact argmax take it from P."""
    if T == 1.0:
        return P
    inv = 1.0 / T
    if P.shape[1] ** inv < 1e30:
        Q = np.power(P, inv)
    else:
        Q = P / P.max(axis=1, keepdims=True)
        np.power(Q, inv, out=Q)
    Q /= Q.sum(axis=1, keepdims=True)
    return Q.astype(P.dtype, copy=False)


def expected_calibration_error(
    confidences: Sequence[float] | np.ndarray,
    correct: Sequence[bool] | np.ndarray,
    bins: int = 15,
) -> float | None:
    """Top-class expected calibration error: rows are put into ``bins``
    equal-width confidence bins on [0, 1] (right-closed), and the gaps
    ``|accuracy - mean confidence|`` of the bins are averaged, weighted by the
    bins' row counts. None for no rows."""
    c = np.asarray(confidences, dtype=np.float64)
    k = np.asarray(correct, dtype=np.float64)
    if c.shape != k.shape or c.ndim != 1:
        raise ValueError("confidences and correct must be 1-D and of the same length")
    if len(c) == 0:
        return None
    if bins < 1:
        raise ValueError("bins must be at least 1")
    b = np.clip(np.ceil(c * bins).astype(np.int64) - 1, 0, bins - 1)
    n = np.bincount(b, minlength=bins)
    gap = np.abs(np.bincount(b, weights=k, minlength=bins) - np.bincount(b, weights=c, minlength=bins))
    # sum over bins of n_b/n * |acc_b - conf_b| = sum |Σcorrect_b - Σconf_b| / n
    return float(gap[n > 0].sum() / len(c))


def _top(P: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.asarray(P).argmax(axis=1)
    return np.asarray(P)[np.arange(len(idx)), idx], idx == y


def cross_fitted_ece(
    P: np.ndarray, y: Sequence[int] | np.ndarray, *, random_state: int = 0, bins: int = 15
) -> float | None:
    """ECE of temperature-scaled ``P`` measured on rows the temperature was not
    fitted on: the rows are split at random into two halves, T is fitted on
    each half and the ECE measured on the other, and the two are averaged
    (weighted by the halves' sizes). Measuring on the fitting rows would
    report the calibration as better than it is. None for fewer than 2 rows."""
    P = np.asarray(P)
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    if n < 2:
        return None
    order = np.random.default_rng(random_state).permutation(n)
    halves = (order[: n // 2], order[n // 2 :])
    total = 0.0
    for fit, test in (halves, halves[::-1]):
        T = fit_temperature(P[fit], y[fit])
        conf, right = _top(apply_temperature(P[test], T), y[test])
        total += expected_calibration_error(conf, right, bins) * len(test)
    return total / n


def estimate_accuracy(
    confidences: Sequence[float] | np.ndarray,
    *,
    calibration_error: float | None = 0.0,
    z: float = 1.96,
) -> dict[str, Any] | None:
    """Accuracy of a window of predictions estimated from their calibrated
    top-class confidences, without labels.

    ``estimate`` is the mean confidence. If every row is right with
    probability equal to its confidence, the share of right rows has standard
    deviation ``sqrt(sum p(1-p)) / n`` (Poisson-binomial); the interval is
    ``estimate ± z·sd``, widened on both sides by ``calibration_error`` (the
    holdout's ECE: how far the confidences may be off) and clipped to [0, 1].
    Returns ``{"estimate", "low", "high", "n"}``, or None for no rows.
    ``calibration_error=None`` (a version trained before calibration) counts as 0."""
    c = np.asarray(confidences, dtype=np.float64).ravel()
    n = len(c)
    if n == 0:
        return None
    if not np.isfinite(c).all() or c.min() < 0.0 or c.max() > 1.0:
        raise DataError("confidences must be numbers in [0, 1]", code="bad_confidences")
    calibration_error = 0.0 if calibration_error is None else float(calibration_error)
    if not (calibration_error >= 0.0) or not (z >= 0.0):
        raise ValueError("calibration_error and z must be non-negative numbers")
    est = float(c.mean())
    half = z * math.sqrt(float(np.sum(c * (1.0 - c)))) / n + float(calibration_error)
    return {
        "estimate": est,
        "low": max(0.0, est - half),
        "high": min(1.0, est + half),
        "n": n,
    }
