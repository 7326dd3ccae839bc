"""`mlservice backup` and `mlservice restore` (issue #20), on SQLite and on PostgreSQL.

A real `mlservice serve` with two trained versions is backed up while sync predictions are being
answered and a training runs. The backup is restored into a fresh data directory (and, on
PostgreSQL, a fresh empty database), a server is started on it, and four things are checked:
1. integrity: the manifest verifies and the restored database has the snapshot's row counts;
2. every version predicts exactly as before on the same rows;
3. every prediction acknowledged before the backup began is in the restored prediction log;
4. no database row refers to a missing artifact (and every referenced one loads).
Then the refusals: a non-empty target, a corrupt file, a partial backup (a file gone, no manifest)
each stop with a clear error (exit code 2 from the CLI) and leave the target exactly as it was."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import String, create_engine

from mlservice.artifacts import ArtifactStore
from mlservice.backup.database import postgres_tables, row_counts
from mlservice.backup.manifest import BackupError, Manifest, verify
from mlservice.backup.references import (
    ARTIFACT_COLUMNS,
    NOT_ARTIFACT_COLUMNS,
    artifact_references,
)
from mlservice.backup.service import create_backup, restore_backup
from mlservice.db import Database
from mlservice.db.migrate import alembic_config, current_revision, head_revision, upgrade
from mlservice.db.migrations.metadata import metadata
from mlservice.predictions.log import read_log
from mlservice.settings import Settings
from tests.backends import POSTGRES_SERVER_URL
from tests.conftest import make_settings
from tests.distributed.cluster import fresh_postgres_database
from tests.helpers import adult_sample, csv_bytes, records, wait_for
from tests.live_server import base_env, live_server
from tests.reliability.test_crash_safety import (
    SMALL,
    SyncPredictions,
    check_consistency,
    finished,
    submit,
    training_underway,
    upload,
)

VERSIONS = ("1.0.0", "1.1.0")
# Still fitting when the server stops: on random labels, one row per step, the loss keeps falling
# for minutes (the net memorises the noise). With [16] and 200-row batches it stopped after ~3 s on
# a quiet machine, before the backup ended.
LONG = {"hidden_layer_sizes": [256], "max_iter": 100_000, "early_stopping": False, "batch_size": 1}


def test_every_path_column_is_known_to_the_backup() -> None:
    """A new column holding an artifact path must be added to the backup's references (or be
    declared not to be one), or backups would silently leave its files behind."""
    path_columns = {
        f"{table.name}.{column.name}"
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, String)
        and (column.name == "path" or column.name.endswith("_path"))
    }
    assert path_columns == set(ARTIFACT_COLUMNS) | set(NOT_ARTIFACT_COLUMNS)


def test_a_backup_of_an_older_release_is_migrated_on_restore(tmp_path: Path) -> None:
    """A backup keeps its database's migration as it was; restore upgrades it to this release."""
    source = make_settings(tmp_path / "old")
    database = Database(source.effective_database_url)
    older = (
        ScriptDirectory.from_config(alembic_config(database))
        .get_revision(head_revision())
        .down_revision
    )
    upgrade(database, older)
    database.dispose()
    summary = create_backup(source, tmp_path / "backup")
    assert summary.manifest.alembic_revision == older

    # A restore that fails once it has begun writing takes back what it wrote.
    shutil.copytree(tmp_path / "backup", tmp_path / "miscounted")
    manifest = json.loads((tmp_path / "miscounted/manifest.json").read_text())
    manifest["tables"]["alembic_version"] = 2
    (tmp_path / "miscounted/manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="does not match the backup's row counts"):
        restore_backup(make_settings(tmp_path / "new"), tmp_path / "miscounted")
    assert not (tmp_path / "new").exists(), list((tmp_path / "new").rglob("*"))

    target = make_settings(tmp_path / "new")
    restore_backup(target, tmp_path / "backup")
    restored = Database(target.effective_database_url)
    try:
        assert current_revision(restored) == head_revision()
    finally:
        restored.dispose()


def test_backup_refusals_leave_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    settings = make_settings(tmp_path)
    with pytest.raises(BackupError, match="is not empty: give a new path"):
        create_backup(settings, occupied)
    with pytest.raises(BackupError, match="there is no database at"):
        create_backup(settings, tmp_path / "backup")
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without the PostgreSQL client
    postgres = make_settings(tmp_path, database_url=POSTGRES_SERVER_URL)
    with pytest.raises(BackupError, match="pg_dump is not on PATH"):
        create_backup(postgres, tmp_path / "backup")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]


