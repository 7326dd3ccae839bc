"""What a drift check says about the checked version's accuracy, and which drifted features
matter to it.

Accuracy on a window is estimated from the version's calibrated confidences (labels rarely come
back) and realised from feedback labels when enough came back; either is compared with the
version's holdout accuracy, and a fall of at least ``ML_RETRAINING_ACCURACY_DROP_THRESHOLD``
is a performance drop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlservice.ml import estimate_accuracy


def assess(
    *,
    confidences: Sequence[float] | None,
    realised: Mapping[str, Any] | None,
    metrics: Mapping[str, Any],
    threshold: float,
    min_rows: int,
) -> dict[str, Any]:
    """The report's accuracy fields for the rows ``version`` predicted in the window.

    ``confidences`` are those rows' logged (or, for a dataset, predicted) top-class
    confidences; ``realised`` is ``{"labelled_rows", "accuracy"}`` of their feedback. Realised
    accuracy is the performance value once ``min_rows`` rows are labelled, else the estimate.
    A value resting on fewer than ``min_rows`` rows is reported but never called a drop: a
    handful of rows cannot justify an alert or a retrain (the same rule as the drift verdict's
    ``not_enough_data``)."""
    estimate = estimate_accuracy(confidences if confidences is not None else [],
                                 calibration_error=metrics.get("ece") or 0.0)
    reference = metrics.get("accuracy")
    if realised is not None and realised["labelled_rows"] >= min_rows:
        value, source, rows = realised["accuracy"], "realised", realised["labelled_rows"]
    elif estimate is not None:
        value, source, rows = estimate["estimate"], "estimated", estimate["n"]
    else:
        value, source, rows = None, None, 0
    change = value - reference if value is not None and reference is not None else None
    return {
        "estimated_accuracy": estimate["estimate"] if estimate else None,
        "estimated_accuracy_interval": [estimate["low"], estimate["high"]] if estimate else None,
        "holdout_accuracy": reference,
        "performance": {
            "reference": reference, "value": value, "source": source, "sample_size": rows,
            "change": change, "threshold": threshold,
            "dropped": change is not None and rows >= min_rows and change <= threshold,
        },
    }


def rank_features(features: list[dict[str, Any]], importance: Mapping[str, float] | None) -> list[str]:
    """Sort ``features`` in place, drifted first, by how much their drift can matter to the
    model: impact = permutation importance × PSI (a feature the model ignores can drift a lot
    and change nothing). Negative importances (permutation noise) count as 0. Without
    importances (versions trained before they were measured) the order is by PSI, as before.
    Returns the drifted features' names in that order."""
    for feature in features:
        weight = importance.get(feature["name"]) if importance else None
        feature["impact"] = max(float(weight), 0.0) * (feature["psi"] or 0.0) if weight is not None else None
    features.sort(key=lambda f: (not f["drifted"], -(f["impact"] if f["impact"] is not None else -1.0),
                                 -(f["psi"] or 0.0), f["name"]))
    return [f["name"] for f in features if f["drifted"]]
