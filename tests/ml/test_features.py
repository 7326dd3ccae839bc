from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlservice.ml import (
    DataError,
    FeatureConfig,
    FeaturePipeline,
    MissingColumnsError,
    infer_schema,
)
from mlservice.ml.features import OTHER


def _fit(df: pd.DataFrame, target: str, **cfg) -> FeaturePipeline:
    s = infer_schema(df, target)
    return FeaturePipeline(s, FeatureConfig(**cfg)).fit(df)


def test_numeric_impute_scale_and_onehot(adult_small):
    fp = _fit(adult_small, "income")
    X = fp.transform(adult_small)
    assert isinstance(X, np.ndarray) and X.dtype == np.float32
    age = X[:, fp.numeric_columns_.index("age")]
    assert abs(age.mean()) < 1e-5 and abs(age.std() - 1) < 1e-4
    start = len(fp.numeric_columns_)
    onehot = X[:, start:]
    # every categorical column contributes exactly one 1 per row (adult has no unknowns here)
    assert np.allclose(onehot.sum(axis=1), len(fp.categorical_columns_))


def test_rare_categories_grouped_and_unknown_safe():
    df = pd.DataFrame({
        "c": ["a"] * 10 + ["b"] * 10 + ["rare1", "rare2"],
        "x": np.arange(22.0),
        "y": ["p", "q"] * 11,
    })
    fp = _fit(df, "y", categorical_min_frequency=5)
    assert fp.categories_["c"] == ["a", "b", OTHER]
    new = pd.DataFrame({"c": ["a", "never-seen", None, "rare1"], "x": [1.0, None, 3.0, 4.0]})
    X = fp.transform(new)
    cols = {n: i for i, n in enumerate(fp.feature_names_out_)}
    assert X[0, cols["c=a"]] == 1
    assert X[1, cols[f"c={OTHER}"]] == 1  # unknown → other
    assert X[2, cols[f"c={OTHER}"]] == 1  # missing never seen → other
    assert X[3, cols[f"c={OTHER}"]] == 1
    # missing numeric → median, scaled
    assert X[1, cols["x"]] == pytest.approx((10.5 - 10.5) / np.arange(22.0).std(), abs=1e-6)
    assert np.array_equal(fp.transform_records(new.to_dict("records")), X)


def test_unknown_category_without_other_is_all_zero():
    df = pd.DataFrame({"c": ["a", "b"] * 10, "x": np.arange(20.0), "y": ["p", "q"] * 10})
    fp = _fit(df, "y")
    assert OTHER not in fp.categories_["c"]
    X = fp.transform(pd.DataFrame({"c": ["zzz"], "x": [1.0]}))
    assert X[0, 1:].sum() == 0


def test_missing_columns_named_and_extra_reported(adult_small):
    fp = _fit(adult_small, "income")
    bad = adult_small.drop(columns=["age", "workclass"])
    with pytest.raises(MissingColumnsError) as ei:
        fp.transform(bad)
    assert str(ei.value) == "missing required column(s): 'age', 'workclass'"
    assert ei.value.code == "missing_columns" and ei.value.missing == ["age", "workclass"]
    with pytest.raises(MissingColumnsError, match="'age'"):
        fp.transform_records([{k: v for k, v in adult_small.iloc[0].items() if k != "age"}])
    _, extra = fp.check_columns([*adult_small.columns, "comment"])
    assert extra == ["income", "comment"]


def test_non_numeric_value_in_numeric_column(adult_small):
    fp = _fit(adult_small, "income")
    bad = adult_small.head(3).copy()
    bad["age"] = bad["age"].astype(object)
    bad.loc[1, "age"] = "forty"
    with pytest.raises(DataError, match="column 'age' is numeric but got 'forty'"):
        fp.transform(bad)
    rec = adult_small.iloc[0].to_dict() | {"age": "forty"}
    with pytest.raises(DataError, match="column 'age' is numeric but got 'forty'"):
        fp.transform_records([rec])


def test_text_tfidf_records_equal_frame_russian():
    names = ["Молоко 3,2% 1 л", "Молоко топлёное 4%", "Хлеб ржаной", "Хлеб белый нарезной",
             "Сыр российский", "Сыр плавленый", "Apple juice", "Orange juice 1L"] * 5
    df = pd.DataFrame({"name": names, "y": ["a", "a", "b", "b", "c", "c", "d", "d"] * 5})
    fp = _fit(df, "y")
    assert fp.text_columns_ == ["name"]
    X = fp.transform(df)
    assert sp.issparse(X) and X.dtype == np.float32
    vocab = fp.text_blocks_["name"][0].vocabulary
    assert "молоко" in vocab and "хлеб ржаной" in vocab
    recs = [{"name": "Молоко топлёное"}, {"name": None}, {"name": "совсем новое слово"}]
    a = fp.transform_records(recs)
    b = fp.transform(pd.DataFrame(recs)).toarray()
    assert np.abs(a - b).max() < 1e-6
    assert a[1].sum() == 0


def test_large_vocabulary_switches_to_hashing():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(3000)]
    df = pd.DataFrame({
        "t": [" ".join(rng.choice(words, 6)) for _ in range(400)],
        "y": rng.choice(["a", "b"], 400),
    })
    fp = _fit(df, "y", text_max_vocabulary=1000, text_hash_features=512)
    assert fp.text_modes_["t"] == ["hashing", "hashing"]
    X = fp.transform(df)
    assert X.shape[1] == 1024
    a = fp.transform_records(df.head(4).to_dict("records"))
    assert np.abs(a - X[:4].toarray()).max() < 1e-6


def test_state_round_trip(ucla):
    df = ucla.head(300)
    s = infer_schema(df, "subject", features=["course", "seminar", "course_numeric"])
    fp = FeaturePipeline(s).fit(df)
    meta, arrays = fp.to_state()
    fp2 = FeaturePipeline.from_state(meta, arrays, s)
    assert (fp2.transform(df) != fp.transform(df)).nnz == 0