@contextmanager
def fresh_storage(backend: str, directory: Path) -> Iterator[dict[str, str]]:
    """ML_* settings of a new, empty place for a service's data."""
    if backend == "sqlite":
        yield {"ML_DATA_DIR": str(directory)}
    else:
        with fresh_postgres_database("mlservice_backup") as url:
            yield {"ML_DATA_DIR": str(directory), "ML_DATABASE_URL": url}


def mlservice(home: Path, storage: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlservice", *args],
        check=False,
        env=base_env(home) | storage,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=180,
    )


def settings_of(storage: dict[str, str]) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=Path(storage["ML_DATA_DIR"]),
        database_url=storage.get("ML_DATABASE_URL"),
    )


def state_of(storage: dict[str, str]) -> tuple[list[tuple[str, int]], list[str] | None]:
    """Everything a restore could have changed: the files under the data directory (names and
    sizes) and, on PostgreSQL, the database's tables."""
    data_dir = Path(storage["ML_DATA_DIR"])
    files = (
        sorted(
            (p.relative_to(data_dir).as_posix(), p.stat().st_size)
            for p in data_dir.rglob("*")
            if p.is_file()
        )
        if data_dir.exists()
        else []
    )
    url = settings_of(storage).effective_database_url
    tables = postgres_tables(url) if url.startswith("postgresql") else None
    return files, tables


def predict_each_version(base: str, headers: dict, rows: list[dict]) -> dict[str, list[dict]]:
    answers = {}
    for version in VERSIONS:
        response = httpx.post(
            f"{base}/models/backed/predict",
            headers=headers,
            timeout=60,
            json={"version": version, "data": rows},
        )
        assert response.status_code == 200, response.text
        answers[version] = response.json()["results"]
    return answers


def refused_by_cli(home: Path, storage: dict[str, str], backup: Path, expected: str) -> None:
    before = state_of(storage)
    done = mlservice(home, storage, "restore", str(backup))
    assert done.returncode == 2, done.stdout + done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert state_of(storage) == before  # nothing written, nothing removed


