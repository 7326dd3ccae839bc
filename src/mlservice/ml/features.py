"""The feature pipeline: raw columns → one float32 matrix.

* numeric → median imputation + standard scaling (non-numbers are an error,
  non-finite values count as missing, finite values too large for the float32
  matrix are an error);
* categorical → one-hot; categories seen fewer than ``min_frequency`` times
  (or beyond the ``max_categories`` most frequent) share one "other" column,
  which also takes unknown categories at predict time (all zeros if no
  category was grouped); missing is a category of its own;
* text → TF-IDF (sublinear tf, smooth idf, l2 per block) over word n-grams
  and character n-grams (``char_wb``); a block whose vocabulary is larger
  than ``text_max_vocabulary`` switches to feature hashing.

Two ways in: :meth:`FeaturePipeline.transform` for a DataFrame (vectorised,
for large batches) and :meth:`FeaturePipeline.transform_records` for a few
dicts (no pandas at all: precomputed constants and category → column maps),
which give the same numbers. The fitted state is plain JSON + numpy arrays
(:meth:`to_state` / :meth:`from_state`), so bundles need no pickle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.utils.validation import check_is_fitted

from .errors import DataError, MissingColumnsError
from .io import NA_TOKENS
from .schema import Schema

__all__ = ["FeatureConfig", "FeaturePipeline", "category_key", "MISSING", "OTHER"]

MISSING = "__missing__"
OTHER = "__other__"
_NA = frozenset(NA_TOKENS)
#: the largest finite float32; the output matrix is float32, so a larger value
#: (before or after scaling) would become inf there and break the model
F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class FeatureConfig:
    categorical_min_frequency: int = 5
    categorical_max_categories: int = 100
    text_word_ngrams: tuple[int, int] = (1, 2)
    text_char_ngrams: tuple[int, int] = (2, 4)
    text_word_min_df: int = 1
    text_char_min_df: int = 2
    #: a text block with a larger vocabulary than this uses hashing instead
    text_max_vocabulary: int = 20_000
    text_hash_features: int = 2**14

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def category_key(v: Any) -> str:
    """The string a categorical value is known by (same for pandas and dict input)."""
    if v is None:
        return MISSING
    if isinstance(v, str):
        v = v.strip()
        return v if v else MISSING
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return MISSING
        return str(int(f)) if f.is_integer() else repr(f)
    if v is pd.NA or v is pd.NaT:
        return MISSING
    return str(v)


def _num_value(v: Any, column: str) -> float:
    if v is None:
        return math.nan
    if isinstance(v, str):
        t = v.strip()
        if t in _NA:
            return math.nan
        try:
            f = float(t)
        except ValueError:
            raise DataError(
                f"column {column!r} is numeric but got {v!r}", code="bad_value", column=column
            ) from None
    else:
        try:
            f = float(v)
        except OverflowError:  # an integer beyond float range: as infinite, so missing
            return math.nan
        except (TypeError, ValueError):
            if v is pd.NA or v is pd.NaT:
                return math.nan
            raise DataError(
                f"column {column!r} is numeric but got {v!r}", code="bad_value", column=column
            ) from None
    return f if math.isfinite(f) else math.nan


def _numeric_array(s: pd.Series, column: str) -> np.ndarray:
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt) or pd.api.types.is_numeric_dtype(dt):
        a = s.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        obj = s.astype(object)
        t = obj.where(~obj.map(lambda v: isinstance(v, str) and v.strip() in _NA), None)
        try:
            a = pd.to_numeric(t, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
        except OverflowError:
            a = np.array([_num_value(v, column) for v in t], dtype=np.float64)
        except (ValueError, TypeError):
            bad = pd.to_numeric(t, errors="coerce").isna() & t.notna()
            raise DataError(
                f"column {column!r} is numeric but got {t[bad].iloc[0]!r}",
                code="bad_value",
                column=column,
            ) from None
    a = np.array(a, dtype=np.float64, copy=True)
    inf = np.isinf(a)
    if inf.any():
        a[inf] = np.nan
    return a


def _out_of_range(column: str, value: float, row: int | None,
                  scale: float | None = None) -> DataError:
    """The error for a finite number the float32 feature matrix cannot hold: too large itself, or
    (with ``scale``) too large once divided by the column's training spread."""
    where = f" (row {row})" if row is not None else ""
    if abs(value) > F32_MAX:
        message = (f"column {column!r} has {value!r}{where}: out of range for a 32-bit float "
                   f"(|x| > ~3.4e38)")
    else:
        message = (f"column {column!r} has {value!r}{where}: out of range for this model, which "
                   f"divides the column by {scale:.3g} and needs the result within a 32-bit float "
                   f"(|x| <= ~3.4e38)")
    details: dict[str, Any] = {"column": column}
    if row is not None:
        details["row"] = row
    return DataError(message, code="invalid_value", **details)


