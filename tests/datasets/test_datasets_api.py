"""Uploading tables: formats, encodings, bad files, visibility; nothing half-stored."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.helpers import Accounts, adult_sample, csv_bytes


def stored_files(settings) -> list[str]:
    root = settings.effective_artifacts_root / "datasets"
    return sorted(p.name for p in root.glob("*")) if root.exists() else []


def post_file(client: TestClient, headers: dict, filename: str, content: bytes, **data):
    return client.post("/datasets", headers=headers, files={"file": (filename, content, "application/octet-stream")}, data=data)


def test_upload_formats(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("uploader")
    frame = adult_sample(50)
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    bodies = {
        "adult.csv": csv_bytes(frame),
        "adult.json": json.dumps(frame.astype(object).where(frame.notna(), None).to_dict("records")).encode(),
        "adult.jsonl": frame.to_json(orient="records", lines=True).encode(),
        "adult.parquet": parquet.getvalue(),
    }
    for name, body in bodies.items():
        response = post_file(client, headers, name, body, name=f"sample {name}")
        assert response.status_code == 201, (name, response.text)
        dataset = response.json()
        assert dataset["rows"] == 50 and dataset["name"] == f"sample {name}"
        types = {c["name"]: c["type"] for c in dataset["columns"]}
        assert types["age"] == "numeric" and types["workclass"] == "categorical", name
    assert client.get("/datasets", headers=headers).json()["total"] == 4


def test_russian_cp1251_csv_with_semicolons(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("rus")
    text = "наименование;категория;цена\n" + "\n".join(
        f"Молоко пастеризованное {i}%;молочные;{50 + i}" for i in range(30)
    )
    response = post_file(client, headers, "номенклатура.csv", text.encode("cp1251"))
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert [c["name"] for c in dataset["columns"]] == ["наименование", "категория", "цена"]
    detail = client.get(f"/datasets/{dataset['id']}", headers=headers).json()
    assert detail["preview"][0]["наименование"] == "Молоко пастеризованное 0%"
    assert detail["filename"] == "номенклатура.csv"


@pytest.mark.parametrize(
    ("name", "content", "status", "message"),
    [
        ("empty.csv", b"", 422, "empty"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5,6\n", 422, "row"),
        ("bad.json", b"{not json", 422, "json"),
        ("bad.parquet", b"PAR1 not really", 422, "parquet"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_stored(
    client: TestClient, accounts: Accounts, settings, name, content, status, message
) -> None:
    _, headers = accounts.login_as("careless")
    response = post_file(client, headers, name, content)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"].lower()
    assert client.get("/datasets", headers=headers).json()["total"] == 0
    assert stored_files(settings) == []


def test_path_traversal_in_the_file_name_is_harmless(client: TestClient, accounts: Accounts, settings) -> None:
    _, headers = accounts.login_as("sneaky")
    response = post_file(client, headers, "../../../etc/passwd.csv", b"a,b\n1,x\n2,y\n3,z\n")
    assert response.status_code == 201
    assert response.json()["filename"] == "passwd.csv"
    assert len(stored_files(settings)) == 1 and stored_files(settings)[0].endswith(".parquet")


def test_a_long_file_name_is_cut_to_the_columns_keeping_its_format(client: TestClient, accounts: Accounts) -> None:
    # PostgreSQL refused the derived name (over datasets.name's 200 characters) with 422, and the
    # cut at 255 dropped ".parquet", so the format had to be sniffed.
    _, headers = accounts.login_as("long-names")
    parquet = io.BytesIO()
    adult_sample(20).to_parquet(parquet, index=False)
    response = post_file(client, headers, "x" * 300 + ".parquet", parquet.getvalue())
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert len(dataset["name"]) == 200 and dataset["name"].endswith(".parquet")
    assert dataset["format"] == "parquet" and dataset["rows"] == 20


def test_datasets_are_private_and_deletable(client: TestClient, accounts: Accounts, settings) -> None:
    _, owner = accounts.login_as("owner")
    _, other = accounts.login_as("other")
    dataset = post_file(client, owner, "d.csv", csv_bytes(adult_sample(20))).json()
    assert client.get(f"/datasets/{dataset['id']}", headers=other).status_code == 404
    assert client.delete(f"/datasets/{dataset['id']}", headers=other).status_code == 404
    assert client.get(f"/datasets/{dataset['id']}", headers=accounts.system_admin).status_code == 200
    detail = client.get(f"/datasets/{dataset['id']}", headers=owner).json()
    assert len(detail["preview"]) == 20 and detail["preview"][0]["age"] is not None
    assert client.delete(f"/datasets/{dataset['id']}", headers=owner).status_code == 204
    assert client.get(f"/datasets/{dataset['id']}", headers=owner).status_code == 404
    assert stored_files(settings) == []


def test_upload_size_limit(tmp_path, database) -> None:
    from mlservice.app import create_app
    from tests.conftest import make_settings
    from tests.helpers import Accounts

    settings = make_settings(tmp_path, database, max_body_mb=0.01)
    with TestClient(create_app(settings, database)) as client:
        from mlservice.auth.service import ensure_first_admin

        with database.session(write=True) as session:
            ensure_first_admin(session, settings)
        headers = Accounts(client).system_admin
        big = pd.DataFrame({"a": range(5000), "b": ["x" * 10] * 5000})
        response = post_file(client, headers, "big.csv", csv_bytes(big))
        assert response.status_code == 413
        assert "ML_MAX_BODY_MB" in response.json()["error"]["message"]


def test_sweep_removes_only_old_leftovers_of_crashes(client: TestClient, accounts: Accounts, settings, database) -> None:
    """What a crash leaves (a dataset file whose row never committed, an atomic write's
    temporary file) goes once it is a day old; live files and young leftovers stay."""
    import os
    import time

    from mlservice.artifacts import ArtifactStore
    from mlservice.scheduler import LEFTOVER_AGE_S, sweep_leftovers

    _, headers = accounts.login_as("sweeper")
    kept = post_file(client, headers, "kept.csv", csv_bytes(adult_sample(20)))
    assert kept.status_code == 201
    root = settings.effective_artifacts_root
    day_old = time.time() - LEFTOVER_AGE_S - 60
    orphan = root / "datasets" / ("a" * 32 + ".parquet")
    young_orphan = root / "datasets" / ("b" * 32 + ".parquet")
    stale_tmp = root / "models" / "m" / f".bundle.joblib.{'c' * 32}.tmp"
    young_tmp = root / "datasets" / f".x.parquet.{'d' * 32}.tmp"
    not_ours = root / "datasets" / ".notes.tmp"
    for path in (orphan, young_orphan, stale_tmp, young_tmp, not_ours):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"leftover")
    for path in (orphan, stale_tmp, not_ours):
        os.utime(path, (day_old, day_old))
    live = root / "datasets" / f"{kept.json()['id']}.parquet"
    os.utime(live, (day_old, day_old))  # old, but its row exists

    sweep_leftovers(database, ArtifactStore(root))

    assert not orphan.exists() and not stale_tmp.exists()
    assert young_orphan.exists() and young_tmp.exists() and not_ours.exists() and live.exists()
    assert client.get(f"/datasets/{kept.json()['id']}", headers=headers).status_code == 200
