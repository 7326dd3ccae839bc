"""Hostile inputs against upload, train, predict (sync and async, JSON and file) and auth.

Every input is either refused with a clear 4xx in the one error shape (and then nothing stored
changes: the rows of users, datasets, jobs, models and versions, and the files under the
artifacts root) or accepted as the legitimate data it is (SQL-ish strings, formula strings,
NaN cells). After each group the service still answers a follow-up request.

The app runs with small limits (ML_MAX_BODY_MB 0.5, ML_MAX_TABLE_MB 8) so that the "huge"
inputs are cheap to build: the compression bombs are small Parquet files that would decode to
hundreds of MB and are refused from their footer or dictionary before they are materialised.
`HOSTILE` counts the inputs tried (run with -s to see the number).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mlservice.app import create_app
from mlservice.auth.service import ensure_first_admin
from mlservice.db import Database
from mlservice.db.migrate import upgrade
from tests.conftest import make_settings
from tests.helpers import Accounts, wait_job

LIMITS = {"max_body_mb": 0.5, "max_table_mb": 8}
TABLES = ("users", "auth_tokens", "datasets", "jobs", "models", "model_versions")
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1)", "\t=1+2", "\r=1+2", '=HYPERLINK("http://x")']
SQLISH = ["' OR 1=1 --", '"; DROP TABLE users; --', "Robert'); DROP TABLE datasets;--"]
HOSTILE: list[str] = []  # one entry per hostile input tried


@dataclass
class World:
    client: TestClient
    database: Database
    root: Path
    user: dict[str, str]
    admin: dict[str, str]
    extra: dict = field(default_factory=dict)

    def snapshot(self) -> dict:
        # The fixture's training would land between two snapshots (a model, a version, files):
        # what is compared is what hostile input changed, so let it finish first.
        self.trained()
        with self.database.session() as session:
            counts = {t: session.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in TABLES}
        files = sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
            if p.is_file() and p.relative_to(self.root).parts[0] != "prediction_log"
        )
        return {"rows": counts, "files": files}

    def trained(self) -> None:
        """Wait for the model "m1" the fixture started training."""
        job_id = self.extra.pop("training", None)
        if job_id is not None:
            assert wait_job(self.client, self.user, job_id)["status"] == "completed"

    def alive(self) -> None:
        assert self.client.get("/health").status_code == 200
        assert self.client.get("/datasets", headers=self.user).status_code == 200


def make_world(tmp_path: Path, database: Database) -> Iterator[World]:
    settings = make_settings(tmp_path, database, max_workers_limit=1, **LIMITS)
    with database.session(write=True) as session:
        ensure_first_admin(session, settings)
    with TestClient(create_app(settings, database), raise_server_exceptions=False) as client:
        accounts = Accounts(client)
        _, user = accounts.login_as("mallory")
        yield World(client, database, settings.effective_artifacts_root.resolve(), user, accounts.system_admin)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One SQLite app for the whole file (its own database file, so the per-test emptying of
    the shared fixtures never touches it), with a small trained model "m1" whose categories and
    classes are formula strings."""
    tmp = tmp_path_factory.mktemp("hostile")
    database = Database(f"sqlite:///{tmp / 'hostile.db'}", timeout=10)
    upgrade(database)
    try:
        for built in make_world(tmp, database):
            rows = [{"x": i % 7, "t": FORMULAS[i % len(FORMULAS)].strip(), "y": FORMULAS[3] if i % 2 else FORMULAS[2]}
                    for i in range(60)]
            started = built.client.post("/train", headers=built.user, json={
                "model_key": "m1", "target": "y", "data": rows, "params": {"hidden_layer_sizes": [4], "max_iter": 5}})
            assert started.status_code == 202, started.text
            built.extra["training"] = started.json()["job_id"]  # the worker starts while other tests run
            yield built
    finally:
        database.dispose()
        print(f"\n{len(HOSTILE)} hostile inputs tried")


@pytest.fixture
def backend_world(tmp_path: Path, database: Database) -> Iterator[World]:
    """The same limits on the parametrised SQLite / PostgreSQL fixture."""
    yield from make_world(tmp_path, database)


def refused(response, status: int, code: str, *words: str, label: str = "") -> dict:
    HOSTILE.append(label or code)
    assert response.status_code == status, (label, response.status_code, response.text[:500])
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code, (label, error)
    assert len(error["message"]) > 10
    for word in words:
        assert word.lower() in error["message"].lower(), (label, word, error["message"])
    return error


