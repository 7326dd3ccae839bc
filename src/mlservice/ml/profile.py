"""Baseline profile of the training data (DESIGN.md §4), saved with every model
version; drift checks read only this profile, never the training data.

The profile is a JSON-serialisable dict::

    {"version": 1, "n_rows": int, "n_bins": 10, "top_k": 20,
     "features": {name: feature_profile, ...},
     "prediction": prediction_profile | None}

* numeric: ``edges`` (≤ 9 distinct training quantiles at 10 %, …, 90 %) define
  right-closed bins ``(-inf, e1], (e1, e2], …, (e_k, +inf)``; ``shares`` has
  one entry per bin plus a last "missing" entry, all over every row;
* categorical: the ``top_k`` most frequent categories, then "other" and
  "missing" (``labels``/``shares``);
* text: the same bins over the character length of the value (plus
  "missing"), and ``vocabulary`` (the most frequent word tokens) with the
  ``oov_rate``: the share of word tokens outside that vocabulary;
* prediction: predicted-class shares (``classes``/``class_shares``) and
  confidence (top probability) bins on fixed ``confidence_edges``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .features import MISSING, OTHER, _numeric_array, category_key
from .schema import CATEGORICAL, NUMERIC, TEXT, Schema

__all__ = [
    "ProfileConfig",
    "build_profile",
    "profile_predictions",
    "numeric_bins",
    "categorical_bins",
    "text_bins",
    "confidence_bins",
    "class_bins",
    "tokenize",
]

PROFILE_VERSION = 1
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True)
class ProfileConfig:
    n_bins: int = 10
    top_k: int = 20
    text_vocabulary_size: int = 5000
    confidence_edges: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _edge_labels(edges: Sequence[float]) -> list[str]:
    bounds = ["-inf", *(_fmt(e) for e in edges), "+inf"]
    return [f"({bounds[i]}, {bounds[i + 1]}]" if i < len(edges) else f"({bounds[i]}, +inf)"
            for i in range(len(edges) + 1)] + ["missing"]


def _quantile_edges(x: np.ndarray, n_bins: int) -> list[float]:
    if len(x) == 0:
        return []
    qs = np.arange(1, n_bins) / n_bins
    return [float(e) for e in np.unique(np.quantile(x, qs))]


# --------------------------------------------------------------------------- binning
# Each *_bins function returns the counts per bin (the last bin is "missing")
# for one column of new data; the same functions build the profile and check drift.


def numeric_bins(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts per right-closed bin of ``edges`` plus a last "missing" count."""
    e = np.asarray(edges, dtype=np.float64)
    nb = len(e) + 1
    values = np.asarray(values, dtype=np.float64)
    if len(e) <= 32:
        # bin index = number of edges below the value (right-closed bins); a few
        # vectorised comparisons beat a binary search per value for ~9 edges
        b = np.zeros(len(values), dtype=np.uint8)
        gt = np.empty(len(values), dtype=bool)
        for edge in e:
            np.greater(values, edge, out=gt)
            b += gt
    else:
        b = np.searchsorted(e, values, side="left")
    miss = np.isnan(values)
    if miss.any():
        b[miss] = nb
    return np.bincount(b, minlength=nb + 1)[: nb + 1]


