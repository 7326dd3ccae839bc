"""Schema inference: every column becomes numeric, categorical, text or ignored,
with the reason recorded; the caller can override any column's type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError

__all__ = ["ColumnInfo", "Schema", "SchemaConfig", "infer_schema", "KINDS"]

NUMERIC, CATEGORICAL, TEXT, IGNORED = "numeric", "categorical", "text", "ignored"
KINDS = (NUMERIC, CATEGORICAL, TEXT, IGNORED)
_WORD = re.compile(r"\w+", re.UNICODE)
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|index|rownames|unnamed.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class SchemaConfig:
    """Thresholds of the inference rules (see :func:`infer_schema`)."""

    #: a column needs at least this many rows before "every value unique" means id-like
    id_min_rows: int = 50
    #: strings with at least this many words on average (and many distinct values) are text
    text_min_words: float = 2.0
    #: ... where "many" is a distinct/non-missing ratio at least this
    text_min_unique_ratio: float = 0.2
    #: string columns with more distinct values than this are text even with one word
    categorical_max_unique: int = 1000
    #: rows sampled to measure word counts
    sample_rows: int = 20_000


@dataclass
class ColumnInfo:
    name: str
    kind: str
    reason: str
    dtype: str = ""
    n_unique: int = 0
    missing_share: float = 0.0
    overridden: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Schema:
    """Column types of a training table (without the target)."""

    columns: list[ColumnInfo]
    target: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_name = {c.name: c for c in self.columns}

    def __getitem__(self, name: str) -> ColumnInfo:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self, kind: str) -> list[str]:
        return [c.name for c in self.columns if c.kind == kind]

    @property
    def numeric(self) -> list[str]:
        return self.names(NUMERIC)

    @property
    def categorical(self) -> list[str]:
        return self.names(CATEGORICAL)

    @property
    def text(self) -> list[str]:
        return self.names(TEXT)

    @property
    def ignored(self) -> list[str]:
        return self.names(IGNORED)

    @property
    def features(self) -> list[str]:
        """The columns the model uses, in table order."""
        return [c.name for c in self.columns if c.kind != IGNORED]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "columns": [c.to_dict() for c in self.columns],
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        return cls(
            columns=[ColumnInfo(**c) for c in d["columns"]],
            target=d.get("target"),
            extra=dict(d.get("extra") or {}),
        )


def _mean_words(values: pd.Series) -> float:
    return float(np.mean([len(_WORD.findall(v)) for v in values])) if len(values) else 0.0


def _infer_column(name: str, s: pd.Series, cfg: SchemaConfig) -> ColumnInfo:
    n = len(s)
    nonnull = s.dropna()
    n_nonnull = len(nonnull)
    missing = 1.0 - n_nonnull / n if n else 1.0
    info = dict(name=name, dtype=str(s.dtype), missing_share=round(missing, 6))
    if n_nonnull == 0:
        return ColumnInfo(kind=IGNORED, reason="all values missing", **info)
    try:
        n_unique = int(nonnull.nunique())
    except TypeError:  # unhashable cells (lists, dicts from JSON)
        return ColumnInfo(kind=IGNORED, reason="cells are not scalar values", **info)
    info["n_unique"] = n_unique
    if n_unique == 1:
        return ColumnInfo(kind=IGNORED, reason=f"constant value {nonnull.iloc[0]!r}", **info)
    all_unique = n_unique == n_nonnull and n_nonnull >= cfg.id_min_rows
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnInfo(kind=CATEGORICAL, reason="boolean", **info)
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return ColumnInfo(kind=IGNORED, reason="date/time values are not used", **info)
    if pd.api.types.is_numeric_dtype(dtype):
        is_int = pd.api.types.is_integer_dtype(dtype) or bool((nonnull % 1 == 0).all())
        if is_int and all_unique and (_ID_NAME.search(name) or nonnull.is_monotonic_increasing):
            return ColumnInfo(
                kind=IGNORED, reason="id-like: a distinct integer in every row", **info
            )
        if is_int and n_unique == 2:
            return ColumnInfo(kind=CATEGORICAL, reason="integer with two values (flag)", **info)
        return ColumnInfo(kind=NUMERIC, reason="numbers", **info)
    # strings (or mixed python objects)
    values = nonnull.astype(str)
    if len(values) > cfg.sample_rows:
        values = values.sample(cfg.sample_rows, random_state=0)
    words = _mean_words(values)
    ratio = n_unique / n_nonnull
    if all_unique and words < cfg.text_min_words and not values.str.contains(r"\s").any():
        return ColumnInfo(kind=IGNORED, reason="id-like: a distinct code in every row", **info)
    if words >= cfg.text_min_words and ratio >= cfg.text_min_unique_ratio:
        return ColumnInfo(
            kind=TEXT,
            reason=f"free text: {words:.1f} words per value, {ratio:.0%} distinct",
            **info,
        )
    if n_unique > cfg.categorical_max_unique:
        return ColumnInfo(
            kind=TEXT, reason=f"{n_unique} distinct strings (too many for categories)", **info
        )
    return ColumnInfo(kind=CATEGORICAL, reason=f"{n_unique} distinct values", **info)


def infer_schema(
    frame: pd.DataFrame,
    target: str | None = None,
    *,
    column_types: Mapping[str, str] | None = None,
    features: Sequence[str] | None = None,
    config: SchemaConfig = SchemaConfig(),
) -> Schema:
    """Type every column of ``frame`` except ``target``.

    Rules, in order: all missing → ignored; one distinct value → ignored
    (constant); booleans → categorical; dates → ignored; integers distinct in
    every row (≥ ``id_min_rows`` rows) that are sorted or named like an id →
    ignored (id-like); integers with two values → categorical; other numbers
    → numeric; strings distinct in every row without spaces → ignored
    (id-like codes); strings averaging ≥ 2 words with ≥ 20 % distinct values,
    or with more than ``categorical_max_unique`` distinct values → text
    (Russian and English alike); other strings → categorical.

    ``column_types`` overrides the type of named columns (reason "set by the
    user"); ``features`` restricts the model to the named columns (the others
    are ignored with the reason "not selected").
    """
    column_types = dict(column_types or {})
    for name, kind in column_types.items():
        if kind not in KINDS:
            raise ConfigError(
                f"unknown column type {kind!r} for {name!r}; use one of: {', '.join(KINDS)}"
            )
    known = set(map(str, frame.columns))
    unknown = [c for c in list(column_types) + list(features or []) if c not in known]
    if unknown:
        raise DataError(
            "unknown column(s): " + ", ".join(repr(c) for c in unknown),
            code="unknown_columns",
            columns=unknown,
        )
    selected = set(features) if features is not None else None
    cols: list[ColumnInfo] = []
    for name in frame.columns:
        name = str(name)
        if name == target:
            continue
        s = frame[name]
        if name in column_types:
            n_nonnull = int(s.notna().sum())
            info = ColumnInfo(
                name=name,
                kind=column_types[name],
                reason="set by the user",
                dtype=str(s.dtype),
                n_unique=int(s.nunique()) if column_types[name] != IGNORED else 0,
                missing_share=round(1 - n_nonnull / max(len(s), 1), 6),
                overridden=True,
            )
            if info.kind == NUMERIC and not pd.api.types.is_numeric_dtype(s.dtype):
                bad = pd.to_numeric(s.dropna(), errors="coerce").isna()
                if bad.any():
                    raise DataError(
                        f"column {name!r} cannot be numeric: it holds {s.dropna()[bad].iloc[0]!r}",
                        code="bad_column_type",
                    )
        elif selected is not None and name not in selected:
            info = ColumnInfo(name=name, kind=IGNORED, reason="not selected", dtype=str(s.dtype))
        else:
            info = _infer_column(name, s, config)
        cols.append(info)
    return Schema(columns=cols, target=target)
