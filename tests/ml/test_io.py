from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from mlservice.ml import DataError, LimitExceeded, ReadLimits, read_records, read_table
from mlservice.ml.io import validate_target

RU = "Молоко пастеризованное 3,2% 1 л"


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": [RU, "Хлеб ржаной нарезной", "Сыр «Российский» 45%", "Apple juice 1L"],
            "price": [89.5, 45.0, 520.0, 110.0],
            "group": ["молочка", "хлеб", "молочка", "соки"],
        }
    )


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1251"])
@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_csv_round_trip_encodings_and_delimiters(tmp_path, encoding, sep):
    src = _frame()
    path = tmp_path / "data.csv"
    src.to_csv(path, index=False, sep=sep, encoding=encoding)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    got = read_table(path)
    assert list(got.columns) == ["name", "price", "group"]  # no BOM in the first name
    assert got["name"].tolist() == src["name"].tolist()
    assert got["group"].tolist() == src["group"].tolist()
    assert got["price"].tolist() == src["price"].tolist()


def test_csv_from_bytes_and_file_object():
    data = _frame().to_csv(index=False).encode("cp1251")
    assert read_table(data)["name"][0] == RU
    assert read_table(io.BytesIO(data))["name"][0] == RU


def test_csv_missing_tokens_and_whitespace():
    got = read_table(b"a,b\n 1, x \n?,NA\n3,\n")
    assert got["a"].isna().tolist() == [False, True, False]
    assert got["a"].dtype.kind in "if"
    assert got["b"].tolist()[0] == "x"
    assert got["b"].isna().tolist() == [False, True, True]


def test_json_jsonl_parquet_and_records(tmp_path):
    src = _frame()
    recs = src.to_dict("records")
    (tmp_path / "a.json").write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "a.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in recs), encoding="utf-8"
    )
    src.to_parquet(tmp_path / "a.parquet")
    for name in ("a.json", "a.jsonl", "a.parquet"):
        got = read_table(tmp_path / name)
        assert got["name"].tolist() == src["name"].tolist(), name
        assert got["price"].tolist() == src["price"].tolist(), name
    got = read_table(recs)
    assert got.shape == (4, 3)
    assert read_records(recs)["group"].tolist() == src["group"].tolist()
    # JSON without an extension: sniffed from the content
    assert read_table(json.dumps(recs).encode()).shape == (4, 3)


# ---------------------------------------------------------------- errors


def _err(source, **kw) -> DataError:
    with pytest.raises(DataError) as ei:
        read_table(source, **kw)
    return ei.value


def test_empty_file(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    e = _err(p)
    assert e.code == "empty_file" and "empty" in str(e)
    assert _err(b"  \n\n").code == "empty_file"
    e = _err(b"a,b,c\n")
    assert e.code == "empty_file" and "no data rows" in str(e)
    assert _err(b"[]", format="json").code == "empty_file"


def test_no_header():
    e = _err(b"39, State-gov, 77516\n50, Private, 83311\n")
    assert e.code == "no_header"
    assert "no header row" in str(e) and "'39'" in str(e)


def test_ragged_rows_too_many_and_too_few():
    e = _err(b"a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n")
    assert e.code == "ragged_rows"
    assert "line 3 has 4 fields, expected 3" in str(e)
    e = _err(b"a,b,c\n1,2,3\n4,5,6\n7,8\n")
    assert e.code == "ragged_rows"
    assert "line 4 has 2 fields, expected 3" in str(e)


def test_duplicate_header_and_bad_json_and_format():
    assert "duplicate column name(s)" in str(_err(b"a,b,a\n1,2,3\n"))
    assert _err(b"[{\"a\": 1},", format="json").code == "bad_json"
    assert "list of records" in str(_err(b"{\"a\": 1}", format="json"))
    assert "record 2 is a int" in str(_err([{"a": 1}, 5]))
    assert "unsupported format 'xlsx'" in str(_err(b"a\n1\n", format="xlsx"))
    assert "Parquet file cannot be read" in str(_err(b"PAR1garbage", format="parquet"))


def test_limits():
    data = b"a,b\n" + b"1,2\n" * 50
    e = _err(data, limits=ReadLimits(max_rows=10))
    assert isinstance(e, LimitExceeded) and e.code == "too_many_rows"
    assert "50 rows; the limit is 10" in str(e)
    e = _err(data, limits=ReadLimits(max_columns=1))
    assert e.code == "too_many_columns" and "2 columns; the limit is 1" in str(e)
    e = _err(data, limits=ReadLimits(max_bytes=100))
    assert e.code == "file_too_large" and "limit is 100 B" in str(e)
    with pytest.raises(LimitExceeded, match="limit is 3"):
        read_records([{"a": i} for i in range(5)], limits=ReadLimits(max_rows=3))


def test_target_errors():
    df = pd.DataFrame({"x": range(8), "y": ["a", "a", "a", "b", "b", "c", "d", "a"]})
    with pytest.raises(DataError, match="unknown target column 'label'") as ei:
        validate_target(df, "label")
    assert ei.value.code == "unknown_target" and "'x'" in str(ei.value)
    with pytest.raises(DataError, match="only one class") as ei:
        validate_target(df.assign(y="a"), "y")
    assert ei.value.code == "single_class"
    assert len(validate_target(df, "y")) == 8  # training accepts single-row classes
    with pytest.raises(DataError) as ei:
        validate_target(df, "y", min_class_rows=2)
    assert ei.value.code == "rare_class"
    assert "2 class(es) of 'y' have fewer than 2 rows: 'c' (1 row), 'd' (1 row)" in str(ei.value)
    assert ei.value.details["classes"] == ["c", "d"]
    ok = validate_target(df[df["y"].isin(["a", "b"])], "y")
    assert len(ok) == 6
