"""Reading tables: CSV (delimiter and encoding sniffed), JSON, JSON Lines,
Parquet and in-memory lists of records, plus validation of a training target.

Everything returns a :class:`pandas.DataFrame`; every problem raises a
:class:`~mlservice.ml.errors.DataError` with a message meant for a person.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from .errors import DataError, LimitExceeded

__all__ = [
    "ReadLimits",
    "read_table",
    "read_records",
    "detect_encoding",
    "sniff_delimiter",
    "validate_target",
    "check_limits",
]

#: tokens read as a missing value (after stripping surrounding whitespace)
NA_TOKENS = ("", "?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none", "#N/A")
_DELIMITERS = (",", ";", "\t", "|")
_FORMATS = ("csv", "json", "jsonl", "parquet")


@dataclass(frozen=True)
class ReadLimits:
    """Upper bounds for an input table; ``None`` disables a bound."""

    max_rows: int | None = 5_000_000
    max_columns: int | None = 2_000
    max_bytes: int | None = 2 * 1024**3
    #: what a compressed (Parquet) table may expand to: 8 bytes a cell plus its text
    max_table_bytes: int | None = 4 * 1024**3


# --------------------------------------------------------------------------- helpers


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def check_limits(frame: pd.DataFrame, limits: ReadLimits | None) -> None:
    """Raise :class:`LimitExceeded` when ``frame`` has too many rows or columns."""
    _check_shape(len(frame), frame.shape[1], limits)


def _check_shape(rows: int | None, columns: int, limits: ReadLimits | None) -> None:
    """The row and column limits, also applied to what a file declares before it is parsed."""
    if limits is None:
        return
    if rows is not None and limits.max_rows is not None and rows > limits.max_rows:
        raise LimitExceeded(
            f"the table has {rows:,} rows; the limit is {limits.max_rows:,}",
            code="too_many_rows",
            rows=rows,
            limit=limits.max_rows,
        )
    if limits.max_columns is not None and columns > limits.max_columns:
        raise LimitExceeded(
            f"the table has {columns:,} columns; the limit is {limits.max_columns:,}",
            code="too_many_columns",
            columns=columns,
            limit=limits.max_columns,
        )


def _check_size(n_bytes: int, limits: ReadLimits | None) -> None:
    if limits is not None and limits.max_bytes is not None and n_bytes > limits.max_bytes:
        raise LimitExceeded(
            f"the file is {_fmt_bytes(n_bytes)}; the limit is {_fmt_bytes(limits.max_bytes)}",
            code="file_too_large",
            bytes=n_bytes,
            limit=limits.max_bytes,
        )


def detect_encoding(data: bytes) -> str:
    """Return ``"utf-8-sig"`` (BOM), ``"utf-8"`` or ``"cp1251"`` for ``data``."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by a sample boundary is still UTF-8
        if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"
        return "cp1251"


def sniff_delimiter(sample: str) -> str:
    """Pick the delimiter (``, ; TAB |``) that splits the sample's lines into the
    most, and consistent, fields. Falls back to a comma. Rows are read as CSV, not split at
    line breaks: a quoted cell may hold one (``"\\r=1+2"``)."""
    if not sample.endswith("\n") and "\n" in sample.rstrip("\n"):
        sample = sample[: sample.rfind("\n") + 1]  # the last line of a sample may be cut
    best, best_score = ",", (False, -1.0, -1)
    for delim in _DELIMITERS:
        try:
            reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delim)
            rows = [row for row in itertools.islice(reader, 200) if "".join(row).strip()][:50]
        except csv.Error:
            continue
        counts = [len(r) for r in rows]
        if not counts or max(counts) < 2:
            continue
        mode = max(set(counts), key=counts.count)
        consistent = sum(c == mode for c in counts)
        # the share of rows, not their number: a delimiter that misses a quoted line break
        # sees more (one-field) rows
        score = (mode > 1, consistent / len(counts), mode)
        if score > best_score:
            best, best_score = delim, score
    return best


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell.strip())
    except ValueError:
        return False
    return True


