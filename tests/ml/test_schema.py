from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlservice.ml import ConfigError, DataError, infer_schema

RU_WORDS = ["молоко", "хлеб", "сыр", "масло", "кефир", "творог", "йогурт", "сок", "вода", "чай"]
EN_WORDS = ["milk", "bread", "cheese", "butter", "juice", "water", "tea", "coffee", "rice", "salt"]


def _table(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "code": [f"SKU{i:06d}" for i in rng.permutation(n)],
            "const": ["x"] * n,
            "empty": [None] * n,
            "price": rng.normal(100, 10, n),
            "qty": rng.integers(0, 50, n),
            "flag": rng.integers(0, 2, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "ok": rng.choice([True, False], n),
            "name_ru": [" ".join(rng.choice(RU_WORDS, 3)) + f" {i % 37} шт" for i in range(n)],
            "name_en": [" ".join(rng.choice(EN_WORDS, 3)) + f" pack {i % 41}" for i in range(n)],
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
            "label": rng.choice(["a", "b"], n),
        }
    )


def test_inference_kinds_and_reasons():
    s = infer_schema(_table(), "label")
    kinds = {c.name: (c.kind, c.reason) for c in s.columns}
    assert "label" not in kinds
    assert kinds["id"] == ("ignored", "id-like: a distinct integer in every row")
    assert kinds["code"] == ("ignored", "id-like: a distinct code in every row")
    assert kinds["const"] == ("ignored", "constant value 'x'")
    assert kinds["empty"] == ("ignored", "all values missing")
    assert kinds["when"] == ("ignored", "date/time values are not used")
    assert kinds["price"][0] == kinds["qty"][0] == "numeric"
    assert kinds["flag"] == ("categorical", "integer with two values (flag)")
    assert kinds["color"] == ("categorical", "3 distinct values")
    assert kinds["ok"] == ("categorical", "boolean")
    assert kinds["name_ru"][0] == "text" and kinds["name_ru"][1].startswith("free text")
    assert kinds["name_en"][0] == "text"
    assert s.features == ["price", "qty", "flag", "color", "ok", "name_ru", "name_en"]
    assert s["empty"].missing_share == 1.0


def test_overrides_and_feature_selection():
    df = _table()
    s = infer_schema(df, "label", column_types={"qty": "categorical", "name_en": "ignored"})
    assert s["qty"].kind == "categorical" and s["qty"].reason == "set by the user"
    assert s["qty"].overridden
    assert s["name_en"].kind == "ignored"
    s = infer_schema(df, "label", features=["price", "color"])
    assert s.features == ["price", "color"]
    assert s["qty"].reason == "not selected"
    with pytest.raises(ConfigError, match="unknown column type 'number'"):
        infer_schema(df, "label", column_types={"qty": "number"})
    with pytest.raises(DataError, match="unknown column\\(s\\): 'nope'"):
        infer_schema(df, "label", features=["nope"])
    with pytest.raises(DataError, match="column 'color' cannot be numeric: it holds"):
        infer_schema(df, "label", column_types={"color": "numeric"})


def test_schema_round_trip():
    s = infer_schema(_table(), "label")
    s2 = type(s).from_dict(s.to_dict())
    assert s2.to_dict() == s.to_dict()
    assert s2.text == ["name_ru", "name_en"]


def test_ucla_titles_are_text(ucla):
    s = infer_schema(ucla, "subject")
    assert s["course"].kind == "text"
    assert s["rownames"].kind == "ignored"
    assert s["term"].reason == "constant value 'Fall'"
