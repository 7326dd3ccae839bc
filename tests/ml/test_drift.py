from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from mlservice.ml import DriftConfig, build_profile, check_drift, infer_schema, js_distance, psi
from mlservice.ml.features import category_key


@pytest.fixture(scope="module")
def adult_profile(adult):
    schema = infer_schema(adult, "income")
    profile = build_profile(adult, schema)
    return json.loads(json.dumps(profile))  # JSON-serialisable, and only that is used


def _independent_shares(profile_feature, values: pd.Series) -> np.ndarray:
    """Shares recomputed without the engine: np.digitize + Counter."""
    n = len(values)
    if profile_feature["type"] == "numeric":
        x = values.to_numpy(dtype=float)
        edges = np.array(profile_feature["edges"])
        miss = np.isnan(x)
        b = np.digitize(x[~miss], edges, right=True)  # right-closed bins
        counts = np.array([(b == i).sum() for i in range(len(edges) + 1)] + [miss.sum()])
    else:
        cats = profile_feature["categories"]
        c = Counter(category_key(v) if not pd.isna(v) else "__missing__" for v in values)
        counts = np.array(
            [c.get(k, 0) for k in cats]
            + [sum(v for k, v in c.items() if k not in cats and k != "__missing__")]
            + [c.get("__missing__", 0)]
        )
    return counts / n


def _psi_reference(ref, cur):
    total = 0.0
    for r, c in zip(ref, cur):
        r = r if r != 0 else 1e-4
        c = c if c != 0 else 1e-4
        total += (c - r) * np.log(c / r)
    return total


def test_profile_structure(adult_profile):
    age = adult_profile["features"]["age"]
    assert age["type"] == "numeric" and len(age["edges"]) <= 9
    assert age["labels"][0].startswith("(-inf, ") and age["labels"][-2].endswith("+inf)")
    assert age["labels"][-1] == "missing" and len(age["shares"]) == len(age["edges"]) + 2
    assert sum(age["shares"]) == pytest.approx(1.0)
    wc = adult_profile["features"]["workclass"]
    assert wc["labels"][-2:] == ["__other__", "__missing__"]
    assert wc["missing_share"] == pytest.approx(1836 / 32561)
    assert "income" not in adult_profile["features"]


def test_statistics_match_independent_computation(adult, adult_profile):
    rng = np.random.default_rng(0)
    cur = adult.sample(3000, random_state=3).reset_index(drop=True)
    cur["age"] = cur["age"] + rng.integers(-5, 10, len(cur))
    cur.loc[cur.index[:200], "hours_per_week"] = np.nan
    rep = check_drift(adult_profile, cur)
    assert rep["sample_size"] == 3000
    for f in rep["features"]:
        fp = adult_profile["features"][f["name"]]
        ref = np.array(fp["shares"])
        expected = _independent_shares(fp, cur[f["name"]])
        assert np.allclose(f["current_shares"], expected, atol=1e-12, rtol=0)
        assert f["psi"] == pytest.approx(_psi_reference(ref, expected), abs=1e-9)
        assert f["js"] == pytest.approx(jensenshannon(ref, expected, base=2), abs=1e-9)
    hpw = next(f for f in rep["features"] if f["name"] == "hours_per_week")
    assert hpw["missing_share_cur"] == pytest.approx(200 / 3000)
    assert hpw["missing_share_ref"] == 0.0


def test_psi_js_functions():
    p, q = [0.5, 0.5, 0.0], [0.25, 0.25, 0.5]
    assert psi(p, q) == pytest.approx(_psi_reference(p, q), abs=1e-12)
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert psi(p, p) == 0.0 and js_distance(p, p) == 0.0
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)


def test_sample_from_training_data_does_not_drift(adult, adult_profile):
    rep = check_drift(adult_profile, adult.sample(5000, random_state=7))
    assert rep["verdict"] == "no_drift" and rep["drifted_features"] == []
    assert max(f["psi"] for f in rep["features"]) < 0.02
    assert max(f["js"] for f in rep["features"]) < 0.06


def test_shifted_sample_flags_exactly_the_moved_features(adult, adult_profile):
    cur = adult.sample(5000, random_state=7).reset_index(drop=True)
    cur["age"] = cur["age"] + 15
    private = cur.index[cur["workclass"] == "Private"]
    cur.loc[private[: len(private) // 2], "workclass"] = "Self-emp-inc"
    rep = check_drift(adult_profile, cur)
    assert rep["verdict"] == "drift"
    assert sorted(rep["drifted_features"]) == ["age", "workclass"]
    assert rep["drifted_share"] == pytest.approx(2 / 14)
    by = {f["name"]: f for f in rep["features"]}
    assert by["age"]["severity"] == "major" and by["workclass"]["severity"] == "major"
    assert by["education"]["severity"] == "none"


def test_not_enough_data_and_missing_column(adult, adult_profile):
    small = adult.head(50).assign(age=adult["age"].head(50) + 40)
    rep = check_drift(adult_profile, small)
    assert rep["verdict"] == "not_enough_data" and rep["n_drifted"] == 0
    assert next(f for f in rep["features"] if f["name"] == "age")["psi"] > 1
    rep = check_drift(adult_profile, adult.head(500).drop(columns=["race"]),
                      config=DriftConfig(min_sample_size=100))
    race = next(f for f in rep["features"] if f["name"] == "race")
    assert race["column_present"] is False and race["missing_share_cur"] == 1.0
    assert race["drifted"] and rep["verdict"] == "drift"


def test_text_profile_length_and_oov(ucla):
    schema = infer_schema(ucla, "subject", features=["course"])
    profile = json.loads(json.dumps(build_profile(ucla, schema)))
    tp = profile["features"]["course"]
    assert tp["type"] == "text" and tp["oov_rate"] == 0.0  # vocabulary covers training words
    same = check_drift(profile, ucla.sample(800, random_state=0))
    assert same["verdict"] == "no_drift"
    ru = pd.DataFrame({"course": ["Совершенно новые русские названия курсов"] * 300})
    rep = check_drift(profile, ru)
    f = rep["features"][0]
    assert f["oov_rate_cur"] == 1.0 and f["drifted"] and rep["verdict"] == "drift"


def test_prediction_drift():
    from mlservice.ml.profile import profile_predictions

    prof = {"features": {}, "n_rows": 1000,
            "prediction": profile_predictions(["a"] * 700 + ["b"] * 300,
                                              [0.95] * 500 + [0.55] * 500, ["a", "b"])}
    rep = check_drift(prof, pd.DataFrame(index=range(1000)),
                      predicted_classes=["a"] * 300 + ["b"] * 700, confidences=[0.55] * 1000)
    assert rep["prediction"]["classes"]["severity"] == "major"
    assert rep["prediction"]["confidence"]["drifted"]
    assert rep["verdict"] == "drift"