def _row_number(index: pd.Index, position: int) -> int:
    """1-based number of a row: its integer label (a chunk of a batch keeps the labels of the
    whole input, so this is the row in the uploaded file) or else its position."""
    label = index[position]
    if isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
        return int(label) + 1
    return position + 1


def _check_range(a: np.ndarray, column: str, index: pd.Index, lo: float, hi: float,
                 scale: float | None = None) -> None:
    # NaN (missing) compares False on both sides, so it passes; it is imputed later
    bad = (a < lo) | (a > hi)
    if bad.any():
        pos = int(np.argmax(bad))
        raise _out_of_range(column, float(a[pos]), _row_number(index, pos), scale)


def _text_values(s: pd.Series) -> list[str]:
    return ["" if k == MISSING else k for k in map(_text_key, s.tolist())]


def _text_key(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    return str(v)


class _TextBlock:
    """Counts (vocabulary or hashing) → sublinear TF × IDF → l2 rows."""

    def __init__(self, analyzer: str, ngram_range: tuple[int, int], min_df: int) -> None:
        self.analyzer = analyzer
        self.ngram_range = tuple(ngram_range)
        self.min_df = min_df
        self.mode = "vocabulary"
        self.vocabulary: dict[str, int] | None = None
        self.n_features = 0
        self.idf: np.ndarray | None = None
        self._vec: Any = None

    def _counter(self) -> Any:
        if self.mode == "hashing":
            return HashingVectorizer(
                analyzer=self.analyzer,
                ngram_range=self.ngram_range,
                n_features=self.n_features,
                alternate_sign=False,
                norm=None,
                dtype=np.float32,
            )
        return CountVectorizer(
            analyzer=self.analyzer,
            ngram_range=self.ngram_range,
            vocabulary=self.vocabulary,
            dtype=np.float32,
        )

    def fit_transform(self, docs: list[str], cfg: FeatureConfig) -> sp.csr_matrix:
        cv = CountVectorizer(
            analyzer=self.analyzer,
            ngram_range=self.ngram_range,
            min_df=self.min_df if len(docs) >= 10 * self.min_df else 1,
            dtype=np.float32,
        )
        try:
            X = cv.fit_transform(docs)
        except ValueError:  # empty vocabulary (e.g. only one-letter words)
            cv = CountVectorizer(analyzer=self.analyzer, ngram_range=self.ngram_range,
                                 dtype=np.float32, token_pattern=r"(?u)\b\w+\b")
            try:
                X = cv.fit_transform(docs)
            except ValueError:
                self.vocabulary = {"": 0}
                self.n_features = 1
                self.idf = np.ones(1, dtype=np.float64)
                self._vec = self._counter()
                return sp.csr_matrix((len(docs), 1), dtype=np.float32)
        if len(cv.vocabulary_) > cfg.text_max_vocabulary:
            self.mode = "hashing"
            self.n_features = cfg.text_hash_features
            self._vec = self._counter()
            X = self._vec.transform(docs)
        else:
            self.vocabulary = {k: int(v) for k, v in cv.vocabulary_.items()}
            self.n_features = len(self.vocabulary)
            self._vec = self._counter()
        X = sp.csr_matrix(X, dtype=np.float32)
        n = X.shape[0]
        df = np.bincount(X.indices, minlength=self.n_features).astype(np.float64)
        self.idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        return self._weight(X)

    def _weight(self, X: sp.csr_matrix) -> sp.csr_matrix:
        X = sp.csr_matrix(X, dtype=np.float32, copy=True)
        X.sum_duplicates()
        data = X.data.astype(np.float64)
        data = (1.0 + np.log(data)) * self.idf[X.indices]
        row = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
        norms = np.sqrt(np.bincount(row, weights=data * data, minlength=X.shape[0]))
        norms[norms == 0] = 1.0
        X.data = (data / norms[row]).astype(np.float32)
        return X

    def transform(self, docs: list[str]) -> sp.csr_matrix:
        if self._vec is None:
            self._vec = self._counter()
        return self._weight(self._vec.transform(docs))

    def to_state(self) -> dict[str, Any]:
        return {
            "analyzer": self.analyzer,
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "mode": self.mode,
            "vocabulary": self.vocabulary,
            "n_features": self.n_features,
        }

    @classmethod
    def from_state(cls, d: Mapping[str, Any], idf: np.ndarray) -> _TextBlock:
        b = cls(d["analyzer"], tuple(d["ngram_range"]), d["min_df"])
        b.mode = d["mode"]
        b.vocabulary = d["vocabulary"]
        b.n_features = int(d["n_features"])
        b.idf = np.asarray(idf, dtype=np.float64)
        b._vec = b._counter()
        return b


class FeaturePipeline(TransformerMixin, BaseEstimator):
    """Turns a table typed by a :class:`~mlservice.ml.schema.Schema` into a
    float32 matrix (dense, or CSR when there are text columns)."""

    def __init__(self, schema: Schema | None = None, config: FeatureConfig | None = None) -> None:
        self.schema = schema
        self.config = config

    # ------------------------------------------------------------------ fit
    def fit(self, X: pd.DataFrame, y: Any = None) -> FeaturePipeline:
        if self.schema is None:
            raise ValueError("FeaturePipeline needs a schema")
        cfg = self.config or FeatureConfig()
        self.check_columns(X.columns)
        self.numeric_columns_ = self.schema.numeric
        self.categorical_columns_ = self.schema.categorical
        self.text_columns_ = self.schema.text
        if not (self.numeric_columns_ or self.categorical_columns_ or self.text_columns_):
            raise DataError("there are no feature columns to learn from", code="no_features")
        med, mean, scale = [], [], []
        for c in self.numeric_columns_:
            a = _numeric_array(X[c], c)
            # refused here rather than at transform: such values would overflow the std first
            _check_range(a, c, X.index, -F32_MAX, F32_MAX)
            m = float(np.nanmedian(a)) if np.isfinite(a).any() else 0.0
            a = np.where(np.isnan(a), m, a)
            mu, sd = float(a.mean()), float(a.std())
            med.append(m)
            mean.append(mu)
            scale.append(sd if sd > 1e-12 else 1.0)
        self.medians_ = np.asarray(med, dtype=np.float64)
        self.means_ = np.asarray(mean, dtype=np.float64)
        self.scales_ = np.asarray(scale, dtype=np.float64)
        self.categories_: dict[str, list[str]] = {}
        for c in self.categorical_columns_:
            codes, uniques = pd.factorize(X[c], use_na_sentinel=True)
            counts = np.bincount(codes + 1, minlength=len(uniques) + 1)
            by_key: dict[str, int] = {}
            if counts[0]:
                by_key[MISSING] = int(counts[0])
            for u, n in zip(uniques, counts[1:]):
                k = category_key(u)
                by_key[k] = by_key.get(k, 0) + int(n)
            ranked = sorted(by_key.items(), key=lambda kv: (-kv[1], kv[0]))
            kept = [k for k, n in ranked if n >= cfg.categorical_min_frequency]
            kept = kept[: cfg.categorical_max_categories]
            if not kept:  # every category rare: keep the most frequent ones anyway
                kept = [k for k, _ in ranked[: cfg.categorical_max_categories]]
            cats = kept + ([OTHER] if len(kept) < len(ranked) else [])
            self.categories_[c] = cats
        self.text_blocks_: dict[str, list[_TextBlock]] = {}
        text_mats = []
        for c in self.text_columns_:
            docs = _text_values(X[c])
            blocks = [
                _TextBlock("word", cfg.text_word_ngrams, cfg.text_word_min_df),
                _TextBlock("char_wb", cfg.text_char_ngrams, cfg.text_char_min_df),
            ]
            for b in blocks:
                b.fit_transform(docs, cfg)
            self.text_blocks_[c] = blocks
        self._build_maps()
        self.n_features_in_ = len(self.schema.features)
        self.feature_names_in_ = np.asarray(self.schema.features, dtype=object)
        del text_mats
        return self

    def _build_maps(self) -> None:
        """Precompute offsets and category → output column maps."""
        names: list[str] = list(self.numeric_columns_)
        off = len(names)
        self._cat_maps: list[tuple[str, int, dict[str, int], int]] = []
        for c in self.categorical_columns_:
            cats = self.categories_[c]
            local = {k: i for i, k in enumerate(cats)}
            unknown = local.get(OTHER, -1)
            self._cat_maps.append((c, off, local, unknown))
            names += [f"{c}={k}" for k in cats]
            off += len(cats)
        self._text_slices: list[tuple[str, int, list[_TextBlock]]] = []
        for c in self.text_columns_:
            blocks = self.text_blocks_[c]
            self._text_slices.append((c, off, blocks))
            for b in blocks:
                names += [f"{c}:{b.analyzer}:{i}" for i in range(b.n_features)]
                off += b.n_features
        self.n_features_out_ = off
        self.feature_names_out_ = names
        self._n_num = len(self.numeric_columns_)
        # The raw values each numeric column accepts: within float32 itself, and small enough
        # that (v - mean) / scale stays within float32 too (matters when scale < 1). Checking
        # the raw value against two precomputed floats keeps the one-row path at ~40 ns/column.
        self._num_bounds: list[tuple[float, float]] = [
            (max(-F32_MAX, float(mu) - F32_MAX * float(sd)),
             min(F32_MAX, float(mu) + F32_MAX * float(sd)))
            for mu, sd in zip(self.means_, self.scales_)
        ]

    def output_columns(self) -> dict[str, np.ndarray]:
        """The output column indices each input feature fills. Every output
        column depends on one input column of the same row only, so permuting
        an input column's rows equals permuting the rows of its output columns
        (what permutation importance relies on to skip re-transforming)."""
        check_is_fitted(self, "feature_names_out_")
        out = {c: np.array([j]) for j, c in enumerate(self.numeric_columns_)}
        for c, off, local, _unknown in self._cat_maps:
            out[c] = np.arange(off, off + len(local))
        for c, off, blocks in self._text_slices:
            out[c] = np.arange(off, off + sum(b.n_features for b in blocks))
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return np.asarray(self.feature_names_out_, dtype=object)

    @property
    def text_modes_(self) -> dict[str, list[str]]:
        return {c: [b.mode for b in bs] for c, bs in self.text_blocks_.items()}

    # ------------------------------------------------------------------ columns
    def check_columns(self, columns: Iterable[Any]) -> tuple[list[str], list[str]]:
        """Return ``(missing, extra)``; raise :class:`MissingColumnsError` if
        required feature columns are missing. Extra columns are ignored."""
        cols = [str(c) for c in columns]
        have = set(cols)
        needed = self.schema.features
        missing = [c for c in needed if c not in have]
        if missing:
            raise MissingColumnsError(missing)
        need = set(needed)
        return [], [c for c in cols if c not in need]

    # ------------------------------------------------------------------ transform
    def transform(self, X: pd.DataFrame) -> np.ndarray | sp.csr_matrix:
        """Vectorised path for a DataFrame (extra columns are ignored)."""
        check_is_fitted(self, "feature_names_out_")
        self.check_columns(X.columns)
        n = len(X)
        num = np.empty((n, self._n_num), dtype=np.float32)
        for j, c in enumerate(self.numeric_columns_):
            a = _numeric_array(X[c], c)
            lo, hi = self._num_bounds[j]
            _check_range(a, c, X.index, lo, hi, float(self.scales_[j]))
            a = np.where(np.isnan(a), self.medians_[j], a)
            num[:, j] = (a - self.means_[j]) / self.scales_[j]
        rows_l, cols_l = [], []
        for c, off, local, unknown in self._cat_maps:
            codes, uniques = pd.factorize(X[c], use_na_sentinel=True)
            missing_col = local.get(MISSING, unknown)
            lut = np.fromiter(
                (local.get(category_key(u), unknown) for u in uniques),
                dtype=np.int64,
                count=len(uniques),
            )
            lut = np.append(lut, missing_col)  # code -1 → last entry
            idx = lut[codes]
            ok = idx >= 0
            rows_l.append(np.nonzero(ok)[0])
            cols_l.append(idx[ok] + off)
        n_cat = self.n_features_out_ - self._n_num - sum(
            sum(b.n_features for b in bs) for _, _, bs in self._text_slices
        )
        if not self._text_slices:
            out = np.zeros((n, self.n_features_out_), dtype=np.float32)
            out[:, : self._n_num] = num
            for r, cc in zip(rows_l, cols_l):
                out[r, cc] = 1.0
            return out
        parts: list[sp.spmatrix] = [sp.csr_matrix(num)]
        if n_cat:
            r = np.concatenate(rows_l) if rows_l else np.empty(0, np.int64)
            cc = np.concatenate(cols_l) - self._n_num if cols_l else np.empty(0, np.int64)
            parts.append(
                sp.csr_matrix(
                    (np.ones(len(r), np.float32), (r, cc)), shape=(n, n_cat), dtype=np.float32
                )
            )
        for c, _off, blocks in self._text_slices:
            docs = _text_values(X[c])
            parts.extend(b.transform(docs) for b in blocks)
        return sp.hstack(parts, format="csr", dtype=np.float32)

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Fast path for a few dicts: no pandas, straight to a dense float32
        matrix equal to :meth:`transform`. Raises :class:`MissingColumnsError`
        naming the feature columns absent from any record."""
        check_is_fitted(self, "feature_names_out_")
        needed = self.schema.features
        missing: list[str] = []
        for rec in records:
            for c in needed:
                if c not in rec and c not in missing:
                    missing.append(c)
        if missing:
            raise MissingColumnsError(missing)
        n = len(records)
        out = np.zeros((n, self.n_features_out_), dtype=np.float32)
        med, mean, scale, bounds = self.medians_, self.means_, self.scales_, self._num_bounds
        for i, rec in enumerate(records):
            row = out[i]
            for j, c in enumerate(self.numeric_columns_):
                v = _num_value(rec[c], c)
                if v != v:
                    v = med[j]
                elif not bounds[j][0] <= v <= bounds[j][1]:
                    raise _out_of_range(c, v, i + 1, float(scale[j]))
                row[j] = (v - mean[j]) / scale[j]
            for c, off, local, unknown in self._cat_maps:
                k = category_key(rec[c])
                if k == MISSING:
                    j = local.get(MISSING, unknown)
                else:
                    j = local.get(k, unknown)
                if j >= 0:
                    row[off + j] = 1.0
        for c, off, blocks in self._text_slices:
            docs = [_text_key(rec[c]) for rec in records]
            for b in blocks:
                m = b.transform(docs)
                out[:, off : off + b.n_features] = m.toarray()
                off += b.n_features
        return out

    # ------------------------------------------------------------------ state
    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {
            "numeric_medians": self.medians_,
            "numeric_means": self.means_,
            "numeric_scales": self.scales_,
        }
        text = {}
        for c, blocks in self.text_blocks_.items():
            text[c] = []
            for i, b in enumerate(blocks):
                key = f"idf__{len(arrays)}"
                arrays[key] = b.idf
                text[c].append({**b.to_state(), "idf": key})
        meta = {
            "config": (self.config or FeatureConfig()).to_dict(),
            "numeric": list(self.numeric_columns_),
            "categorical": {c: self.categories_[c] for c in self.categorical_columns_},
            "text": text,
            "n_features_out": self.n_features_out_,
        }
        return meta, arrays

    @classmethod
    def from_state(
        cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], schema: Schema
    ) -> FeaturePipeline:
        cfg = dict(meta["config"])
        for k in ("text_word_ngrams", "text_char_ngrams"):
            cfg[k] = tuple(cfg[k])
        self = cls(schema=schema, config=FeatureConfig(**cfg))
        self.numeric_columns_ = list(meta["numeric"])
        self.categorical_columns_ = list(meta["categorical"])
        self.text_columns_ = list(meta["text"])
        self.medians_ = np.asarray(arrays["numeric_medians"], dtype=np.float64)
        self.means_ = np.asarray(arrays["numeric_means"], dtype=np.float64)
        self.scales_ = np.asarray(arrays["numeric_scales"], dtype=np.float64)
        self.categories_ = {c: list(v) for c, v in meta["categorical"].items()}
        self.text_blocks_ = {
            c: [_TextBlock.from_state(b, arrays[b["idf"]]) for b in blocks]
            for c, blocks in meta["text"].items()
        }
        self._build_maps()
        if self.n_features_out_ != meta["n_features_out"]:
            raise ValueError("feature state is inconsistent")
        self.n_features_in_ = len(schema.features)
        self.feature_names_in_ = np.asarray(schema.features, dtype=object)
        return self
