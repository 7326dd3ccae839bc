"""ML Service engine: a standalone library (no FastAPI / SQLAlchemy / settings).

Reading data
    read_table(source, *, format=None, filename=None, encoding=None, delimiter=None,
               column_names=None, na_values=NA_TOKENS, limits=ReadLimits()) -> DataFrame
    read_records(records, *, limits=ReadLimits()) -> DataFrame
    validate_target(frame, target, *, min_class_rows=1) -> Series
    ReadLimits(max_rows, max_columns, max_bytes)
Schema
    infer_schema(frame, target=None, *, column_types=None, features=None) -> Schema
    Schema, ColumnInfo, SchemaConfig
Features and model (scikit-learn conventions)
    FeaturePipeline(schema, config=FeatureConfig()) .fit/.transform/.transform_records
    AdaptiveMLPClassifier(hidden_layer_sizes=(512, 256, 128), ..., device="auto")
        .fit(X, y, *, on_epoch=None, should_stop=None) / .predict / .predict_proba
    EpochInfo, choose_hidden_layers
Training, evaluation, bundles
    train(frame, target, config=None, *, column_types=None, features=None, holdout=None,
          on_stage=None, on_epoch=None, should_stop=None, random_state=0) -> TrainedModel
    TrainedModel .predict_records(records) / .predict_frame(frame) -> Prediction
                 (probabilities temperature-scaled by .temperature, fitted on the holdout),
                 .check_drift(frame) / .evaluate(frame);
                 .metrics gains "temperature", "ece" (cross-fitted), "ece_uncalibrated",
                 "feature_importance" {feature: accuracy drop when permuted}
    TrainingConfig, Prediction, STAGES
    evaluate_bundle(model, labelled_frame, target) -> metrics dict
    compute_metrics(y_true, proba, classes), split_holdout(frame, target, fraction)
    permutation_importance(features, estimator, frame, y_idx, *, max_rows=2000, repeats=2)
    save_bundle(trained, directory) -> Path;  load_bundle(directory, trusted_root) -> TrainedModel
Calibration and accuracy without labels
    estimate_accuracy(confidences, *, calibration_error=0.0, z=1.96)
        -> {"estimate", "low", "high", "n"} | None
    expected_calibration_error(confidences, correct, bins=15) -> float | None
    (mlservice.ml.calibration: fit_temperature, apply_temperature, cross_fitted_ece)
Profile and drift
    build_profile(frame, schema, config=ProfileConfig()) -> dict (JSON)
    check_drift(profile, frame, *, predicted_classes=None, confidences=None,
                config=DriftConfig()) -> dict (JSON)
    psi(ref, cur), js_distance(ref, cur), DriftConfig, ProfileConfig
GPU
    gpu_info() -> dict  (for /health; never raises)
Errors (mlservice.ml.errors)
    MLError > DataError(ValueError) > LimitExceeded, MissingColumnsError;
    ConfigError, BackendUnavailable, TrainingCancelled,
    BundleError > UntrustedBundleError, BundleIntegrityError, IncompatibleBundleError
"""

from .bundle import FORMAT_VERSION, load_bundle, save_bundle
from .calibration import estimate_accuracy, expected_calibration_error
from .drift import DriftConfig, check_drift, js_distance, psi
from .errors import (
    BackendUnavailable,
    BundleError,
    BundleIntegrityError,
    ConfigError,
    DataError,
    IncompatibleBundleError,
    LimitExceeded,
    MissingColumnsError,
    MLError,
    TrainingCancelled,
    UntrustedBundleError,
)
from .evaluation import compute_metrics, permutation_importance, split_holdout
from .features import FeatureConfig, FeaturePipeline
from .gpu import gpu_info
from .io import NA_TOKENS, ReadLimits, read_records, read_table, validate_target
from .model import AdaptiveMLPClassifier, EpochInfo, choose_hidden_layers
from .profile import ProfileConfig, build_profile
from .schema import ColumnInfo, Schema, SchemaConfig, infer_schema
from .training import STAGES, Prediction, TrainedModel, TrainingConfig, evaluate_bundle, train

__all__ = [
    "AdaptiveMLPClassifier", "BackendUnavailable", "BundleError", "BundleIntegrityError",
    "ColumnInfo", "ConfigError", "DataError", "DriftConfig", "EpochInfo", "FORMAT_VERSION",
    "FeatureConfig", "FeaturePipeline", "IncompatibleBundleError", "LimitExceeded",
    "MLError", "MissingColumnsError", "NA_TOKENS", "Prediction", "ProfileConfig",
    "ReadLimits", "STAGES", "Schema", "SchemaConfig", "TrainedModel", "TrainingCancelled",
    "TrainingConfig", "UntrustedBundleError", "build_profile", "check_drift",
    "choose_hidden_layers", "compute_metrics", "estimate_accuracy", "evaluate_bundle",
    "expected_calibration_error", "gpu_info", "infer_schema",
    "js_distance", "load_bundle", "permutation_importance", "psi", "read_records", "read_table",
    "save_bundle",
    "split_holdout", "train", "validate_target",
]
