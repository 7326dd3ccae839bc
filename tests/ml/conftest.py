"""Shared fixtures of the engine tests: real data (UCI Adult, UCLA courses)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
try:  # the package may not be installed in the environment running the tests
    import mlservice.ml  # noqa: F401
except ModuleNotFoundError:  # pragma: no cover
    sys.path.insert(0, str(ROOT / "src"))

import pandas as pd  # noqa: E402

from mlservice.ml import TrainingConfig, read_table  # noqa: E402

ADULT = ROOT / "datasets" / "adult" / "adult.data"
UCLA = ROOT / "datasets" / "ucla_courses" / "ucla_f18.csv"
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
    "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
    "hours_per_week", "native_country", "income",
]


@pytest.fixture(scope="session")
def adult() -> pd.DataFrame:
    return read_table(ADULT, format="csv", column_names=ADULT_COLUMNS)


@pytest.fixture(scope="session")
def adult_small(adult: pd.DataFrame) -> pd.DataFrame:
    return adult.sample(600, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="session")
def ucla() -> pd.DataFrame:
    return read_table(UCLA)


@pytest.fixture()
def small_config() -> TrainingConfig:
    """Small and quick: tests that are not about accuracy."""
    return TrainingConfig(hidden_layer_sizes=(32, 16), max_iter=15, n_iter_no_change=5)
