from __future__ import annotations

import numpy as np
import pytest

from mlservice.ml import (
    STAGES,
    DataError,
    TrainingCancelled,
    TrainingConfig,
    evaluate_bundle,
    train,
)


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
    df = adult_small.copy()
    df.loc[0, "income"] = "unique-class"
    with pytest.raises(DataError, match="'unique-class' \\(1 row\\)"):
        train(df, "income", small_config)
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
