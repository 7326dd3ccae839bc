"""scikit-learn's own contract checks for the estimators of ``mlservice.ml``.

The classifier takes any numeric matrix, so it meets ``check_estimator`` whole. The feature
pipeline needs a table typed by a schema, so the checks that fit it on random numbers cannot
apply: it gets the checks that do (construction, parameters, cloning, unfitted use) and the same
promises checked on a real table (fit returns self, leaves its parameters alone, is idempotent,
survives pickling).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks as checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from mlservice.ml import FeatureConfig, FeaturePipeline, infer_schema
from mlservice.ml.model import AdaptiveMLPClassifier

# Small and quick, yet accurate enough for check_classifiers_train (> 0.83 on its blobs).
SMALL = {"hidden_layer_sizes": (16,), "max_iter": 60, "learning_rate_init": 0.03, "random_state": 0, "device": "cpu"}


@parametrize_with_checks([AdaptiveMLPClassifier(backend="sklearn", **SMALL)])
def test_classifier_meets_check_estimator(estimator, check) -> None:
    check(estimator)


# The PyTorch backend shares the input validation and the numpy prediction; what is its own is
# how it fits, so these are the checks it gets.
TORCH_CHECKS = [checks.check_classifiers_train, checks.check_fit_idempotent, checks.check_estimators_pickle,
                checks.check_n_features_in_after_fitting]


@pytest.mark.parametrize("check", TORCH_CHECKS, ids=lambda check: check.__name__)
def test_torch_backend_meets_the_fitting_checks(check) -> None:
    pytest.importorskip("torch")
    check("AdaptiveMLPClassifier", AdaptiveMLPClassifier(backend="torch", **SMALL))


def test_classifier_round_trips_its_parameters() -> None:
    model = AdaptiveMLPClassifier(backend="sklearn", **SMALL)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    copy.set_params(max_iter=7, hidden_layer_sizes=(4, 2))
    assert copy.get_params()["max_iter"] == 7 and model.get_params()["max_iter"] == 60
    assert clone(copy).get_params() == copy.get_params()


PIPELINE_CHECKS = [
    checks.check_estimator_cloneable, checks.check_estimator_repr, checks.check_no_attributes_set_in_init,
    checks.check_get_params_invariance, checks.check_set_params, checks.check_parameters_default_constructible,
    checks.check_do_not_raise_errors_in_init_or_set_params, checks.check_mixin_order,
    checks.check_transformers_unfitted, checks.check_get_feature_names_out_error, checks.check_valid_tag_types,
]


@pytest.fixture(scope="module")
def table(adult_small):
    return adult_small.head(300)


@pytest.fixture(scope="module")
def pipeline(table) -> FeaturePipeline:
    return FeaturePipeline(infer_schema(table, "income"), FeatureConfig(categorical_min_frequency=2))


@pytest.mark.parametrize("check", PIPELINE_CHECKS, ids=lambda check: check.__name__)
def test_feature_pipeline_meets_the_checks_that_apply(check, pipeline: FeaturePipeline) -> None:
    check("FeaturePipeline", pipeline)


def test_feature_pipeline_clone_get_params_set_params(pipeline: FeaturePipeline, table) -> None:
    params = pipeline.get_params()
    assert set(params) == {"schema", "config"}
    copy = clone(pipeline)
    assert copy.get_params()["config"] == params["config"] and copy.schema.features == pipeline.schema.features
    other = FeatureConfig(categorical_min_frequency=50)
    assert copy.set_params(config=other) is copy and copy.config == other and pipeline.config != other
    fitted = clone(pipeline).fit(table)
    unfitted = clone(fitted)  # cloning keeps the parameters and drops what fit learned
    assert not hasattr(unfitted, "feature_names_out_")
    with pytest.raises(NotFittedError):
        unfitted.transform(table)
    with pytest.raises(NotFittedError):
        unfitted.transform_records(table.head(2).to_dict(orient="records"))


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def test_feature_pipeline_fit_keeps_params_is_idempotent_and_pickles(pipeline: FeaturePipeline, table) -> None:
    before = pipeline.get_params()
    estimator = clone(pipeline)
    assert estimator.fit(table) is estimator  # check_estimators_fit_returns_self
    assert estimator.get_params()["config"] == before["config"]  # check_dont_overwrite_parameters
    first = _dense(estimator.transform(table))
    again = _dense(estimator.fit(table).transform(table))  # check_fit_idempotent
    np.testing.assert_array_equal(first, again)
    assert first.shape == (len(table), len(estimator.get_feature_names_out()))
    assert estimator.n_features_in_ == len(estimator.feature_names_in_) == len(pipeline.schema.features)
    restored = pickle.loads(pickle.dumps(estimator))  # check_estimators_pickle
    np.testing.assert_array_equal(_dense(restored.transform(table)), first)