def accepted(response, status: int, label: str) -> dict:
    HOSTILE.append(label)
    assert response.status_code == status, (label, response.status_code, response.text[:500])
    return response.json()


def upload(client: TestClient, headers: dict, filename: str, content: bytes | Iterator[bytes], **data):
    return client.post("/datasets", headers=headers, files={"file": (filename, content, "application/octet-stream")},
                       data=data)


def raw_multipart(filename: bytes, content: bytes, fields: dict[str, str] | None = None) -> tuple[bytes, dict]:
    """A multipart body written by hand, so a file name can carry bytes httpx would escape."""
    parts = [b'--hx\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v.encode())
             for k, v in (fields or {}).items()]
    parts.append(b'--hx\r\nContent-Disposition: form-data; name="file"; filename="' + filename
                 + b'"\r\nContent-Type: text/csv\r\n\r\n' + content + b"\r\n--hx--\r\n")
    return b"".join(parts), {"content-type": "multipart/form-data; boundary=hx"}


def parquet(table: pa.Table, **options) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", **options)
    return buffer.getvalue()


@cache
def compression_bombs() -> dict[str, tuple[bytes, str]]:
    """Small files, huge tables: (bytes, expected error code)."""
    def constant(rows: int, dtype) -> pa.Array:
        return pa.array(np.zeros(rows, dtype=dtype))

    one_string = pa.DictionaryArray.from_arrays(constant(200_000, np.int32), pa.array(["x" * 2000]))
    return {
        # 3 million identical numbers in 4 columns: 96 MB of cells from a ~100 KB file
        "numbers.parquet": (parquet(pa.table({f"c{i}": constant(3_000_000, np.int64) for i in range(4)})),
                            "table_too_large"),
        # one 2,000-character string repeated 200,000 times: 400 MB once decoded, written
        # without the Arrow schema so a reader would decode it to plain strings
        "strings.parquet": (parquet(pa.table({"s": one_string}), store_schema=False), "table_too_large"),
        # the same with the Arrow schema (a dictionary column)
        "dictionary.parquet": (parquet(pa.table({"s": one_string})), "table_too_large"),
        # more rows than the row limit (5,000,000), declared in the footer
        "rows.parquet": (parquet(pa.table({"b": constant(5_000_001, np.bool_)})), "too_many_rows"),
    }


def wide_csv(columns: int) -> bytes:
    return (",".join(f"c{i}" for i in range(columns)) + "\n" + ",".join("1" for _ in range(columns)) + "\n").encode()


def test_huge_and_compressed_uploads_are_refused_before_they_are_materialised(world: World) -> None:
    client, user = world.client, world.user
    before = world.snapshot()
    too_big = b"a,b\n" + b"1,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n" * 20_000  # 700 KB > 0.5 MB
    refused(upload(client, user, "big.csv", too_big), 413, "payload_too_large", "ML_MAX_BODY_MB", label="body > limit")

    def stream() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'--hx\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n\r\na,b\n'
        for _ in range(40):
            yield b"1,2\n" * 4096
    refused(client.post("/datasets", headers={**user, "content-type": "multipart/form-data; boundary=hx"},
                        content=stream()), 413, "payload_too_large", "ML_MAX_BODY_MB", label="streamed body > limit")

    for name, (content, code) in compression_bombs().items():
        assert len(content) < 0.5 * 1024 * 1024, name  # under the body limit: only the table is huge
        error = refused(upload(client, user, name, content), 413, code, "limit", label=f"bomb {name}")
        if code == "table_too_large":
            assert "ML_MAX_TABLE_MB" in error["message"] and error["details"]["bytes"] > 8 * 1024 * 1024

    nested = parquet(pa.table({"l": pa.array([[1, 2], [3]])}))
    refused(upload(client, user, "nested.parquet", nested), 422, "bad_parquet", "nested", label="nested parquet")
    refused(upload(client, user, "torn.parquet", parquet(pa.table({"a": [1, 2, 3]}))[:-30]), 422, "bad_parquet",
            "parquet", label="truncated parquet")
    refused(upload(client, user, "wide.csv", wide_csv(10_000)), 413, "too_many_columns", "10,000 columns",
            "2,000", label="10,000 CSV columns")
    wide_json = json.dumps([{f"c{i}": 1 for i in range(10_000)}]).encode()
    refused(upload(client, user, "wide.json", wide_json), 413, "too_many_columns", "10,000", label="10,000 JSON keys")
    assert world.snapshot() == before
    world.alive()
    # A legitimate Parquet file still goes through the guarded reader.
    small = pd.DataFrame({"a": ["x", "y", None], "b": [1, 2, 3], "c": [0.5, None, 1.5]})
    buffer = io.BytesIO()
    small.to_parquet(buffer, index=False)
    dataset = accepted(upload(client, user, "small.parquet", buffer.getvalue()), 201, "legit parquet")
    assert dataset["rows"] == 3 and [c["name"] for c in dataset["columns"]] == ["a", "b", "c"]


