"""Temperature scaling, ECE and confidence-based accuracy estimation on synthetic draws whose
true probabilities are known, so every expectation has a ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from mlservice.ml import DataError, estimate_accuracy, expected_calibration_error
from mlservice.ml.calibration import (
    apply_temperature,
    cross_fitted_ece,
    fit_temperature,
)


def _softmax(Z: np.ndarray) -> np.ndarray:
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def _draws(n: int, k: int, sharpen: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from true probabilities; the 'model' reports them sharpened by ``sharpen``
    (> 1: over-confident), which a temperature of ``sharpen`` exactly undoes."""
    rng = np.random.default_rng(seed)
    true = _softmax(rng.normal(0, 1.2, size=(n, k)))
    y = np.array([rng.choice(k, p=p) for p in true])
    reported = _softmax(np.log(true) * sharpen).astype(np.float32)
    return reported, y


def _top(P: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = P.argmax(axis=1)
    return P[np.arange(len(y)), idx], idx == y


def test_temperature_undoes_over_confidence_and_lowers_ece():
    P, y = _draws(4000, 4, sharpen=2.5, seed=0)
    T = fit_temperature(P, y)
    assert 2.1 < T < 2.9  # the true temperature is 2.5
    Q = apply_temperature(P, T)
    assert Q.dtype == np.float32 and np.allclose(Q.sum(axis=1), 1, atol=1e-5)
    assert (Q.argmax(axis=1) == P.argmax(axis=1)).all()
    before = expected_calibration_error(*_top(P, y))
    after = expected_calibration_error(*_top(Q, y))
    assert before > 0.1 and after < 0.03 and after < before / 4
    honest = cross_fitted_ece(P, y)
    assert after <= honest < 0.05  # measured on unseen halves: a little worse, still calibrated


def test_under_confidence_gives_t_below_one_and_calibrated_input_about_one():
    P, y = _draws(4000, 3, sharpen=0.5, seed=1)
    assert 0.4 < fit_temperature(P, y) < 0.6
    P, y = _draws(4000, 3, sharpen=1.0, seed=2)
    assert 0.9 < fit_temperature(P, y) < 1.1


def test_apply_temperature_one_is_identity_and_softmax_of_scaled_logs_otherwise():
    P, _ = _draws(50, 3, sharpen=1.0, seed=3)
    assert apply_temperature(P, 1.0) is P
    expected = _softmax(np.log(P.astype(np.float64)) / 1.7)
    assert np.allclose(apply_temperature(P, 1.7), expected, atol=1e-6)
    # zero probabilities stay zero, the top class never underflows
    Z = np.array([[1.0, 0.0, 0.0], [0.6, 0.4, 0.0]], dtype=np.float32)
    # 200 near-uniform classes sharpened 20-fold: 0.0055**20 underflows float32 to 0 (and the
    # row to 0/0) unless the row is rescaled by its max first
    wide = np.full((1, 200), (1 - 0.0055) / 199, dtype=np.float32)
    wide[0, 7] = 0.0055
    assert np.power(wide, 20.0).max() == 0
    sharp = apply_temperature(wide, 0.05)
    assert np.isfinite(sharp).all() and sharp.argmax() == 7
    assert np.allclose(sharp, _softmax(np.log(wide.astype(np.float64)) * 20), atol=1e-6)
    r = (0.4 / 0.6) ** 20
    assert np.allclose(apply_temperature(Z, 0.05), [[1, 0, 0], [1 / (1 + r), r / (1 + r), 0]],
                       atol=1e-6)


def test_fit_temperature_edge_cases():
    assert fit_temperature(np.empty((0, 2)), np.empty(0, np.int64)) == 1.0
    assert fit_temperature(np.array([[0.7, 0.3]]), np.array([-1])) == 1.0  # unknown label only
    # every row right with probability 1: nothing to calibrate
    assert fit_temperature(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == 1.0
    # all confident and all wrong: the fit softens as far as it is allowed to
    assert fit_temperature(np.array([[0.99, 0.01]] * 5), np.array([1] * 5)) > 5
    one = fit_temperature(np.array([[0.8, 0.2]]), np.array([0]))
    assert 0.05 <= one < 1.0  # one right row: sharpening only raises its likelihood
    with pytest.raises(ValueError):
        fit_temperature(np.ones((3, 2)) / 2, np.array([0, 1]))


def test_ece_bins_by_hand():
    # bin (0.6, 0.6667]: conf 0.65, 2 of 2 right -> gap 0.35; bin (0.9333, 1]: conf 1.0, 0 of 1
    assert expected_calibration_error([0.65, 0.65, 1.0], [True, True, False]) == pytest.approx(
        (2 * 0.35 + 1 * 1.0) / 3)
    assert expected_calibration_error([0.7, 0.7], [True, False], bins=1) == pytest.approx(0.2)
    assert expected_calibration_error([0.0], [False]) == 0.0  # a zero confidence has a bin
    assert expected_calibration_error([], []) is None
    with pytest.raises(ValueError):
        expected_calibration_error([0.5, 0.6], [True])
    assert cross_fitted_ece(np.array([[0.9, 0.1]]), np.array([0])) is None


def test_estimated_accuracy_interval_covers_realised_accuracy_about_95_percent():
    """Calibrated draws: each row is right with probability = its confidence. The 95 % interval
    must cover the realised accuracy in about 95 % of windows, and a z of 1 in about 68 %:
    a too narrow or too wide spread fails one of the two."""
    rng = np.random.default_rng(17)
    reps, n = 600, 300
    hits95 = hits68 = 0
    errors = []
    for _ in range(reps):
        conf = rng.beta(5, 2, size=n)
        realised = float((rng.random(n) < conf).mean())
        e95 = estimate_accuracy(conf)
        e68 = estimate_accuracy(conf, z=1.0)
        hits95 += e95["low"] <= realised <= e95["high"]
        hits68 += e68["low"] <= realised <= e68["high"]
        errors.append(e95["estimate"] - realised)
    assert 0.925 <= hits95 / reps <= 0.975
    assert 0.62 <= hits68 / reps <= 0.74
    assert abs(np.mean(errors)) < 0.005  # unbiased


def test_estimate_accuracy_edge_cases():
    assert estimate_accuracy([]) is None
    one = estimate_accuracy([0.8])
    assert one["n"] == 1 and one["estimate"] == pytest.approx(0.8)
    assert one["low"] == pytest.approx(0.8 - 1.96 * 0.4) and one["high"] == 1.0  # clipped
    sure = estimate_accuracy(np.ones(100))
    assert sure == {"estimate": 1.0, "low": 1.0, "high": 1.0, "n": 100}
    widened = estimate_accuracy(np.ones(100), calibration_error=0.03)
    assert widened["low"] == pytest.approx(0.97) and widened["high"] == 1.0
    assert estimate_accuracy([0.5] * 4, calibration_error=None) == estimate_accuracy([0.5] * 4)
    with pytest.raises(DataError) as ei:
        estimate_accuracy([0.5, 1.5])
    assert ei.value.code == "bad_confidences"
    with pytest.raises(DataError):
        estimate_accuracy([0.5, float("nan")])