def _read_source(source: Any) -> tuple[bytes, str | None]:
    """Return the raw bytes and, when known, a file name."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), None
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return path.read_bytes(), path.name
        except FileNotFoundError:
            raise DataError(f"file not found: {path}", code="file_not_found") from None
        except IsADirectoryError:
            raise DataError(f"not a file: {path}", code="file_not_found") from None
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        return data, getattr(source, "name", None)
    raise DataError(f"cannot read a table from {type(source).__name__}", code="bad_source")


def _detect_format(data: bytes, filename: str | None) -> str:
    if filename:
        ext = Path(str(filename)).suffix.lower().lstrip(".")
        ext = {"ndjson": "jsonl", "pq": "parquet", "tsv": "csv", "txt": "csv"}.get(ext, ext)
        if ext in _FORMATS:
            return ext
    if data[:4] == b"PAR1":
        return "parquet"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] == b"[":
        return "json"
    if head[:1] == b"{":
        return "jsonl"
    return "csv"


def _stringify_columns(frame: pd.DataFrame) -> pd.DataFrame:
    if not all(isinstance(c, str) for c in frame.columns):
        frame.columns = [str(c) for c in frame.columns]
    return frame


def _clean_strings(frame: pd.DataFrame, na_tokens: Iterable[str]) -> pd.DataFrame:
    """Strip string cells, turn NA tokens into missing values and convert columns
    whose every non-missing cell is a number into numbers."""
    na = list(dict.fromkeys(na_tokens))
    for col in frame.columns:
        s = frame[col]
        if not (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object):
            continue
        if s.dtype == object and not s.map(lambda v: v is None or isinstance(v, str)).all():
            continue  # mixed python objects (from JSON): leave them alone
        s = s.str.strip()
        s = s.mask(s.isin(na))
        nonnull = s.dropna()
        if len(nonnull) and pd.to_numeric(nonnull.iloc[:1000], errors="coerce").notna().all():
            num = pd.to_numeric(s, errors="coerce")
            if num.notna().sum() == s.notna().sum():
                if (num.dropna() % 1 == 0).all() and num.notna().all():
                    num = num.astype("int64")
                s = num
        frame[col] = s
    return frame


def _undecodable(exc: UnicodeDecodeError) -> DataError:
    byte = exc.object[exc.start:exc.start + 1].hex()
    return DataError(
        f"the file is not text in UTF-8 or cp1251: byte 0x{byte} at offset {exc.start} "
        "cannot be decoded; save it as UTF-8",
        code="bad_encoding",
        offset=exc.start,
    )


# --------------------------------------------------------------------------- CSV


def _read_csv(
    data: bytes,
    *,
    encoding: str | None,
    delimiter: str | None,
    column_names: Sequence[str] | None,
    na_values: Sequence[str],
    limits: ReadLimits | None = None,
) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    encoding = encoding or detect_encoding(data[: 1 << 20])
    try:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            if encoding not in ("utf-8", "utf-8-sig"):
                raise
            encoding = "cp1251"
            text = data.decode("cp1251")
    except UnicodeDecodeError as exc:
        raise _undecodable(exc) from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}", code="bad_encoding") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise DataError("the file is empty", code="empty_file")

    delimiter = delimiter or sniff_delimiter(text[:65536])
    first_line = next(ln for ln in text.splitlines() if ln.strip())
    header = next(csv.reader([first_line], delimiter=delimiter))
    _check_shape(None, len(header), limits)  # before parsing a very wide file
    if column_names is None:
        bad = [c for c in header if c.strip() and _looks_numeric(c)]
        if bad:
            raise DataError(
                "the file has no header row: the first row looks like data "
                f"(e.g. {bad[0].strip()!r}); add a header row with column names",
                code="no_header",
            )
        names = [c.strip() for c in header]
        dups = sorted({c for c in names if c and names.count(c) > 1})
        if dups:
            raise DataError(
                "duplicate column name(s) in the header: " + ", ".join(repr(d) for d in dups),
                code="duplicate_columns",
            )
        names = [c or f"column_{i + 1}" for i, c in enumerate(names)]
        skip = 1
    else:
        names = [str(c) for c in column_names]
        if len(names) != len(header):
            raise DataError(
                f"{len(names)} column names were given but the first row has "
                f"{len(header)} fields",
                code="ragged_rows",
            )
        skip = 0

    bad_rows: list[Any] = []

    def on_invalid(row: Any) -> str:
        bad_rows.append(row)
        return "error"

    lines_for_error = None
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=skip),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, invalid_row_handler=on_invalid, newlines_in_values=True
            ),
            convert_options=pacsv.ConvertOptions(
                null_values=list(na_values),
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if bad_rows:
            row = bad_rows[0]
            number = row.number
            if number is None:
                lines_for_error = text.splitlines()
                needle = row.text.rstrip("\r\n")
                number = next(
                    (i + 1 for i, ln in enumerate(lines_for_error) if ln == needle), None
                )
            where = f"line {number}" if number else "a row"
            raise DataError(
                f"ragged rows: {where} has {row.actual_columns} fields, expected "
                f"{row.expected_columns} (as in the header): {row.text[:80]!r}",
                code="ragged_rows",
                line=number,
                expected=row.expected_columns,
                actual=row.actual_columns,
            ) from None
        raise DataError(f"the CSV file cannot be parsed: {exc}", code="bad_csv") from None
    frame = table.to_pandas()
    if len(frame) == 0:
        raise DataError("the file has a header but no data rows", code="empty_file")
    return _clean_strings(frame, na_values)


# --------------------------------------------------------------------------- JSON


def _loads(text: bytes | str) -> Any:
    try:
        import orjson

        return orjson.loads(text)
    except ImportError:  # pragma: no cover - orjson is a dependency
        return json.loads(text)


def _read_json(data: bytes, *, lines: bool) -> list[Any]:
    try:
        text = data.decode(detect_encoding(data[: 1 << 20]))
    except UnicodeDecodeError as exc:
        raise _undecodable(exc) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise DataError("the file is empty", code="empty_file")
    if lines:
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(_loads(line))
            except ValueError as exc:
                raise DataError(f"invalid JSON on line {i}: {exc}", code="bad_json") from None
        return out
    try:
        obj = _loads(text)
    except ValueError as exc:
        raise DataError(f"invalid JSON: {exc}", code="bad_json") from None
    if isinstance(obj, dict) and isinstance(obj.get("data"), list):
        obj = obj["data"]
    if not isinstance(obj, list):
        raise DataError("a JSON file must hold a list of records", code="bad_json")
    return obj


def read_records(
    records: Sequence[Mapping[str, Any]],
    *,
    limits: ReadLimits | None = ReadLimits(),
    na_values: Sequence[str] = NA_TOKENS,
) -> pd.DataFrame:
    """Build a DataFrame from a list of dicts (the API's ``data: [{...}]``)."""
    if not isinstance(records, (list, tuple)):
        raise DataError("records must be a list of objects", code="bad_records")
    if len(records) == 0:
        raise DataError("no records were given", code="empty_file")
    if limits is not None and limits.max_rows is not None and len(records) > limits.max_rows:
        check_limits(pd.DataFrame(index=range(len(records))), limits)
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise DataError(
                f"record {i + 1} is a {type(rec).__name__}, not an object", code="bad_records"
            )
    frame = pd.DataFrame.from_records(list(records))
    if frame.shape[1] == 0:
        raise DataError("the records have no fields", code="no_header")
    _stringify_columns(frame)
    check_limits(frame, limits)
    return _clean_strings(frame, na_values)


# --------------------------------------------------------------------------- Parquet


def _read_parquet(data: bytes, limits: ReadLimits | None) -> pd.DataFrame:
    """Parquet is compressed: a small file may declare millions of rows of one long string.
    The footer's row and column counts are checked first, then the size the table decodes
    to (8 bytes a cell plus the text of every cell, counted on the dictionary-encoded
    columns), all before a cell is materialised."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        schema = parquet.schema_arrow
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise DataError(f"the Parquet file cannot be read: {exc}", code="bad_parquet") from None
    rows = parquet.metadata.num_rows
    _check_shape(rows, len(schema), limits)
    nested = [f.name for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise DataError(
            f"column {nested[0]!r} holds nested values ({schema.field(nested[0]).type}); "
            "upload a flat table",
            code="bad_parquet",
        )
    limit = limits.max_table_bytes if limits is not None else None
    declared = sum(parquet.metadata.row_group(i).total_byte_size for i in range(parquet.metadata.num_row_groups))
    _check_table_size(max(rows * len(schema) * 8, declared), limit)
    texts = [f.name for f in schema if _is_text(f.type)]
    try:
        table = pq.ParquetFile(io.BytesIO(data), read_dictionary=texts).read()
        if limit is not None:
            text_bytes = 0
            for column in table.columns:
                if not pa.types.is_dictionary(column.type) or not _is_text(column.type.value_type):
                    continue
                for chunk in column.chunks:
                    lengths = pc.take(pc.binary_length(chunk.dictionary), chunk.indices)
                    text_bytes += pc.sum(lengths).as_py() or 0
            _check_table_size(rows * len(schema) * 8 + text_bytes, limit)
        frame = table.cast(schema).to_pandas()
    except LimitExceeded:
        raise
    except Exception as exc:  # pyarrow raises many types for a bad file
        raise DataError(f"the Parquet file cannot be read: {exc}", code="bad_parquet") from None
    return frame


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


def _check_table_size(n_bytes: int, limit: int | None) -> None:
    if limit is not None and n_bytes > limit:
        raise LimitExceeded(
            f"the table would take {_fmt_bytes(n_bytes)} once decompressed; the limit is "
            f"{_fmt_bytes(limit)} (ML_MAX_TABLE_MB)",
            code="table_too_large",
            bytes=n_bytes,
            limit=limit,
        )


# --------------------------------------------------------------------------- entry point


def read_table(
    source: str | os.PathLike[str] | bytes | BinaryIO | Sequence[Mapping[str, Any]],
    *,
    format: str | None = None,
    filename: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    column_names: Sequence[str] | None = None,
    na_values: Sequence[str] = NA_TOKENS,
    limits: ReadLimits | None = ReadLimits(),
) -> pd.DataFrame:
    """Read a table from a path, bytes, a binary file object or a list of dicts.

    ``format`` is one of ``csv``, ``json`` (a list of records, or
    ``{"data": [...]}``), ``jsonl`` and ``parquet``; by default it is taken
    from the file name's extension, else sniffed from the content. CSV
    encoding (UTF-8, UTF-8 with BOM, cp1251) and delimiter (``, ; TAB |``)
    are sniffed unless given. Cells are stripped; ``na_values`` become
    missing; text columns holding only numbers become numeric.
    ``column_names`` reads a CSV without a header row.
    """
    if isinstance(source, (list, tuple)):
        return read_records(source, limits=limits, na_values=na_values)
    data, name = _read_source(source)
    _check_size(len(data), limits)
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise DataError("the file is empty", code="empty_file")
    fmt = (format or "").lower().lstrip(".") or _detect_format(data, filename or name)
    if fmt == "ndjson":
        fmt = "jsonl"
    if fmt not in _FORMATS:
        raise DataError(
            f"unsupported format {fmt!r}; use one of: {', '.join(_FORMATS)}", code="bad_format"
        )
    if fmt == "csv":
        frame = _read_csv(
            data,
            encoding=encoding,
            delimiter=delimiter,
            column_names=column_names,
            na_values=na_values,
            limits=limits,
        )
    elif fmt in ("json", "jsonl"):
        frame = read_records(_read_json(data, lines=fmt == "jsonl"), limits=None, na_values=na_values)
    else:
        frame = _read_parquet(data, limits)
        if len(frame) == 0:
            raise DataError("the file has no data rows", code="empty_file")
        _stringify_columns(frame)
        frame = _clean_strings(frame, na_values)
    check_limits(frame, limits)
    return frame


# --------------------------------------------------------------------------- target


def validate_target(
    frame: pd.DataFrame,
    target: str,
    *,
    min_class_rows: int = 1,
) -> pd.Series:
    """Check ``target`` for training and return it without missing values.

    Raises :class:`DataError` for an unknown target column, an all-missing
    target, fewer than two classes, or classes with fewer than
    ``min_class_rows`` rows (naming them). The default accepts any class with
    a row: :func:`~mlservice.ml.training.train` trains on classes too small to
    split (their rows go to training only), as real label sets gain new
    classes one row at a time.
    """
    if target not in frame.columns:
        cols = ", ".join(repr(str(c)) for c in list(frame.columns)[:30])
        raise DataError(
            f"unknown target column {target!r}; the columns are: {cols}",
            code="unknown_target",
            target=target,
        )
    y = frame[target]
    y = y[y.notna()]
    if len(y) == 0:
        raise DataError(f"the target column {target!r} has no values", code="single_class")
    counts = y.astype(str).value_counts() if y.dtype == object else y.value_counts()
    if (counts > 0).sum() < 2:
        only = counts.index[0]
        raise DataError(
            f"the target column {target!r} has only one class ({only!r}); "
            "a classifier needs at least two",
            code="single_class",
            target=target,
        )
    # A categorical column (from Parquet) may declare categories no row holds: classes with no
    # rows, which a model could never learn nor be judged on.
    empty = counts[counts == 0]
    if len(empty):
        shown = ", ".join(repr(str(k)) for k in list(empty.index)[:20])
        more = f" and {len(empty) - 20} more" if len(empty) > 20 else ""
        raise DataError(
            f"{len(empty)} class(es) of {target!r} have no rows: {shown}{more}; the column's "
            "categories declare them, but no row holds one: remove them from its categories, or add rows",
            code="empty_class",
            classes=[_py(k) for k in empty.index],
        )
    rare = counts[counts < min_class_rows]
    if len(rare):
        shown = ", ".join(f"{k!r} ({v} row{'s' if v != 1 else ''})" for k, v in list(rare.items())[:20])
        more = f" and {len(rare) - 20} more" if len(rare) > 20 else ""
        raise DataError(
            f"{len(rare)} class(es) of {target!r} have fewer than {min_class_rows} rows: "
            f"{shown}{more}; add rows or drop them",
            code="rare_class",
            classes=[_py(k) for k in rare.index],
        )
    return y


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
