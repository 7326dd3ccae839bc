"""Finite numbers too large for the float32 feature matrix are refused by name, never turned
into inf (which scikit-learn rejects with an unreadable error, or worse, a model would use)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlservice.ml import DataError, FeatureConfig, FeaturePipeline, infer_schema


def _fit(df: pd.DataFrame, target: str) -> FeaturePipeline:
    return FeaturePipeline(infer_schema(df, target), FeatureConfig()).fit(df)


@pytest.fixture(scope="module")
def pipe(adult_small: pd.DataFrame) -> FeaturePipeline:
    return _fit(adult_small, "income")


@pytest.fixture(scope="module")
def row(adult_small: pd.DataFrame) -> dict:
    first = adult_small.drop(columns="income").iloc[0].to_dict()
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in first.items()}


@pytest.mark.parametrize("value", [1e300, -1e300, 1e39, -3.5e38, 10**39])
def test_out_of_float32_range_is_refused_naming_the_column(pipe, row, adult_small, value) -> None:
    records = [row, {**row, "age": value}]
    with pytest.raises(DataError) as one:
        pipe.transform_records(records)
    assert one.value.code == "invalid_value"
    assert one.value.details == {"column": "age", "row": 2}
    assert "column 'age'" in str(one.value) and "(row 2)" in str(one.value)
    assert "out of range for a 32-bit float" in str(one.value) and "3.4e38" in str(one.value)
    frame = adult_small.head(5).copy()
    frame["age"] = frame["age"].astype(float)
    frame.loc[3, "age"] = float(value)
    with pytest.raises(DataError) as batch:
        pipe.transform(frame)
    assert batch.value.code == "invalid_value"
    assert batch.value.details == {"column": "age", "row": 4}
    assert str(batch.value) == str(one.value).replace("(row 2)", "(row 4)")


def test_text_cells_and_chunks_name_the_row_of_the_whole_input(pipe, adult_small) -> None:
    frame = adult_small.head(40).astype({"age": object})
    frame.loc[33, "age"] = " 1e300 "  # a CSV read as text: parsed like any number
    chunk = frame.iloc[30:40]  # a batch chunk keeps the labels of the whole input
    with pytest.raises(DataError, match=r"column 'age' has 1e\+300 \(row 34\): out of range"):
        pipe.transform(chunk)


def test_large_values_within_range_keep_working(pipe, row, adult_small) -> None:
    records = [
        {**row, "age": 1e30},
        {**row, "age": -3.4e38},
        {**row, "age": None},
        {**row, "age": float("inf")},
    ]
    X = pipe.transform_records(records)
    assert np.isfinite(X).all()
    frame = pd.DataFrame(records)
    assert np.array_equal(pipe.transform(frame), X)


def test_a_value_in_range_that_scaling_would_overflow_is_refused() -> None:
    # a column spread over thousandths: 1e38 is a float32, but 1e38 / 0.0029 is not
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(0, 0.003, 200), "y": rng.choice(["a", "b"], 200)})
    pipe = _fit(df, "y")
    for records in ([{"x": 1e38}], [{"x": -1e38}]):
        with pytest.raises(
            DataError,
            match=r"column 'x' has -?1e\+38 \(row 1\): out of range for this model, "
            r"which divides the column by 0\.00\d+",
        ) as ei:
            pipe.transform_records(records)
        assert ei.value.code == "invalid_value"
        with pytest.raises(DataError, match="which divides the column"):
            pipe.transform(pd.DataFrame(records))
    assert np.isfinite(pipe.transform_records([{"x": 1e33}])).all()  # 1e33 / 0.003 fits


def test_training_data_out_of_range_is_refused_before_any_statistics() -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(0, 1, 100), "y": rng.choice(["a", "b"], 100)})
    df.loc[7, "x"] = 1e200
    with pytest.raises(
        DataError, match=r"column 'x' has 1e\+200 \(row 8\): out of range for a 32-bit float"
    ) as ei:
        _fit(df, "y")
    assert ei.value.code == "invalid_value"