def refused(storage: dict[str, str], backup: Path, expected: str) -> None:
    """The same refusal in-process (a CLI start costs seconds on the suite's busy machine)."""
    before = state_of(storage)
    with pytest.raises(BackupError, match=expected):
        restore_backup(settings_of(storage), backup)
    assert state_of(storage) == before


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_backup_of_a_running_service_restores_elsewhere(tmp_path: Path, backend: str) -> None:
    backup = tmp_path / "backup"
    with (
        fresh_storage(backend, tmp_path / "source") as source,
        fresh_storage(backend, tmp_path / "restored") as target,
    ):
        with live_server(tmp_path, ML_RATE_LIMIT_EXPENSIVE="off", **source) as server:
            base = server.url
            headers = {"Authorization": f"Bearer {server.admin_token()}"}
            dataset = upload(base, headers, "train.csv", csv_bytes(adult_sample(400)))
            noise = adult_sample(2000, seed=5)
            noise["income"] = np.random.default_rng(0).choice(["a", "b"], len(noise))
            noise_set = upload(base, headers, "noise.csv", csv_bytes(noise))
            for _version in VERSIONS:
                trained = submit(
                    base,
                    headers,
                    "/train",
                    {
                        "model_key": "backed",
                        "target": "income",
                        "dataset_id": dataset["id"],
                        "params": SMALL,
                    },
                )
                assert finished(base, headers, trained)["status"] == "completed"
            rows = records(adult_sample(40, seed=11).drop(columns=["income"]))
            batch = submit(base, headers, "/predict", {"model_key": "backed", "data": rows})
            assert finished(base, headers, batch)["status"] == "completed"
            expected = predict_each_version(base, headers, rows)

            predictions = SyncPredictions(base, headers, "backed")
            predictions.start()
            training = submit(
                base,
                headers,
                "/train",
                {
                    "model_key": "during",
                    "target": "income",
                    "dataset_id": noise_set["id"],
                    "params": LONG,
                },
            )
            wait_for(
                lambda: training_underway(base, headers, training), "the training to be fitting"
            )
            wait_for(lambda: len(predictions.acknowledged) >= 5, "sync predictions to be answered")
            acknowledged = list(predictions.acknowledged)  # all answered before the backup began
            done = mlservice(tmp_path, source, "backup", str(backup))
            during = len(predictions.acknowledged) - len(acknowledged)
            assert training_underway(base, headers, training)  # the backup ran while it did
            predictions.stop.set()
            predictions.join(30)
            assert done.returncode == 0, done.stdout + done.stderr
            assert during > 0  # the predictions went on while the backup ran

        # 1. integrity
        manifest = Manifest.load(backup)
        verify(backup, manifest)
        assert manifest.database_kind == backend and manifest.missing_references == []
        assert (
            manifest.tables["datasets"],
            manifest.tables["model_versions"],
            manifest.tables["jobs"],
        ) == (2, 2, 4)
        assert not list(tmp_path.glob(".backup.partial-*"))
        done = mlservice(tmp_path, target, "restore", str(backup))
        assert done.returncode == 0, done.stdout + done.stderr
        restored_url = settings_of(target).effective_database_url
        restored_counts = row_counts(restored_url)
        assert {name: restored_counts[name] for name in manifest.tables} == manifest.tables
        artifacts = ArtifactStore(settings_of(target).effective_artifacts_root)

        # 3. every acknowledged prediction is in the restored log (read before any server writes)
        logged = set(read_log(artifacts, "backed", columns=["fnlwgt"])["fnlwgt"])
        missing = set(acknowledged) - logged
        assert not missing, (
            f"{len(missing)} of {len(acknowledged)} acknowledged predictions are not in the restored log"
        )

        with live_server(tmp_path, **target) as restored:
            headers = {"Authorization": f"Bearer {restored.admin_token()}"}
            # 2. the same answers from every version
            assert predict_each_version(restored.url, headers, rows) == expected
            interrupted = httpx.get(
                f"{restored.url}/jobs/{training}", headers=headers, timeout=30
            ).json()
            assert interrupted["status"] == "failed" and interrupted["error"].startswith(
                "interrupted"
            ), interrupted
            results = httpx.get(
                f"{restored.url}/predict/{batch}", headers=headers, timeout=30
            ).json()
            assert len(results["results"]) == len(rows), results

        # 4. nothing refers to a missing artifact; every dataset, bundle and result loads
        assert check_consistency(restored_url, artifacts.root) == {
            "jobs": 4,
            "datasets": 2,
            "versions": 2,
        }
        engine = create_engine(restored_url)
        try:
            with engine.connect() as connection:
                references = artifact_references(connection)
        finally:
            engine.dispose()
        assert references and all(artifacts.path(r.path).exists() for r in references), references

        # The refusals. Onto a non-empty target (the one just restored and served):
        refused_by_cli(tmp_path, target, backup, "not empty")
        with fresh_storage(backend, tmp_path / "spare") as spare:
            damaged = tmp_path / "damaged"
            shutil.copytree(backup, damaged)
            bundle_file = next(damaged.glob("artifacts/models/backed/*/network.npz"))
            content = bytearray(bundle_file.read_bytes())
            content[len(content) // 2] ^= 0xFF
            bundle_file.write_bytes(bytes(content))
            refused(spare, damaged, "checksum mismatch")

            partial = tmp_path / "partial"
            shutil.copytree(backup, partial)
            (partial / "artifacts" / dataset_path(partial)).unlink()
            refused(spare, partial, "missing")
            (partial / "manifest.json").unlink()
            refused(spare, partial, "has no manifest.json")
            # A new data directory, but the database of a service that runs
            elsewhere = {**spare, "ML_DATABASE_URL": restored_url}
            refused(
                elsewhere,
                backup,
                "already exists" if backend == "sqlite" else "restore only into an empty database",
            )


def dataset_path(backup: Path) -> str:
    manifest = json.loads((backup / "manifest.json").read_text())
    return next(path for path in manifest["references"] if path.startswith("datasets/"))
