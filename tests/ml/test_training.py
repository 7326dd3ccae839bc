from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlservice.ml import (
    STAGES,
    DataError,
    TrainingCancelled,
    TrainingConfig,
    evaluate_bundle,
    expected_calibration_error,
    permutation_importance,
    train,
)
from mlservice.ml.calibration import apply_temperature
from mlservice.ml.evaluation import class_indices
from mlservice.ml.profile import confidence_bins


@pytest.fixture(scope="module")
def adult_model(adult_small):
    cfg = TrainingConfig(hidden_layer_sizes=(32, 16), max_iter=15, n_iter_no_change=5)
    return train(adult_small, "income", cfg)


def test_stages_epochs_and_result(adult_small, small_config):
    stages, epochs = [], []
    m = train(adult_small, "income", small_config, on_stage=stages.append, on_epoch=epochs.append)
    assert tuple(stages) == STAGES
    assert len(epochs) == m.estimator.n_iter_ == m.info["epochs"]
    assert m.classes == ["<=50K", ">50K"]
    assert len(m.holdout) + m.info["train_rows"] == len(adult_small)
    assert m.holdout["income"].value_counts(normalize=True)["<=50K"] == pytest.approx(
        adult_small["income"].value_counts(normalize=True)["<=50K"], abs=0.02)
    for k in ("accuracy", "balanced_accuracy", "macro_f1", "log_loss", "per_class",
              "confusion_matrix", "validation_accuracy"):
        assert k in m.metrics
    cm = np.array(m.metrics["confusion_matrix"]["matrix"])
    assert cm.sum() == len(m.holdout)
    assert m.metrics["per_class"][">50K"]["support"] == (m.holdout["income"] == ">50K").sum()
    pp = m.profile["prediction"]
    assert pp["classes"] == m.classes and sum(pp["class_shares"]) == pytest.approx(1)
    assert set(m.info["stage_seconds"]) == set(STAGES)


def test_cancel_and_bad_input(adult_small, small_config):
    with pytest.raises(TrainingCancelled):
        train(adult_small, "income", small_config, should_stop=lambda: True)
    with pytest.raises(DataError, match="unknown target column 'salary'"):
        train(adult_small, "salary", small_config)
    with pytest.raises(DataError, match="only one class"):
        train(adult_small.assign(income="x"), "income", small_config)
    with pytest.raises(DataError, match="no usable feature columns"):
        train(adult_small[["income"]].assign(k=1), "income", small_config)


def test_records_input_and_missing_target_rows(adult_small, small_config):
    recs = adult_small.head(300).to_dict("records")
    recs[0]["income"] = None
    m = train(recs, "income", small_config)
    assert m.info["rows_dropped_missing_target"] == 1


def test_reuse_previous_holdout(adult_small, adult_model, small_config):
    m2 = train(adult_small, "income", small_config, holdout=adult_model.holdout, random_state=5)
    assert m2.holdout.equals(adult_model.holdout.reset_index(drop=True))
    assert m2.info["train_rows"] == len(adult_small) - len(adult_model.holdout)
    a = evaluate_bundle(adult_model, adult_model.holdout, "income")
    b = evaluate_bundle(m2, adult_model.holdout, "income")
    assert a["n_samples"] == b["n_samples"] == len(adult_model.holdout)
    assert a["accuracy"] == pytest.approx(adult_model.metrics["accuracy"])


def test_predict_extra_columns_and_drift(adult_small, adult_model):
    p = adult_model.predict_frame(adult_small.assign(note="x"))
    assert p.ignored_columns == ["income", "note"]
    assert len(p.labels) == len(adult_small) and np.all(p.confidences >= 0.5)
    rep = adult_model.check_drift(adult_small)
    assert rep["verdict"] == "no_drift" and rep["prediction"]["classes"]["sample_size"] == 600
    rows = p.to_records()
    assert set(rows[0]) == {"prediction", "confidence", "probabilities"}


@pytest.mark.slow
def test_adult_accuracy_default_cpu_backend(adult):
    """UCI Adult, whole training split, default configuration (sklearn backend,
    adaptive layers (256, 128, 64), early stopping): holdout accuracy ≥ 0.84
    (measured 0.859 here; published figures for common classifiers: 0.83–0.86)."""
    m = train(adult, "income", TrainingConfig(device="cpu"))
    assert m.info["backend"] == "sklearn"
    assert m.metrics["accuracy"] >= 0.84, m.metrics["accuracy"]
    assert m.metrics["accuracy"] > m.metrics["majority_baseline_accuracy"] + 0.08


@pytest.mark.slow
def test_ucla_titles_accuracy_above_majority(ucla):
    """UCLA course title → subject (173 subjects, text only). Classes with one
    row are dropped first (the reader's error names them). Measured: accuracy
    0.53 against a majority-class baseline of 0.036."""
    counts = ucla["subject"].value_counts()
    df = ucla[ucla["subject"].isin(counts[counts >= 2].index)]
    m = train(df, "subject", TrainingConfig(device="cpu"), features=["course"])
    base = m.metrics["majority_baseline_accuracy"]
    assert base < 0.05
    assert m.metrics["accuracy"] >= 0.40, m.metrics["accuracy"]
    assert m.metrics["accuracy"] > 10 * base