def categorical_bins(s: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Counts per top category, then "other", then "missing"."""
    k = len(categories)
    index = {c: i for i, c in enumerate(categories)}
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    lut = np.empty(len(uniques) + 1, dtype=np.int64)
    for i, u in enumerate(uniques):
        key = category_key(u)
        lut[i] = k + 1 if key == MISSING else index.get(key, k)
    lut[-1] = k + 1  # code -1: missing
    return np.bincount(lut[codes], minlength=k + 2)[: k + 2]


def _text_series(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    vals = s.tolist()
    miss = np.fromiter(
        (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) for v in vals),
        dtype=bool,
        count=len(vals),
    )
    docs = ["" if m else str(v) for v, m in zip(vals, miss)]
    return miss, docs


def text_bins(s: pd.Series, edges: Sequence[float], vocabulary: Sequence[str]
              ) -> tuple[np.ndarray, int, int]:
    """(length-bin counts incl. "missing", out-of-vocabulary tokens, tokens)."""
    miss, docs = _text_series(s)
    lengths = np.fromiter((len(d) for d in docs), dtype=np.float64, count=len(docs))
    lengths[miss] = np.nan
    vocab = set(vocabulary)
    oov = total = 0
    for d in docs:
        if d:
            toks = tokenize(d)
            total += len(toks)
            oov += sum(t not in vocab for t in toks)
    return numeric_bins(lengths, edges), oov, total


def class_bins(predicted: Sequence[Any], classes: Sequence[Any]) -> np.ndarray:
    """Counts per class (``classes`` order); unknown labels are not counted."""
    index = {str(c): i for i, c in enumerate(classes)}
    series = predicted if isinstance(predicted, pd.Series) else pd.Series(list(predicted), dtype=object)
    codes, uniques = pd.factorize(series)
    lut = np.array([index.get(str(u), len(classes)) for u in uniques] + [len(classes)],
                   dtype=np.int64)
    return np.bincount(lut[codes], minlength=len(classes) + 1)[: len(classes)]


def confidence_bins(confidences: Sequence[float], edges: Sequence[float]) -> np.ndarray:
    """Counts per confidence bin (no missing bin)."""
    c = np.asarray(confidences, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    return np.bincount(np.searchsorted(e, c, side="left"), minlength=len(e) + 1)[: len(e) + 1]


def _shares(counts: np.ndarray, n: int) -> list[float]:
    return [float(c) / n if n else 0.0 for c in counts]


# --------------------------------------------------------------------------- building


def build_profile(
    frame: pd.DataFrame, schema: Schema, config: ProfileConfig = ProfileConfig()
) -> dict[str, Any]:
    """Profile the feature columns of ``frame`` (typed by ``schema``)."""
    n = len(frame)
    feats: dict[str, Any] = {}
    for col in schema.columns:
        name, kind = col.name, col.kind
        if kind == NUMERIC:
            x = _numeric_array(frame[name], name)
            edges = _quantile_edges(x[~np.isnan(x)], config.n_bins)
            counts = numeric_bins(x, edges)
            feats[name] = {"type": NUMERIC, "edges": edges, "labels": _edge_labels(edges)}
        elif kind == CATEGORICAL:
            s = frame[name]
            codes, uniques = pd.factorize(s, use_na_sentinel=True)
            cnt = np.bincount(codes + 1, minlength=len(uniques) + 1)
            by_key: Counter[str] = Counter()
            for u, c in zip(uniques, cnt[1:]):
                by_key[category_key(u)] += int(c)
            by_key.pop(MISSING, None)
            top = [k for k, _ in sorted(by_key.items(), key=lambda kv: (-kv[1], kv[0]))]
            top = top[: config.top_k]
            counts = categorical_bins(s, top)
            feats[name] = {"type": CATEGORICAL, "categories": top,
                           "labels": [*top, OTHER, MISSING]}
        elif kind == TEXT:
            miss, docs = _text_series(frame[name])
            lengths = np.array([len(d) for d in docs], dtype=np.float64)
            edges = _quantile_edges(lengths[~miss], config.n_bins)
            tok = Counter()
            for d in docs:
                if d:
                    tok.update(tokenize(d))
            vocab = [t for t, _ in tok.most_common(config.text_vocabulary_size)]
            counts, oov, total = text_bins(frame[name], edges, vocab)
            feats[name] = {
                "type": TEXT,
                "edges": edges,
                "labels": _edge_labels(edges),
                "vocabulary": vocab,
                "oov_rate": oov / total if total else 0.0,
            }
        else:
            continue
        shares = _shares(counts, n)
        feats[name]["shares"] = shares
        feats[name]["missing_share"] = shares[-1]
        feats[name]["n"] = n
    return {
        "version": PROFILE_VERSION,
        "n_rows": n,
        "n_bins": config.n_bins,
        "top_k": config.top_k,
        "confidence_edges": list(config.confidence_edges),
        "features": feats,
        "prediction": None,
    }


def profile_predictions(
    predicted: Sequence[Any],
    confidences: Sequence[float],
    classes: Sequence[Any],
    confidence_edges: Sequence[float] = ProfileConfig.confidence_edges,
) -> dict[str, Any]:
    """The model-output part of the profile."""
    n = len(predicted)
    edges = [float(e) for e in confidence_edges]
    bounds = ["-inf", *(_fmt(e) for e in edges), "+inf"]
    return {
        "classes": [c.item() if isinstance(c, np.generic) else c for c in classes],
        "class_shares": _shares(class_bins(predicted, classes), n),
        "confidence_edges": edges,
        "confidence_labels": [f"({bounds[i]}, {bounds[i + 1]}]" for i in range(len(edges) + 1)],
        "confidence_shares": _shares(confidence_bins(confidences, edges), n),
        "n": n,
    }
