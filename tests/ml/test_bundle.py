from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mlservice.ml import (
    BundleError,
    BundleIntegrityError,
    IncompatibleBundleError,
    MissingColumnsError,
    TrainingConfig,
    UntrustedBundleError,
    load_bundle,
    save_bundle,
    train,
)


@pytest.fixture(scope="module")
def adult_model(adult_small):
    return train(adult_small, "income",
                 TrainingConfig(hidden_layer_sizes=(32, 16), max_iter=10, n_iter_no_change=5))


@pytest.fixture(scope="module")
def text_model(ucla):
    df = ucla.head(600)
    counts = df["subject"].value_counts()
    df = df[df["subject"].isin(counts[counts >= 2].index)]
    return train(df, "subject", TrainingConfig(hidden_layer_sizes=(32,), max_iter=5),
                 features=["course", "seminar", "course_numeric"])


@pytest.fixture()
def saved(tmp_path, adult_model):
    path = save_bundle(adult_model, tmp_path / "models" / "adult" / "1.0.0")
    return tmp_path / "models", path


def test_round_trip_identical_predictions(saved, adult_model, adult_small):
    root, path = saved
    assert sorted(os.listdir(path)) == sorted([
        "manifest.json", "schema.json", "features.json", "features.npz", "network.json",
        "network.npz", "metrics.json", "profile.json", "training.json", "holdout.parquet"])
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp dir left
    m = load_bundle(path, root)
    assert m.classes == adult_model.classes and m.target == "income"
    assert np.array_equal(m.predict_proba(adult_small), adult_model.predict_proba(adult_small))
    assert m.metrics == json.loads(json.dumps(adult_model.metrics))
    assert m.profile == json.loads(json.dumps(adult_model.profile))
    assert m.holdout.equals(adult_model.holdout)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == "1.1" and "scikit-learn" in manifest["libraries"]
    assert manifest["summary"]["accuracy"] == adult_model.metrics["accuracy"]
    assert m.temperature == adult_model.temperature != 1.0


def _rewrite(path: Path, name: str, data: bytes, **manifest_changes) -> None:
    """Replace one bundle file and re-sign it in the manifest, as an older engine wrote it."""
    import hashlib

    (path / name).write_bytes(data)
    mpath = path / "manifest.json"
    manifest = json.loads(mpath.read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    mpath.write_text(json.dumps({**manifest, **manifest_changes}))


def test_bundle_without_temperature_loads_uncalibrated(saved, adult_model, adult_small):
    """A 1.0 bundle (before calibration) loads and serves its raw probabilities."""
    root, path = saved
    net = json.loads((path / "network.json").read_text())
    del net["temperature"]
    _rewrite(path, "network.json", json.dumps(net).encode(), format_version="1.0")
    m = load_bundle(path, root)
    assert m.temperature == 1.0
    raw = adult_model.estimator.predict_proba(adult_model.features.transform(adult_small))
    assert np.array_equal(m.predict_proba(adult_small), raw)
    assert not np.allclose(adult_model.predict_proba(adult_small), raw)  # the new one scales
    assert m.predict(adult_small) == adult_model.predict(adult_small)  # same labels
    net["temperature"] = -1
    _rewrite(path, "network.json", json.dumps(net).encode())
    with pytest.raises(BundleIntegrityError, match="temperature"):
        load_bundle(path, root)


def test_text_bundle_round_trip(tmp_path, text_model, ucla):
    path = save_bundle(text_model, tmp_path / "t" / "v1")
    m = load_bundle(path, tmp_path)
    df = ucla.head(600)
    assert np.array_equal(m.predict_proba(df), text_model.predict_proba(df))


def test_tampered_file_refused(saved):
    root, path = saved
    data = bytearray((path / "network.npz").read_bytes())
    data[-100] ^= 0xFF
    (path / "network.npz").write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="'network.npz'.*does not match its SHA-256"):
        load_bundle(path, root)


def test_missing_file_refused(saved):
    root, path = saved
    (path / "profile.json").unlink()
    with pytest.raises(BundleIntegrityError, match="'profile.json' is missing"):
        load_bundle(path, root)


def test_incompatible_versions_refused(saved):
    root, path = saved
    mpath = path / "manifest.json"
    manifest = json.loads(mpath.read_text())
    mpath.write_text(json.dumps({**manifest, "format_version": "2.0"}))
    with pytest.raises(IncompatibleBundleError) as ei:
        load_bundle(path, root)
    assert "has format version 2.0, but this engine reads format 1.0–1.1" in str(ei.value)
    libs = {**manifest["libraries"], "scikit-learn": "0.24.2"}
    mpath.write_text(json.dumps({**manifest, "libraries": libs}))
    with pytest.raises(IncompatibleBundleError, match="made with scikit-learn 0.24.2"):
        load_bundle(path, root)


def test_untrusted_location_refused(saved, tmp_path):
    root, path = saved
    with pytest.raises(UntrustedBundleError, match="not inside the trusted root"):
        load_bundle(path, path)  # the root itself is not a bundle inside it
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(UntrustedBundleError):
        load_bundle(path, other)
    link = other / "link"
    link.symlink_to(path)
    with pytest.raises(UntrustedBundleError):
        load_bundle(link, other)  # a symlink out of the root is resolved first
    with pytest.raises(BundleError, match="already exists"):
        save_bundle(load_bundle(path, root), path)


def test_fast_records_path_equals_pipeline(saved, adult_small):
    root, path = saved
    m = load_bundle(path, root)
    frame = adult_small.head(40)
    recs = frame.to_dict("records")
    recs[3]["workclass"] = "Never-seen-category"
    recs[4]["age"] = None
    recs[5]["occupation"] = float("nan")
    recs[6]["hours_per_week"] = "45"
    fast = m.predict_records(recs)
    import pandas as pd

    slow = m.predict_frame(pd.DataFrame(recs))
    assert np.abs(fast.probabilities - slow.probabilities).max() < 1e-6
    assert fast.labels == slow.labels
    assert fast.ignored_columns == ["income"]
    assert len(recs) <= m.fast_path_max_rows
    many = m.predict_records(adult_small.to_dict("records"))  # > 64 rows: pandas path
    assert np.abs(many.probabilities[:40] - m.predict_proba(adult_small.head(40))).max() < 1e-6
    with pytest.raises(MissingColumnsError, match="'sex'"):
        m.predict_records([{k: v for k, v in recs[0].items() if k != "sex"}])


def test_fast_records_path_with_text(text_model, ucla):
    frame = ucla.head(30)
    fast = text_model.predict_records(frame.to_dict("records"))
    slow = text_model.predict_frame(frame)
    assert np.abs(fast.probabilities - slow.probabilities).max() < 1e-6
    assert "subject" in fast.ignored_columns and "rownames" in fast.ignored_columns