def test_rare_classes_train_only(adult_small, small_config):
    """A class with one row never blocks training: it is trained on (never held out), the
    model knows it, and predict_proba has its column. Also when a previous holdout is reused,
    as a retrain with one new class in its feedback does."""
    df = adult_small.copy()
    df.loc[0, "income"] = "unique-class"
    df.loc[[1, 2], "income"] = "pair"
    m = train(df, "income", small_config)
    assert m.classes == ["<=50K", ">50K", "pair", "unique-class"]
    assert "unique-class" not in set(m.holdout["income"])
    assert m.info["train_rows"] + len(m.holdout) == len(df)
    p = m.predict_frame(df.head(3))
    assert p.probabilities.shape == (3, 4) and (p.probabilities[:, 3] > 0).all()
    assert m.metrics["per_class"]["unique-class"]["support"] == 0
    retrained = train(df, "income", small_config, holdout=train(adult_small, "income",
                                                                  small_config).holdout)
    assert "unique-class" in retrained.classes
    tiny = pd.DataFrame({"x": range(31), "y": ["a"] * 30 + ["b"]})
    assert train(tiny, "y", small_config).classes == ["a", "b"]
    with pytest.raises(DataError, match="only one class") as ei:
        train(tiny.assign(y="a"), "y", small_config)
    assert ei.value.code == "single_class"


def test_calibrated_predictions_metrics_and_profile(adult_small, adult_model):
    m = adult_model
    T = m.temperature
    assert T == m.metrics["temperature"] and 0.05 <= T <= 20 and T != 1.0
    raw = m.estimator.predict_proba(m.features.transform(adult_small))
    p = m.predict_frame(adult_small)
    assert np.allclose(p.probabilities, apply_temperature(raw, T), atol=1e-6)
    assert [m.classes[i] for i in raw.argmax(axis=1)] == p.labels  # labels unchanged
    one = m.predict_records(adult_small.head(1).to_dict("records"))
    assert np.allclose(one.probabilities, p.probabilities[:1], atol=1e-6)
    batch = m.predict_records(adult_small.head(100).to_dict("records"))  # the DataFrame path
    assert np.allclose(batch.probabilities, p.probabilities[:100], atol=1e-6)
    # the ECEs are what they claim: the raw one recomputed here, the calibrated one cross-fitted
    h = m.predict_frame(m.holdout)
    y = class_indices(m.holdout["income"], m.classes)
    hraw = m.estimator.predict_proba(m.features.transform(m.holdout))
    right = hraw.argmax(axis=1) == y
    assert m.metrics["ece_uncalibrated"] == pytest.approx(
        expected_calibration_error(hraw.max(axis=1), right))
    assert 0 <= m.metrics["ece"] < 0.2
    assert m.metrics["accuracy"] == pytest.approx(right.mean())
    # the baseline of the confidence drift check is built from the calibrated confidences
    shares = confidence_bins(h.confidences, m.profile["prediction"]["confidence_edges"]) / len(h.labels)
    assert np.allclose(m.profile["prediction"]["confidence_shares"], shares)


def test_permutation_importance_finds_the_signal(small_config):
    rng = np.random.default_rng(0)
    n = 800
    df = pd.DataFrame({"signal": rng.normal(size=n), "noise": rng.normal(size=n),
                       "colour": rng.choice(["red", "blue"], size=n)})
    df["y"] = np.where(df["signal"] > 0, "pos", "neg")
    cfg = TrainingConfig(hidden_layer_sizes=(16,), max_iter=40, n_iter_no_change=10)
    m = train(df, "y", cfg)
    imp = m.metrics["feature_importance"]
    assert set(imp) == {"signal", "noise", "colour"}
    assert imp["signal"] > 0.25, imp
    assert abs(imp["noise"]) < 0.05 and abs(imp["colour"]) < 0.05, imp
    assert m.info["feature_importance_seconds"] < m.info["stage_seconds"]["fit_model"]


@pytest.mark.parametrize("kind", ["dense", "sparse text"])
def test_permutation_importance_equals_shuffling_the_raw_column(kind, adult_model, ucla):
    """Permuting the output columns of a feature equals permuting the input column and
    transforming again (the shortcut permutation_importance takes)."""
    if kind == "dense":
        m, frame = adult_model, adult_model.holdout
    else:
        df = ucla.head(400)
        m = train(df, "subject", TrainingConfig(hidden_layer_sizes=(16,), max_iter=5),
                  features=["course", "seminar", "course_numeric"])
        frame = df
    y = class_indices(frame[m.target], m.classes)
    got = permutation_importance(m.features, m.estimator, frame, y, repeats=1, random_state=3)
    assert len(frame) <= 2000  # all rows used: no sample draw to replay
    rng = np.random.default_rng(3)
    base = float(np.mean(m.estimator.predict_proba(m.features.transform(frame)).argmax(1) == y))
    for col in m.features.output_columns():
        perm = rng.permutation(len(frame))
        shuffled = frame.copy()
        shuffled[col] = frame[col].to_numpy()[perm]
        pred = m.estimator.predict_proba(m.features.transform(shuffled)).argmax(1)
        assert got[col] == pytest.approx(base - float(np.mean(pred == y)), abs=1e-9), col
