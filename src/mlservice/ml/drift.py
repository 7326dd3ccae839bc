"""Drift statistics against a baseline profile (DESIGN.md §4).

* PSI = Σ (cur − ref) · ln(cur / ref) over the profile's bins, with zero
  shares replaced by 1e-4 (no renormalisation);
* Jensen–Shannon distance with base-2 logs, equal to
  ``scipy.spatial.distance.jensenshannon(ref, cur, base=2)`` (0 … 1);
* a feature (or the prediction output) drifts when PSI ≥ ``psi_threshold``
  (0.1) or JS ≥ ``js_threshold`` (0.2); severity is "major" when PSI ≥
  ``major_psi`` (0.25), "moderate" for other drift, else "none";
* text features: PSI/JS on the length bins; the out-of-vocabulary rate is
  compared as a two-bin (in vocabulary, out) distribution, and the larger
  PSI/JS of the two decides;
* fewer than ``min_sample_size`` rows → verdict "not_enough_data" (statistics
  still reported, nothing flagged); else "drift" when any feature or the
  prediction output drifts, else "no_drift".

:func:`check_drift` reads only the profile and the new data. It is
vectorised (``np.searchsorted`` + ``np.bincount`` for numbers, ``pd.factorize``
with a code → bin lookup table for categories).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .features import _numeric_array
from .profile import categorical_bins, class_bins, confidence_bins, numeric_bins, text_bins
from .schema import CATEGORICAL, NUMERIC, TEXT

__all__ = ["DriftConfig", "check_drift", "psi", "js_distance", "severity"]

EPS = 1e-4


@dataclass(frozen=True)
class DriftConfig:
    psi_threshold: float = 0.1
    js_threshold: float = 0.2
    major_psi: float = 0.25
    min_sample_size: int = 100

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def psi(ref: Sequence[float], cur: Sequence[float]) -> float:
    """Population stability index; zero shares replaced by 1e-4."""
    r = np.asarray(ref, dtype=np.float64)
    c = np.asarray(cur, dtype=np.float64)
    r = np.where(r == 0, EPS, r)
    c = np.where(c == 0, EPS, c)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(ref: Sequence[float], cur: Sequence[float]) -> float | None:
    """Jensen–Shannon distance, base 2 (as scipy's ``jensenshannon(p, q, base=2)``)."""
    p = np.asarray(ref, dtype=np.float64)
    q = np.asarray(cur, dtype=np.float64)
    sp_, sq = p.sum(), q.sum()
    if sp_ <= 0 or sq <= 0:
        return None
    p, q = p / sp_, q / sq
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    js = (left.sum() + right.sum()) / 2.0
    return float(math.sqrt(max(js, 0.0) / math.log(2.0)))


def severity(psi_value: float, js_value: float | None, config: DriftConfig) -> str:
    drifted = psi_value >= config.psi_threshold or (
        js_value is not None and js_value >= config.js_threshold
    )
    if not drifted:
        return "none"
    return "major" if psi_value >= config.major_psi else "moderate"


def _entry(
    name: str,
    kind: str,
    ref: Sequence[float],
    counts: np.ndarray,
    n: int,
    labels: Sequence[str],
    config: DriftConfig,
    enough: bool,
    missing: bool = True,
) -> dict[str, Any]:
    cur = [float(c) / n if n else 0.0 for c in counts]
    p = psi(ref, cur) if n else 0.0
    j = js_distance(ref, cur) if n else None
    sev = severity(p, j, config) if enough else "none"
    out = {
        "name": name,
        "type": kind,
        "psi": p,
        "js": j,
        "severity": sev,
        "drifted": sev != "none",
        "bin_labels": list(labels),
        "reference_shares": list(ref),
        "current_shares": cur,
        "sample_size": n,
    }
    if missing:
        out["missing_share_ref"] = ref[-1]
        out["missing_share_cur"] = cur[-1] if cur else 0.0
    return out


def check_drift(
    profile: Mapping[str, Any],
    frame: pd.DataFrame,
    *,
    predicted_classes: Sequence[Any] | None = None,
    confidences: Sequence[float] | None = None,
    config: DriftConfig = DriftConfig(),
) -> dict[str, Any]:
    """Compare ``frame`` (and optionally the model's predicted classes and
    confidences on it) with a baseline ``profile``.

    Returns a JSON-serialisable dict: ``verdict`` ("no_drift" | "drift" |
    "not_enough_data"), ``sample_size``, ``features`` (one dict per profiled
    feature: name, type, psi, js, severity, drifted, bin_labels,
    reference_shares, current_shares, sample_size, missing_share_ref/cur;
    text adds oov_rate_ref/cur, oov_psi, oov_js), ``prediction`` (None, or
    {"classes": entry, "confidence": entry, "drifted"}), ``n_features``,
    ``n_drifted``, ``drifted_share``, ``drifted_features`` and the thresholds
    used. A profiled column absent from ``frame`` counts as all missing.
    """
    n = len(frame)
    enough = n >= config.min_sample_size
    features = []
    for name, fp in profile["features"].items():
        kind = fp["type"]
        present = name in frame.columns
        if kind == NUMERIC:
            if present:
                counts = numeric_bins(_numeric_array(frame[name], name), fp["edges"])
            else:
                counts = np.zeros(len(fp["shares"]), np.int64)
                counts[-1] = n
            e = _entry(name, kind, fp["shares"], counts, n, fp["labels"], config, enough)
        elif kind == CATEGORICAL:
            if present:
                counts = categorical_bins(frame[name], fp["categories"])
            else:
                counts = np.zeros(len(fp["shares"]), np.int64)
                counts[-1] = n
            e = _entry(name, kind, fp["shares"], counts, n, fp["labels"], config, enough)
        elif kind == TEXT:
            if present:
                counts, oov, total = text_bins(frame[name], fp["edges"], fp["vocabulary"])
            else:
                counts = np.zeros(len(fp["shares"]), np.int64)
                counts[-1] = n
                oov = total = 0
            e = _entry(name, kind, fp["shares"], counts, n, fp["labels"], config, enough)
            ref_oov = float(fp["oov_rate"])
            cur_oov = oov / total if total else 0.0
            o_ref, o_cur = [1 - ref_oov, ref_oov], [1 - cur_oov, cur_oov]
            o_psi = psi(o_ref, o_cur) if total else 0.0
            o_js = js_distance(o_ref, o_cur) if total else None
            e.update(oov_rate_ref=ref_oov, oov_rate_cur=cur_oov, oov_psi=o_psi, oov_js=o_js)
            if enough:
                worst_psi = max(e["psi"], o_psi)
                worst_js = max(x for x in (e["js"], o_js, 0.0) if x is not None)
                e["severity"] = severity(worst_psi, worst_js, config)
                e["drifted"] = e["severity"] != "none"
        else:  # pragma: no cover - unknown types in a newer profile
            continue
        e["column_present"] = present
        features.append(e)

    prediction = None
    pp = profile.get("prediction")
    if pp and (predicted_classes is not None or confidences is not None):
        prediction = {"drifted": False}
        if predicted_classes is not None:
            m = len(predicted_classes)
            counts = class_bins(predicted_classes, pp["classes"])
            prediction["classes"] = _entry(
                "predicted_class", "prediction", pp["class_shares"], counts, m,
                [str(c) for c in pp["classes"]], config, m >= config.min_sample_size,
                missing=False,
            )
            prediction["drifted"] |= prediction["classes"]["drifted"]
        if confidences is not None:
            m = len(confidences)
            counts = confidence_bins(confidences, pp["confidence_edges"])
            prediction["confidence"] = _entry(
                "confidence", "prediction", pp["confidence_shares"], counts, m,
                pp["confidence_labels"], config, m >= config.min_sample_size, missing=False,
            )
            prediction["drifted"] |= prediction["confidence"]["drifted"]

    drifted = [f["name"] for f in features if f["drifted"]]
    share = len(drifted) / len(features) if features else 0.0
    if not enough:
        verdict = "not_enough_data"
    elif drifted or (prediction is not None and prediction["drifted"]):
        verdict = "drift"
    else:
        verdict = "no_drift"
    return {
        "verdict": verdict,
        "sample_size": n,
        "reference_size": profile.get("n_rows"),
        "n_features": len(features),
        "n_drifted": len(drifted),
        "drifted_share": share,
        "drifted_features": drifted,
        "features": features,
        "prediction": prediction,
        "config": config.to_dict(),
    }
