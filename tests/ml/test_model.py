from __future__ import annotations

import numpy as np
import pytest

from mlservice.ml import (
    AdaptiveMLPClassifier,
    BackendUnavailable,
    ConfigError,
    FeaturePipeline,
    TrainingCancelled,
    choose_hidden_layers,
    infer_schema,
)
from mlservice.ml.model import stratified_split_indices, torch_cuda_available


@pytest.fixture(scope="module")
def adult_xy(adult_small):
    fp = FeaturePipeline(infer_schema(adult_small, "income")).fit(adult_small)
    return fp.transform(adult_small), adult_small["income"].to_numpy()


def _small(**kw) -> AdaptiveMLPClassifier:
    p = {"hidden_layer_sizes": (32, 16), "max_iter": 8, "random_state": 0, "device": "cpu"}
    p.update(kw)
    return AdaptiveMLPClassifier(**p)


def test_architecture_rule():
    assert choose_hidden_layers(600_000) == (1024, 512, 256, 128)
    assert choose_hidden_layers(500_000) == (512, 256, 128)
    assert choose_hidden_layers(60_000) == (512, 256, 128)
    assert choose_hidden_layers(30_000) == (256, 128, 64)
    assert choose_hidden_layers(5_000) == (128, 64)
    assert choose_hidden_layers(500) == (64, 32)
    assert choose_hidden_layers(500, adaptive=False) == (512, 256, 128)
    assert choose_hidden_layers(500, (20, 10, 5)) == (20, 10)


def test_seed_defaults():
    p = AdaptiveMLPClassifier().get_params()
    assert p["hidden_layer_sizes"] == (512, 256, 128)
    assert p["large_dataset_hidden_layers"] == (1024, 512, 256, 128)
    assert p["large_dataset_threshold"] == 500_000
    assert (p["activation"], p["solver"], p["max_iter"], p["batch_size"]) == (
        "relu", "adam", 5000, "auto")
    assert (p["learning_rate_init"], p["alpha"]) == (0.001, 0.0001)
    assert p["early_stopping"] is True and p["validation_fraction"] == 0.1


def test_fit_predict_epochs_and_determinism(adult_xy):
    X, y = adult_xy
    seen = []
    m = _small().fit(X, y, on_epoch=seen.append)
    assert m.backend_ == "sklearn" and m.hidden_layers_ == (32, 16)
    assert [e.epoch for e in seen] == list(range(1, m.n_iter_ + 1))
    assert all(e.loss > 0 and 0 <= e.validation_score <= 1 for e in seen)
    assert seen[-1].loss < seen[0].loss
    P = m.predict_proba(X)
    assert P.shape == (len(y), 2) and np.allclose(P.sum(axis=1), 1, atol=1e-5)
    assert set(m.predict(X)) <= set(m.classes_)
    assert m.best_validation_score_ == max(m.validation_scores_)
    m2 = _small().fit(X, y)
    assert np.array_equal(m2.predict_proba(X), P)
    m3 = _small(random_state=1).fit(X, y)
    assert not np.array_equal(m3.predict_proba(X), P)


def test_early_stopping_stops_and_restores_best(adult_xy):
    X, y = adult_xy
    m = _small(max_iter=300, n_iter_no_change=3).fit(X, y)
    assert m.n_iter_ < 300
    best = int(np.argmax(m.validation_scores_))
    assert m.n_iter_ >= best + 4
    # the restored weights reproduce the best validation accuracy
    assert m.best_validation_score_ == m.validation_scores_[best]


def test_cancel_between_epochs(adult_xy):
    X, y = adult_xy
    seen = []
    with pytest.raises(TrainingCancelled) as ei:
        _small(max_iter=50).fit(X, y, on_epoch=seen.append, should_stop=lambda: len(seen) >= 3)
    assert ei.value.epoch == 3 and len(seen) == 3
    assert ei.value.code == "cancelled"


def test_bad_device_and_backend(adult_xy):
    X, y = adult_xy
    with pytest.raises(ConfigError, match="device must be"):
        _small(device="tpu").fit(X, y)
    with pytest.raises(ConfigError, match="CPU only"):
        _small(device="cuda", backend="sklearn").fit(X, y)
    if not torch_cuda_available():
        with pytest.raises(BackendUnavailable, match="cuda"):
            _small(device="cuda").fit(X, y)


def test_stratified_split_keeps_every_class():
    y = np.array(["a"] * 50 + ["b"] * 10 + ["c"] * 2 + ["d"])
    keep, held = stratified_split_indices(y, 0.2, np.random.default_rng(0))
    assert len(np.intersect1d(keep, held)) == 0 and len(keep) + len(held) == len(y)
    assert set(y[keep]) == {"a", "b", "c", "d"}
    assert (y[held] == "a").sum() == 10 and (y[held] == "b").sum() == 2
    # a single-row class is too small to split: it is never held out (holdout or early
    # stopping's validation), whatever the draw, so the model always trains on it
    for seed in range(200):
        keep, held = stratified_split_indices(y, 0.5, np.random.default_rng(seed))
        assert "d" in set(y[keep]) and "d" not in set(y[held])


