"""The prediction log on its own: group commit, reading windows, compaction, retention."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from mlservice.artifacts import ArtifactStore
from mlservice.predictions import log as plog

FEATURES = (("age", "numeric"), ("city", "categorical"))


def table(rows: int, version: str = "1.0.0", at: datetime | None = None):
    frame = pd.DataFrame({"age": np.arange(rows, dtype=float), "city": ["Москва", None] * (rows // 2) + ["x"] * (rows % 2)})
    return plog.build_table(plog.feature_schema(FEATURES), frame, version=version, labels=["a"] * rows,
                            confidences=np.full(rows, 0.9), job_id=None, user_id=7, at=at)


def test_concurrent_sync_appends_are_all_readable(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    writer = plog.SyncLogWriter(store)
    threads = [threading.Thread(target=lambda: [writer.append("m", table(2)) for _ in range(25)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Acknowledged rows are readable while the segment is still open...
    assert len(plog.read_log(store, "m")) == 400
    writer.close()
    # ...and after it was closed and compacted to Parquet.
    files = list((tmp_path / "prediction_log" / "m").rglob("*"))
    assert [f.suffix for f in files if f.is_file()] == [".parquet"]
    frame = plog.read_log(store, "m")
    assert len(frame) == 400 and set(frame["_user_id"]) == {7}
    assert frame["city"].isna().sum() == 200 and "Москва" in set(frame["city"])


def sync_rows(records: list[dict], confidences: list[float]) -> plog.SyncRows:
    return plog.SyncRows(plog.feature_schema(FEATURES), "1.0.0", records, ["a"] * len(records),
                         np.array(confidences), user_id=7)


def test_a_group_with_one_bad_request_writes_the_others(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    writer = plog.SyncLogWriter(store)
    good = [plog._Pending(sync_rows([{"age": i, "city": f"c{i}"}], [0.5])) for i in range(20)]
    bad = plog._Pending(sync_rows([{"age": 1, "city": "x"}], [0.5, 0.6]))  # two confidences, one row
    # One group, as the writer thread forms it when requests arrive during a write.
    writer._write_group([("m", pending) for pending in [*good[:10], bad, *good[10:]]])
    assert [pending.error for pending in good] == [None] * 20
    assert bad.error is not None and all(p.done.is_set() for p in [*good, bad])
    assert sorted(plog.read_log(store, "m")["city"]) == sorted(f"c{i}" for i in range(20))
    writer.close()


def test_window_and_version_filters(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    now = datetime.now(UTC)
    plog.write_batch(store, "m", table(10, at=now - timedelta(days=2)), "old")
    plog.write_batch(store, "m", table(5, "1.1.0", at=now), "new")
    assert len(plog.read_log(store, "m")) == 15
    assert len(plog.read_log(store, "m", since=now - timedelta(hours=1))) == 5
    assert len(plog.read_log(store, "m", until=now - timedelta(days=1))) == 10
    assert len(plog.read_log(store, "m", version="1.1.0")) == 5
    assert plog.read_log(store, "other").empty


def test_categories_read_across_sync_segments_and_batch_files(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    writer = plog.SyncLogWriter(store)
    writer.append("m", table(3))  # an open Arrow stream segment
    plog.write_batch(store, "m", table(4), "batch")  # a Parquet file
    frame = plog.read_log(store, "m", strings_as_categories=True)
    assert len(frame) == 7 and isinstance(frame["city"].dtype, pd.CategoricalDtype)
    assert frame["city"].value_counts().to_dict() == {"Москва": 3, "x": 1}
    assert frame["_version"].astype(str).tolist() == ["1.0.0"] * 7
    writer.close()


def test_a_torn_tail_is_ignored(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    writer = plog.SyncLogWriter(store)
    writer.append("m", table(3))
    segment = next((tmp_path / "prediction_log" / "m").rglob("*.arrows"))
    with open(segment, "ab") as handle:
        handle.write(b"\xff\xff\xff\xff\x10\x00")  # a crash in the middle of the next batch
    assert len(plog.read_log(store, "m")) == 3


def test_retention_removes_old_days(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    today = date(2026, 6, 30)
    old = datetime(2026, 1, 1, tzinfo=UTC)
    plog.write_batch(store, "m", table(4, at=old), "old")
    plog.write_batch(store, "m", table(4, at=datetime(2026, 6, 29, tzinfo=UTC)), "recent")
    assert plog.delete_older_than(store, 90, today=today) == 1
    assert len(plog.read_log(store, "m")) == 4


def test_async_appends_of_one_loop_turn_are_one_group_on_the_loop(tmp_path) -> None:
    """Sync predictions are written on their event loop: the rows of every request that reaches
    the log in one turn are one write, flushed before any of them is answered; a request whose
    rows cannot be written fails alone."""
    store = ArtifactStore(tmp_path)
    writer = plog.SyncLogWriter(store)
    groups: list[int] = []
    write_group = writer._write_group

    def counting(group, **kwargs):  # type: ignore[no-untyped-def]
        groups.append(len(group))
        write_group(group, **kwargs)

    writer._write_group = counting  # type: ignore[method-assign]

    async def requests() -> list[BaseException | None]:
        async def one(i: int) -> None:
            confidences = [0.5, 0.6] if i == 3 else [0.5]  # request 3: two confidences, one row
            await writer.append_async("m", sync_rows([{"age": i, "city": f"c{i}"}], confidences))
            assert len(plog.read_log(store, "m")) >= 1  # in the file when answered

        return await asyncio.gather(*(one(i) for i in range(10)), return_exceptions=True)

    outcomes = asyncio.run(requests())
    assert groups == [10]
    assert [o is None for o in outcomes] == [i != 3 for i in range(10)]
    assert sorted(plog.read_log(store, "m")["city"]) == sorted(f"c{i}" for i in range(10) if i != 3)
    writer.close()
    files = list((tmp_path / "prediction_log" / "m").rglob("*"))
    assert [f.suffix for f in files if f.is_file()] == [".parquet"]


def test_a_full_segment_is_compacted_off_the_loop(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(plog, "SEGMENT_ROWS", 3)
    store = ArtifactStore(tmp_path)
    writer = plog.SyncLogWriter(store)

    async def requests() -> None:
        for i in range(7):
            await writer.append_async("m", sync_rows([{"age": i, "city": "x"}], [0.5]))

    asyncio.run(requests())
    writer.close()
    files = sorted(f.suffix for f in (tmp_path / "prediction_log" / "m").rglob("*") if f.is_file())
    assert files == [".parquet"] * 3
    assert sorted(plog.read_log(store, "m")["age"]) == list(range(7))


def test_a_batch_table_is_the_same_whatever_the_frame_columns_dtypes(tmp_path) -> None:
    """build_table takes numpy numbers and Arrow-backed strings without a Python object per cell;
    the table must be what the general path (object columns) gives, nulls and odd values included."""
    rows = 6
    frame = pd.DataFrame({
        "n_int": pd.Series([1, 2, 3, 4, 5, 6], dtype="int64"),
        "n_float": [1.5, np.nan, -2.0, 1e300, 0.0, np.inf],
        "n_nullable": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
        "n_text": pd.array(["1.5", None, "x", "2", "", "3"], dtype="str"),
        "n_bool": [True, False, True, False, True, False],
        "c_str": pd.array(["a", None, "Москва", "", "b", "a"], dtype="str"),
        "c_arrow": pd.array(["a", None, "c", "d", "e", "f"], dtype="string[pyarrow]"),
        "c_int": pd.Series([1, 2, 3, 4, 5, 6], dtype="int64"),
        "c_mixed": pd.Series(["a", None, 3, 4.5, True, "z"], dtype=object),
    })
    features = [("n_int", "numeric"), ("n_float", "numeric"), ("n_nullable", "numeric"), ("n_text", "numeric"),
                ("n_bool", "numeric"), ("c_str", "categorical"), ("c_arrow", "categorical"),
                ("c_int", "categorical"), ("c_mixed", "categorical"), ("absent", "numeric"),
                ("absent_text", "categorical")]
    schema = plog.feature_schema(features)
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def build(data: pd.DataFrame):
        return plog.build_table(schema, data, version="1.0.0", labels=["a", "b", 1, "a", "b", None],
                                confidences=np.linspace(0, 1, rows), job_id="j", user_id=3, at=at)

    fast, general = build(frame), build(frame.astype(object))
    assert fast.schema == general.schema == schema
    assert fast.equals(general), {name: (fast[name], general[name]) for name in schema.names
                                  if not fast[name].equals(general[name])}
    assert fast["c_str"].to_pylist() == ["a", None, "Москва", "", "b", "a"]
    assert fast["n_text"].to_pylist() == [1.5, None, None, 2.0, None, 3.0]
    assert fast["_ts"].to_pylist() == [at] * rows and fast["_user_id"].to_pylist() == [3] * rows