def test_malformed_files_get_a_reason_a_person_can_act_on(world: World) -> None:
    client, user = world.client, world.user
    before = world.snapshot()
    cases = [
        ("deep.json", b"[" * 10_000 + b"]" * 10_000, 422, "bad_json", "depth"),
        ("deep.jsonl", b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"\n", 422, "bad_json", "line 1"),
        ("nan.json", b'[{"a": NaN, "b": 1}, {"a": 2, "b": 2}]', 422, "bad_json", "char 7"),
        ("inf.json", b'[{"a": Infinity, "b": 1}]', 422, "bad_json", "invalid json"),
        ("overflow.json", b'[{"a": 1e999, "b": 1}]', 422, "bad_json", "infinity"),
        ("utf8.csv", b"a,b\n\x98\x81,1\nx,2\n", 422, "bad_encoding", "0x98"),
        ("utf8.json", b'[{"a": "\x98\xff", "b": 1}]', 422, "bad_encoding", "UTF-8"),
        ("utf8.jsonl", b'{"a": "\x98", "b": 1}\n', 422, "bad_encoding", "UTF-8"),
        ("empty.csv", b"", 422, "empty_file", "empty"),
        ("blank.csv", b" \r\n\t\n", 422, "empty_file", "empty"),
        ("header.csv", b"a,b,c\n", 422, "empty_file", "no data rows"),
        ("header.jsonl", b"\n\n", 422, "empty_file", "empty"),
        ("none.json", b"[]", 422, "empty_file", "no records"),
        ("dupes.csv", b"a,a,b\n1,2,3\n4,5,6\n", 422, "duplicate_columns", "'a'"),
        ("dupes-spaced.csv", b"a, a ,b\n1,2,3\n", 422, "duplicate_columns", "'a'"),
        ("scalar.json", b'"just a string"', 422, "bad_json", "list of records"),
        ("mixed.json", b'[{"a": 1}, 5]', 422, "bad_records", "record 2"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", 422, "ragged_rows", "line 3"),
        ("binary.csv", bytes(range(256)) * 4, 422, "bad_encoding", "save it as UTF-8"),
        ("nul-column.csv", b"a\x00z,b\n1,x\n2,y\n", 422, "invalid_value", "NUL"),
    ]
    for name, content, status, code, word in cases:
        refused(upload(client, user, name, content), status, code, word, label=name)
    refused(upload(client, user, "ok.csv", b"a,b\n1,x\n2,y\n", name="bad\x00name"), 422, "invalid_value", "NUL",
            label="NUL in dataset name")
    refused(upload(client, user, "ok.csv", b"a,b\n1,x\n", name="n" * 5000), 422, "invalid_input", "200 characters",
            label="overlong dataset name")
    # 5,000 characters overflow the 4 KB a multipart part's headers may take: the body is refused
    # before any parsing, with a reason that names the file name.
    long_name = client.post("/datasets", headers=user, files={"file": ("f" * 5000 + ".csv", b"a,b\n1,x\n", "text/csv")})
    refused(long_name, 400, "bad_request", "file name", label="overlong file name")
    refused(client.post("/datasets", headers=user, json={"file": "a,b\n1,2\n"}), 422, "invalid_input", "file",
            label="JSON instead of multipart")
    refused(client.post("/datasets", headers={**user, "content-type": "text/csv"}, content=b"a,b\n1,2\n"), 422,
            "invalid_input", "file", label="text/csv body")
    refused(client.post("/datasets", headers=user, data={"name": "no file"}), 422, "invalid_input", "file",
            label="multipart without a file")
    assert world.snapshot() == before
    world.alive()


def test_legitimate_but_odd_data_is_accepted_as_data(world: World) -> None:
    client, user = world.client, world.user
    # NaN, Infinity and friends in CSV cells: missing and (for the engine) non-finite numbers.
    cells = b"num,label\nNaN,a\ninf,b\n-Infinity,a\n1.5,b\n,a\n2,b\n"
    dataset = accepted(upload(client, user, "nan.csv", cells), 201, "NaN/Infinity CSV cells")
    num = next(c for c in dataset["columns"] if c["name"] == "num")
    assert num["type"] == "numeric" and num["missing_share"] > 0
    preview = client.get(f"/datasets/{dataset['id']}", headers=user).json()["preview"]
    assert [row["num"] for row in preview] == [None, None, None, 1.5, None, 2.0]  # JSON has no Infinity
    # SQL-ish strings are names and cells like any other.
    for i, sqlish in enumerate(SQLISH):
        content = f"name,value\n\"{sqlish.replace(chr(34), chr(34) * 2)}\",1\nother,2\n".encode()
        stored = accepted(upload(client, user, f"{sqlish}.csv", content, name=sqlish), 201, f"SQL-ish name {i}")
        assert stored["name"] == sqlish
        row = client.get(f"/datasets/{stored['id']}", headers=user).json()["preview"][0]
        assert row["name"] == sqlish
    names = {d["name"] for d in client.get("/datasets", headers=user, params={"limit": 500}).json()["items"]}
    assert set(SQLISH) <= names
    # Duplicate keys in a JSON object: the JSON rule (the last one wins), one column.
    dupes = accepted(upload(client, user, "dupes.json", b'[{"a": 1, "a": 2, "b": 3}, {"a": 4, "b": 5}]'), 201,
                     "duplicate JSON keys")
    assert [c["name"] for c in dupes["columns"]] == ["a", "b"]
    # Invalid UTF-8 that is valid cp1251 is a cp1251 file (the README's contract).
    cp1251 = accepted(upload(client, user, "cp.csv", "имя,n\nМолоко,1\nХлеб,2\n".encode("cp1251")), 201, "cp1251")
    assert cp1251["columns"][0]["name"] == "имя"
    assert client.get("/auth/user-info", headers=user).json()["username"] == "mallory"  # the users table is fine


def test_file_names_cannot_escape_the_artifacts_directory(world: World) -> None:
    client, user = world.client, world.user
    outside = sorted(p.name for p in world.root.parent.rglob("*") if not p.resolve().is_relative_to(world.root))
    names = {
        b"../../etc/passwd.csv": "passwd.csv",
        b"/etc/passwd.csv": "passwd.csv",
        b"..\\..\\windows\\win.csv": "win.csv",
        b"C:\\Users\\x\\data.csv": "data.csv",
        b"a\x00b.csv": "ab.csv",
        b"evil\x00/../../x.csv": "x.csv",
        b"tab\tand\x7fdel.csv": "tabanddel.csv",
        b"..": None,
        b"../..": None,
    }
    for raw, shown in names.items():
        body, headers = raw_multipart(raw, b"a,b\n1,x\n2,y\n")
        dataset = accepted(client.post("/datasets", headers={**user, **headers}, content=body), 201, f"file name {raw!r}")
        assert dataset["filename"] == shown, raw
        assert "\x00" not in dataset["name"] and ".." not in dataset["name"].replace("...", "")
    stored = [p for p in world.root.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(world.root) for p in stored)
    assert not any("passwd" in p.name or "win" == p.stem for p in stored)
    assert sorted(p.name for p in world.root.parent.rglob("*") if not p.resolve().is_relative_to(world.root)) == outside


def test_hostile_training_requests(world: World) -> None:
    client, user = world.client, world.user
    before = world.snapshot()
    rows = [{"x": i, "y": "same"} for i in range(30)]
    refused(client.post("/train", headers=user, json={"model_key": "one", "target": "y", "data": rows}), 422,
            "single_class", "only one class", label="one-class target (records)")
    body, headers = raw_multipart(b"one.csv", b"x,y\n" + b"".join(b"%d,same\n" % i for i in range(30)),
                                  {"model_key": "one", "target": "y"})
    refused(client.post("/train", headers={**user, **headers}, content=body), 422, "single_class", "only one class",
            label="one-class target (file)")
    for i, key in enumerate(SQLISH):
        refused(client.post("/train", headers=user, json={"model_key": key, "target": "y", "data": rows}), 400,
                "invalid_model_key", "letters, digits", label=f"SQL-ish model key {i}")
        refused(client.post("/train", headers=user, json={"model_key": "m2", "target": key, "data": rows}), 422,
                "unknown_target", "unknown target", label=f"SQL-ish target {i}")
    refused(client.post("/train", headers=user, json={"model_key": "k" * 5000, "target": "y", "data": rows}), 422,
            "invalid_input", "model_key", label="overlong model key")
    refused(client.post("/train", headers=user, json={"model_key": "m2", "target": "t" * 5000, "data": rows}), 422,
            "invalid_input", "target", label="overlong target")
    json_headers = {**user, "content-type": "application/json"}
    raw_bodies = [
        (b'{"model_key": "m2", "target": "y", "data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "deep JSON"),
        (b'{"model_key": "m2", "target": "y", "data": [{"x": NaN, "y": "a"}]}', "NaN in JSON"),
        (b'{"model_key": "m2", "target": "y", "data": [{"x": Infinity, "y": "a"}]}', "Infinity in JSON"),
        (b'{"model_key": "m2", "target": "\xff\xfe", "data": [{"x": 1}]}', "invalid UTF-8 in JSON"),
        (b'{"model_key": "m2", "target": "y"', "truncated JSON"),
        (b"[1, 2, 3]", "JSON array instead of object"),
    ]
    for content, label in raw_bodies:
        refused(client.post("/train", headers=json_headers, content=content), 422, "invalid_json", "JSON", label=label)
    refused(client.post("/train", headers={**user, "content-type": "text/xml"}, content=b"<train/>"), 415,
            "unsupported_media_type", "application/json", label="XML body")
    refused(client.post("/train", headers={**user, "content-type": "application/x-www-form-urlencoded"},
                        content=b"model_key=m2"), 415, "unsupported_media_type", "multipart", label="form body")

    def stream() -> Iterator[bytes]:
        yield b'{"model_key": "m2", "target": "y", "data": ['
        for _ in range(200):
            yield b'{"x": 1, "y": "a"},' * 200
    refused(client.post("/train", headers=json_headers, content=stream()), 413, "payload_too_large", "ML_MAX_BODY_MB",
            label="streamed train body > limit")
    body, headers = raw_multipart(b"wide.csv", wide_csv(10_000), {"model_key": "m2", "target": "c0"})
    refused(client.post("/train", headers={**user, **headers}, content=body), 413, "too_many_columns", "10,000",
            label="train on 10,000 columns")
    body, headers = raw_multipart(b"bad.csv", b"x,y\n\x98,a\n", {"model_key": "m2", "target": "y"})
    refused(client.post("/train", headers={**user, **headers}, content=body), 422, "bad_encoding", "UTF-8",
            label="train on invalid UTF-8")
    bomb, _ = compression_bombs()["strings.parquet"]
    body, headers = raw_multipart(b"bomb.parquet", bomb, {"model_key": "m2", "target": "s"})
    refused(client.post("/train", headers={**user, **headers}, content=body), 413, "table_too_large",
            "ML_MAX_TABLE_MB", label="train on a Parquet bomb")
    refused(client.post("/train", headers=user, json={"model_key": "m2", "target": "y", "data": [{"x\x00": 1, "y": "a"},
            {"x\x00": 2, "y": "b"}] * 3}), 422, "invalid_value", "NUL", label="NUL in a column name")
    refused(client.post("/train", headers=user, json={"model_key": "m2", "target": "y", "dataset_id": SQLISH[0]}),
            404, "not_found", "does not exist", label="SQL-ish dataset id")
    assert world.snapshot() == before
    world.alive()


def test_hostile_auth_inputs(world: World) -> None:
    client = world.client
    before = world.snapshot()
    hostile_names = SQLISH + ["a" * 5000, "a\x00b", "ab", "<script>alert(1)</script>", "admin\n"]
    for i, name in enumerate(hostile_names):
        refused(client.post("/auth/register", json={"username": name, "password": "long-enough-1"}), 422,
                "invalid_input", "username", label=f"register username {i}")
    for i, name in enumerate(hostile_names[:5]):  # each costs a password hash: a few suffice
        response = client.post("/auth/login", json={"username": name, "password": "long-enough-1"})
        HOSTILE.append(f"login username {i}")
        assert response.status_code in (401, 422) and response.json()["error"]["code"] in (
            "invalid_credentials", "invalid_input"), response.text
    refused(client.post("/auth/register", json={"username": "longpass", "password": "p" * 1025}), 422,
            "invalid_input", "password", label="overlong password")
    refused(client.post("/auth/login", json={"username": "mallory", "password": "p" * 1025}), 422,
            "invalid_input", "password", label="overlong login password")
    refused(client.post("/auth/login", json={"username": "admin' --", "password": "x' OR '1'='1"}), 401,
            "invalid_credentials", "wrong username or password", label="SQL-ish password")
    json_headers = {"content-type": "application/json"}
    for content, label in [
        (b'{"username": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "deep JSON (register)"),
        (b'{"username": "ok-user", "password": "\xff\xfe\xfd-password"}', "invalid UTF-8 (register)"),
    ]:
        refused(client.post("/auth/register", headers=json_headers, content=content), 400, "bad_request",
                "could not be parsed", label=label)
    refused(client.post("/auth/register", headers=json_headers, content=b'{"username": NaN, "password": "xxxxxxxxx"}'),
            422, "invalid_input", "username", label="NaN username")
    refused(client.post("/auth/register", data={"username": "formuser", "password": "long-enough-1"}), 422,
            "invalid_input", "body", label="form-encoded register")
    refused(client.post("/auth/register", headers={"content-type": "text/plain"}, content=b"formuser"), 422,
            "invalid_input", "body", label="text/plain register")
    user = world.user
    for i, name in enumerate(SQLISH):
        refused(client.put("/auth/profile/username", headers=user, json={"username": name}), 422, "invalid_input",
                "username", label=f"SQL-ish new username {i}")
    refused(client.put("/auth/profile/password", headers=user, json={"current_password": "x" * 1025,
                                                                      "new_password": "y" * 10}), 422,
            "invalid_input", "current_password", label="overlong current password")
    assert world.snapshot() == before
    # SQL-ish strings are legitimate API token names.
    for i, name in enumerate(SQLISH):
        token = accepted(client.post("/auth/tokens", headers=user, json={"name": name}), 201, f"SQL-ish token name {i}")
        assert token["name"] == name
    assert {t["name"] for t in client.get("/auth/tokens", headers=user).json()["items"]} >= set(SQLISH)
    world.alive()


def test_hostile_filters_and_ids(world: World) -> None:
    client, user, admin = world.client, world.user, world.admin
    for i, value in enumerate(SQLISH):
        for path, params in (("/jobs", {"model_key": value}), ("/events", {"username": value}),
                             ("/events", {"type": value}), ("/drift/daily-reports", {"model_key": value}),
                             ("/health/alerts", {"model_key": value})):
            answer = accepted(client.get(path, headers=admin, params=params), 200, f"SQL-ish filter {path} {i}")
            items = answer if isinstance(answer, list) else answer["items"]
            if "username" in params:  # the failed logins of test_hostile_auth_inputs, verbatim
                assert items and all(e["username"] == value for e in items), items
            else:
                assert items == []
    for path in ("/datasets/{}", "/jobs/{}", "/predict/{}", "/models/{}", "/drift/reports/{}"):
        response = client.get(path.format(SQLISH[0]), headers=user)
        HOSTILE.append(f"SQL-ish id {path}")
        assert response.status_code in (404, 422) and "error" in response.json(), response.text
    for path in ("/events/{}", "/auth/users/{}"):
        refused(client.get(path.format(10**20), headers=admin), 422, "invalid_value", "range", label=f"huge id {path}")
    assert client.get("/auth/users", headers=admin).json()["total"] >= 2
    world.alive()


def test_hostile_sync_predictions(world: World) -> None:
    world.trained()
    client, user = world.client, world.user
    before = world.snapshot()["rows"]
    path = "/models/m1/predict"
    json_headers = {**user, "content-type": "application/json"}
    # Not JSON (RFC 8259), though Python's reader takes them: refused as /train and /predict do;
    # a missing value is null.
    for token in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9" * 400):
        refused(client.post(path, headers=json_headers, content=b'{"data": [{"x": ' + token + b', "t": "+1+1"}]}'),
                422, "invalid_json", "not valid JSON", label=f"x={token[:8]!r} (sync)")
    answer = accepted(client.post(path, headers=user, json={"data": [{"x": None, "t": "+1+1"}]}), 200, "x=null")
    assert answer["results"][0]["prediction"] in (FORMULAS[2], FORMULAS[3])
    formulas = accepted(client.post(path, headers=user, json={"data": [{"x": 1, "t": f} for f in FORMULAS + SQLISH]}),
                        200, "formula and SQL-ish values")
    assert len(formulas["results"]) == len(FORMULAS) + len(SQLISH)
    wide = accepted(client.post(path, headers=user, json={"data": [{"x": 1, "t": "a", **{f"c{i}": i for i in range(10_000)}}]}),
                    200, "10,000 extra keys")
    assert len(wide["ignored_columns"]) == 10_000
    refused(client.post(path, headers=json_headers, content=b'{"data": [{"x": ' + b"9" * 5000 + b"}]}"), 422,
            "invalid_json", "infinity", label="5,000-digit number")
    refused(client.post(path, headers=json_headers, content=b'{"data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"), 422,
            "invalid_json", "depth", label="deep JSON (sync)")
    refused(client.post(path, headers=json_headers, content=b'{"data": [{"t": "\xff\xfe"}]}'), 422, "invalid_json",
            "utf-8", label="invalid UTF-8 (sync)")
    refused(client.post(path, headers={**user, "content-type": "text/plain"}, content=b"x=1"), 415,
            "unsupported_media_type", "application/json", label="text/plain (sync)")
    refused(client.post(path, headers=user, json={"data": [{"x": 1, "t": "a"}] * 1001}), 413, "batch_too_large",
            "ML_SYNC_PREDICT_MAX_ROWS", label="too many sync rows")
    big = {"data": [{"x": 1, "t": "y" * 1000}] * 600}  # 600 KB
    refused(client.post(path, headers=user, json=big), 413, "payload_too_large", "ML_MAX_BODY_MB", label="sync body > limit")
    for i, key in enumerate([*SQLISH, "k" * 5000]):
        refused(client.post(f"/models/{key}/predict", headers=user, json={"data": [{"x": 1}]}), 404, "unknown_model",
                "does not exist", label=f"hostile model key in the path {i}")
    assert world.snapshot()["rows"] == before
    world.alive()


def test_hostile_batch_predictions_and_the_csv_export_neutralises_formulas(world: World) -> None:
    world.trained()
    client, user = world.client, world.user
    before = world.snapshot()
    refusals = [
        ({"json": {"model_key": "m1", "data": [{"x": 1}], "dataset_id": SQLISH[1]}}, 422, "data_source"),
        ({"json": {"model_key": SQLISH[0], "data": [{"x": 1}]}}, 404, "unknown_model"),
        ({"json": {"model_key": "m1", "dataset_id": SQLISH[0]}}, 404, "not_found"),
        ({"content": b'{"model_key": "m1", "data": [{"x": NaN}]}'}, 422, "invalid_json"),
        ({"content": b'{"model_key": "m1", "data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"}, 422, "invalid_json"),
        ({"content": b'{"model_key": "m1", "data": [{"t": "\xc3\x28"}]}'}, 422, "invalid_json"),
    ]
    for kwargs, status, code in refusals:
        headers = {**user, "content-type": "application/json"} if "content" in kwargs else user
        refused(client.post("/predict", headers=headers, **kwargs), status, code, label=f"/predict {code}")
    files = {
        b"empty.csv": (b"", 422, "empty_file"),
        b"header.csv": (b"x,t\n", 422, "empty_file"),
        b"bad.csv": (b"x,t\n\x98,a\n", 422, "bad_encoding"),
        b"wide.csv": (wide_csv(10_000), 413, "too_many_columns"),
        b"bomb.parquet": (compression_bombs()["numbers.parquet"][0], 413, "table_too_large"),
    }
    for name, (content, status, code) in files.items():
        body, headers = raw_multipart(name, content, {"model_key": "m1"})
        refused(client.post("/predict", headers={**user, **headers}, content=body), status, code, label=f"/predict file {name!r}")
        body, headers = raw_multipart(name, content, {"model_key": "m1", "target": "t"})
        refused(client.post("/quality", headers={**user, **headers}, content=body), status, code, label=f"/quality file {name!r}")
    assert world.snapshot() == before
    world.alive()

    # Formula strings in the input (cells and a column name) and in the predicted classes.
    rows = [{"x": i, "t": f, "=evil()": f} for i, f in enumerate(FORMULAS + SQLISH + ["plain", "-5", "a=b"])]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))  # quotes the cell holding a CR
    writer.writeheader()
    writer.writerows(rows)
    body, headers = raw_multipart(b"formulas.csv", buffer.getvalue().encode(), {"model_key": "m1"})
    for label, response in (("formulas (file)", client.post("/predict", headers={**user, **headers}, content=body)),
                            ("formulas (records)", client.post("/predict", headers=user, json={"model_key": "m1", "data": rows}))):
        job_id = accepted(response, 202, label)["job_id"]
        assert wait_job(client, user, job_id)["status"] == "completed"
        exported = client.get(f"/predict/{job_id}/export", headers=user, params={"format": "csv"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(exported.text)))
        assert table[0][:3] == ["x", "t", "'=evil()"]
        cells = [cell for line in table for cell in line]
        dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
        assert dangerous == [] or all(_is_number(c) for c in dangerous), dangerous
        for f in FORMULAS:
            assert "'" + f.strip() in cells, f
        assert {row[-2] for row in table[1:]} <= {"'" + FORMULAS[2], "'" + FORMULAS[3]}
        assert "plain" in cells and "a=b" in cells and SQLISH[0] in cells
        as_json = client.get(f"/predict/{job_id}/export", headers=user, params={"format": "json"}).json()
        assert {r["prediction"] for r in as_json} <= {FORMULAS[2], FORMULAS[3]}  # JSON keeps the data as it is


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_rejections_store_nothing_on_either_backend(backend_world: World, database: Database) -> None:
    """The refusals that reach the database (PostgreSQL refuses NUL characters and integers
    beyond 64 bits, which SQLite stores) answer alike on both backends and change nothing."""
    world = backend_world
    client, user, admin = world.client, world.user, world.admin
    before = world.snapshot()
    refused(upload(client, user, "ok.csv", b"a,b\n1,x\n2,y\n", name="x\x00y"), 422, "invalid_value", "NUL",
            label="NUL in dataset name")
    refused(upload(client, user, "nul.csv", b"a\x00z,b\n1,x\n2,y\n"), 422, "invalid_value", "NUL",
            label="NUL in a column name")
    refused(client.post("/train", headers=user, json={"model_key": "m", "target": "y\x00", "data": [
        {"x": 1, "y\x00": "a"}, {"x": 2, "y\x00": "b"}] * 2}), 422, "invalid_value", "NUL", label="NUL target")
    refused(client.post("/train", headers=user, json={"model_key": "m", "target": "y", "data": [{"x": 1, "y": "a"}] * 5}),
            422, "single_class", "only one class", label="one class")
    refused(upload(client, user, "bomb.parquet", compression_bombs()["strings.parquet"][0]), 413, "table_too_large",
            "ML_MAX_TABLE_MB", label="Parquet bomb")
    refused(upload(client, user, "deep.json", b"[" * 10_000 + b"]" * 10_000), 422, "bad_json", "depth", label="deep JSON")
    refused(client.post("/auth/register", json={"username": SQLISH[1], "password": "long-enough-1"}), 422,
            "invalid_input", "username", label="SQL-ish register")
    for path in ("/events/{}", "/auth/users/{}"):
        refused(client.get(path.format(2**63), headers=admin), 422, "invalid_value", "range", label=f"2**63 id {path}")
    refused(client.post("/auth/login", json={"username": "mallory\x00", "password": "user-password-1"}), 401,
            "invalid_credentials", "wrong username or password", label="NUL in login username")
    for path, params in (("/jobs", {"model_key": "a\x00b"}), ("/events", {"username": "a\x00b"})):
        refused(client.get(path, headers=admin, params=params), 422, "invalid_value", "NUL", *params,
                label=f"NUL filter {path}")  # tests/reliability/test_nul_in_urls.py tries every parameter
    for path in ("/models/a%00b", "/datasets/a%00b", "/predict/a%00b", "/jobs/a%00b"):
        refused(client.get(path, headers=user), 422, "invalid_value", "NUL", label=f"NUL in path {path}")
    assert world.snapshot() == before
    world.alive()
    assert client.post("/auth/login", json={"username": "mallory", "password": "user-password-1"}).status_code == 200