def test_torch_backend_cpu(adult_xy):
    pytest.importorskip("torch")
    X, y = adult_xy
    seen = []
    m = _small(backend="torch", max_iter=6).fit(X, y, on_epoch=seen.append)
    assert m.backend_ == "torch" and m.device_ == "cpu"
    assert len(seen) == m.n_iter_ and seen[-1].loss < seen[0].loss
    P = m.predict_proba(X)
    assert np.allclose(P.sum(axis=1), 1, atol=1e-5)
    assert (m.predict(X) == y).mean() > 0.7
    m2 = _small(backend="torch", max_iter=6).fit(X, y)
    assert np.allclose(m2.predict_proba(X), P, atol=1e-6)
    with pytest.raises(TrainingCancelled):
        _small(backend="torch").fit(X, y, should_stop=lambda: True)


def test_torch_backend_sparse_text(ucla):
    pytest.importorskip("torch")
    df = ucla.head(400)
    fp = FeaturePipeline(infer_schema(df, "subject", features=["course"])).fit(df)
    X = fp.transform(df)
    m = _small(backend="torch", max_iter=3, early_stopping=False).fit(X, df["subject"])
    assert m.predict_proba(X).shape == (400, df["subject"].nunique())


def test_torch_backend_cuda(adult_xy):
    """Runs on a machine with a CUDA GPU (skipped elsewhere)."""
    pytest.importorskip("torch")
    if not torch_cuda_available():
        pytest.skip("no CUDA device")
    X, y = adult_xy
    m = _small(device="auto", max_iter=10, batch_size=32).fit(X, y)
    assert (m.backend_, m.device_) == ("torch", "cuda")
    assert (m.predict(X) == y).mean() > 0.7
    assert isinstance(m.coefs_[0], np.ndarray)  # served without torch


def test_predict_proba_gives_the_same_for_a_ready_matrix_and_anything_else(adult_xy):
    X, y = adult_xy
    m = _small().fit(X, y)
    ready = np.ascontiguousarray(X[:5], dtype=np.float32)  # what the feature pipeline hands over
    assert m._valid_as_is(ready)
    np.testing.assert_array_equal(m.predict_proba(ready), m.predict_proba(ready.astype(np.float64)))
    np.testing.assert_array_equal(m.predict_proba(ready), m.predict_proba(ready.tolist()))
    bad = ready.copy()
    bad[0, 0] = np.inf
    assert not m._valid_as_is(bad)
    with pytest.raises(ValueError, match="infinity"):  # sklearn's check still answers
        m.predict_proba(bad)
    with pytest.raises(ValueError):
        m.predict_proba(ready[:, :-1])


def test_auto_batch_size_grows_on_the_large_tables_only() -> None:
    from mlservice.ml.model import LARGE_TABLE_BATCH, _batch_size

    assert _batch_size("auto", 50, 500_000) == 50
    assert _batch_size("auto", 400_000, 500_000) == 200  # scikit-learn's rule below the threshold
    assert _batch_size("auto", 500_001, 500_000) == LARGE_TABLE_BATCH == 1000
    assert _batch_size("auto", 300, 100) == 300  # never more than the rows
    assert _batch_size(64, 500_001, 500_000) == 64  # an explicit size is kept
    assert _batch_size("auto", 600_000) == 200  # no threshold given: scikit-learn's rule


def test_the_in_place_adam_trains_exactly_as_scikit_learns() -> None:
    """Same data, seed and settings: scikit-learn's own MLPClassifier and the engine's (whose Adam
    updates in place) end with bit-identical weights and loss curves."""
    from sklearn.neural_network import MLPClassifier

    from mlservice.ml.model import _sklearn_mlp

    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int)
    params = dict(hidden_layer_sizes=(32, 16), batch_size=50, max_iter=1, random_state=3, shuffle=True)
    ours, plain = _sklearn_mlp()(**params), MLPClassifier(**params)
    assert type(ours).__mro__[1] is MLPClassifier
    for _ in range(4):
        ours.partial_fit(X, y, classes=[0, 1])
        plain.partial_fit(X, y, classes=[0, 1])
    assert type(ours._optimizer).__name__ == "InPlaceAdam"
    assert ours.loss_curve_ == plain.loss_curve_
    for mine, theirs in zip(ours.coefs_ + ours.intercepts_, plain.coefs_ + plain.intercepts_):
        assert mine.dtype == theirs.dtype == np.float32
        assert np.array_equal(mine, theirs)
