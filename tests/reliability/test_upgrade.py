"""Upgrade from the previous release (0.12.0) to this one.

The fixtures were made by 0.12.0's own server, filled through its API as a team would use it
(tests/fixtures/upgrade/make_fixture.py, run from the tag's sources): a SQLite data directory as
the stopped server left it (its WAL file included), and a ``pg_dump`` of a PostgreSQL database
with its artifacts. Each is unpacked (the dump loaded into a throw-away database), then this
release's ``mlservice migrate`` runs, and:

- the database is at this release's head revision, and every row of every table that 0.12.0
  wrote is still there with the same value in every column it had;
- every artifact is present and unchanged, and every path the database holds points at a file;
- users log in with their passwords (a deactivated one is refused, a deleted one unknown), every
  session and API token that worked still authenticates as its owner, and the revoked, deleted,
  logged-out and deactivated-owner ones are still refused;
- the model keeps its versions and active version, each pre-upgrade version predicts the fixed
  rows as 0.12.0 answered (the same class; confidence and every probability to float32
  precision, since the upgrade also brings the newest numpy/BLAS in range), the batch job's
  results are unchanged, and jobs, drift reports, alerts and events read through the API as before;
- the prediction log 0.12.0 wrote reads back row for row, and this release's own work runs on
  the old versions: a drift check on the old log and a retrain from the old training data.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import make_url

from mlservice.app import create_app
from mlservice.artifacts import ArtifactStore
from mlservice.auth.models import AuthToken
from mlservice.auth.tokens import hash_secret
from mlservice.db import Database
from mlservice.db.migrate import current_revision, head_revision
from mlservice.ml import load_bundle
from mlservice.predictions.log import read_log
from tests.conftest import make_settings
from tests.distributed.cluster import fresh_postgres_database
from tests.fixtures.upgrade.make_fixture import ADMIN_PASSWORD, Rows, fixture_paths, table_rows
from tests.helpers import login, wait_job
from tests.live_server import MLSERVICE, base_env

RELEASE = "v0.12.0"
# Columns a migration since 0.12.0 rewrites on purpose (table -> column names): every other value
# that 0.12.0 stored must come through the upgrade unchanged. None so far.
REWRITTEN: dict[str, set[str]] = {}


@dataclass
class Upgraded:
    backend: str
    expected: dict[str, Any]
    data: Path
    database: Database
    before: Rows  # every table's rows as 0.12.0 left them, by primary key
    after: Rows  # the same, once `mlservice migrate` has run
    migrate_output: str
    client: TestClient

    @property
    def admin(self) -> dict[str, str]:
        return login(self.client, "admin", ADMIN_PASSWORD)

    @property
    def made_at(self) -> datetime:
        return datetime.fromisoformat(self.expected["made_at"])


def load_dump(url: str, dump: Path) -> None:
    """A plain-SQL pg_dump, loaded with psycopg; psql's meta-commands (\\restrict) are skipped."""
    script = "\n".join(line for line in dump.read_text().splitlines() if not line.startswith("\\"))
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(script)  # type: ignore[call-overload]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def upgraded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Upgraded]:
    backend = request.param
    archive, expectations = fixture_paths(RELEASE, backend)
    expected = json.loads(expectations.read_text())
    home = tmp_path_factory.mktemp(f"upgrade-{backend}")
    data = home / "data"
    with tarfile.open(archive) as tar:
        tar.extractall(data, filter="data")
    with ExitStack() as stack:
        if backend == "postgresql":
            url = stack.enter_context(fresh_postgres_database("mlservice_upgrade"))
            load_dump(url, data / "dump.sql")
        else:
            url = f"sqlite:///{data / 'mlservice.db'}"
        database = Database(url, timeout=30)
        stack.callback(database.dispose)
        before = table_rows(database)
        env = base_env(home) | {"ML_DATA_DIR": str(data), "ML_DATABASE_URL": url}
        migrate = subprocess.run(
            [*MLSERVICE, "migrate"],
            check=False,
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        after = table_rows(database)
        # No retrain behind the tests' back: the last test starts one itself.
        settings = make_settings(home, database, auto_retrain=False)
        client = stack.enter_context(TestClient(create_app(settings, database)))
        yield Upgraded(backend, expected, data, database, before, after, migrate.stdout, client)


def test_migrate_reaches_head_and_keeps_every_row(upgraded: Upgraded) -> None:
    expected = upgraded.expected
    assert {table: len(rows) for table, rows in upgraded.before.items()} == expected["tables"], (
        "the unpacked fixture differs from what make_fixture.py counted"
    )
    assert upgraded.before["alembic_version"] == {
        (expected["alembic_revision"],): {"version_num": expected["alembic_revision"]}
    }
    assert current_revision(upgraded.database) == head_revision()
    assert f"database at revision {head_revision()}" in upgraded.migrate_output

    changed = []
    for table, rows in upgraded.before.items():
        if table == "alembic_version":
            continue
        assert table in upgraded.after, f"table {table} is gone after the upgrade"
        assert len(upgraded.after[table]) == len(rows), (
            f"{table}: {len(rows)} rows before, {len(upgraded.after[table])} after"
        )
        for key, row in rows.items():
            now = upgraded.after[table].get(key)
            if now is None:
                changed.append(f"{table} {key}: missing")
                continue
            changed += [
                f"{table} {key}.{column}: {value!r} -> {now.get(column)!r}"
                for column, value in row.items()
                if column not in REWRITTEN.get(table, set())
                and (column not in now or now[column] != value)
            ]
    assert not changed, f"{len(changed)} value(s) changed by the upgrade:\n" + "\n".join(
        changed[:20]
    )


def test_every_artifact_is_present_and_unchanged(upgraded: Upgraded) -> None:
    root = upgraded.data / "artifacts"
    damaged = [
        name
        for name, meta in upgraded.expected["artifacts"].items()
        if not (root / name).is_file()
        or sha256((root / name).read_bytes()).hexdigest() != meta["sha256"]
    ]
    assert not damaged, damaged
    referenced = [row["path"] for row in upgraded.after["datasets"].values()]
    for version in upgraded.after["model_versions"].values():
        referenced += [version["bundle_path"], version["training_data_path"]]
        # This release's loader checks every file of the bundle against its SHA-256.
        load_bundle(root / version["bundle_path"], root)
    missing = [path for path in referenced if not (root / path).exists()]
    assert len(referenced) == 6 and not missing, missing


def test_accounts_and_tokens_authenticate_as_before(upgraded: Upgraded) -> None:
    client, expected = upgraded.client, upgraded.expected
    users = client.get("/auth/users?include_deleted=true&limit=100", headers=upgraded.admin).json()
    assert users["total"] == expected["api"]["users"]
    listed = {u["username"]: u for u in users["items"]}
    for username, user in expected["users"].items():
        response = client.post(
            "/auth/login", json={"username": username, "password": user["password"]}
        )
        client.cookies.clear()
        if user["state"] == "deleted":
            assert response.status_code == 401, (username, response.text)
            continue
        assert listed[username]["tier"] == user["tier"] and listed[username]["id"] == user["id"]
        if user["state"] == "inactive":
            assert (
                response.status_code == 403
                and response.json()["error"]["code"] == "account_inactive"
            )
        else:
            assert response.status_code == 200, (username, response.text)
            assert response.json()["user"]["tier"] == user["tier"]

    # Sessions live at most a year (API tokens ten): once the fixture is older, they must be refused.
    with upgraded.database.session() as session:
        expiry = dict(session.execute(select(AuthToken.token_hash, AuthToken.expires_at)).all())
    now = datetime.now(UTC)
    assert {t["kind"] for t in expected["tokens"] if t["expect"] == "ok"} == {"session", "api"}
    for token in expected["tokens"]:
        response = client.get(
            "/auth/user-info", headers={"Authorization": f"Bearer {token['secret']}"}
        )
        works = token["expect"] == "ok" and expiry[hash_secret(token["secret"])] > now
        if works:
            assert response.status_code == 200, (token["user"], token["kind"], response.text)
            assert response.json()["username"] == token["user"]
        else:
            assert response.status_code == 401, (token, response.text)


def assert_same_predictions(now: list[dict], before: list[dict], version: str) -> None:
    """The same labels, and the same probabilities to float32 precision: the upgrade installs
    the newest numpy/BLAS in range too, whose kernels may sum in another order and move the last
    bit of a float32 (seen: 0.59273088 vs 0.59273082 after a numpy update)."""
    assert [row["prediction"] for row in now] == [row["prediction"] for row in before], (
        f"version {version} predicts other labels after the upgrade"
    )
    for row, old in zip(now, before, strict=True):
        assert row["probabilities"].keys() == old["probabilities"].keys(), (version, row, old)
        numbers = [row["confidence"], *row["probabilities"].values()]
        recorded = [old["confidence"], *(old["probabilities"][k] for k in row["probabilities"])]
        assert np.allclose(numbers, recorded, rtol=0, atol=1e-6), (
            f"version {version} predicts other probabilities after the upgrade", row, old
        )


def test_each_version_predicts_as_before(upgraded: Upgraded) -> None:
    client, expected = upgraded.client, upgraded.expected
    headers = upgraded.admin
    model = client.get("/models/adult", headers=headers).json()
    assert model["active_version"] == expected["model"]["active_version"]
    assert sorted(v["version"] for v in model["versions"]) == expected["model"]["versions"]
    assert len(model["changes"]) == expected["model"]["changes"]
    for version, recorded in expected["predictions"].items():
        assert client.get(f"/models/adult/versions/{version}", headers=headers).status_code == 200
        answer = client.post(
            "/models/adult/predict",
            headers=headers,
            json={"data": expected["fixed_rows"], "version": version},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == version
        assert_same_predictions(answer.json()["results"], recorded, version)
    batch = client.get(f"/predict/{expected['batch']['job_id']}?limit=1000", headers=headers).json()
    assert batch["status"] == "completed" and batch["results"] == expected["batch"]["results"]


def test_jobs_reports_alerts_and_events_read_as_before(upgraded: Upgraded) -> None:
    client, expected = upgraded.client, upgraded.expected
    headers = upgraded.admin
    before = {"created_before": expected["made_at"]}
    assert (
        client.get("/jobs", headers=headers, params=before | {"limit": 100}).json()["total"]
        == expected["tables"]["jobs"]
    )
    for job_id in expected["jobs"].values():
        job = client.get(f"/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "completed", job
    for report_id in expected["reports"]:
        report = client.get(f"/drift/reports/{report_id}", headers=headers)
        assert report.status_code == 200 and report.json()["model_key"] == "adult", report.text
    # The other tests' refused tokens raise alerts of their own; 0.12.0's keep their id, kind and status.
    alerts = client.get("/health/alerts?status=all&limit=100", headers=headers).json()["items"]
    old = {
        str(a["id"]): {"kind": a["kind"], "status": a["status"]}
        for a in alerts
        if str(a["id"]) in expected["alerts"]
    }
    assert old == expected["alerts"]
    events = client.get(
        "/events", headers=headers, params={"until": expected["made_at"], "limit": 1}
    ).json()
    assert events["total"] == expected["tables"]["events"]


def test_the_old_prediction_log_reads_row_for_row(upgraded: Upgraded) -> None:
    # Until the fixture was made: the other tests log predictions of their own.
    logged = read_log(ArtifactStore(upgraded.data / "artifacts"), "adult", until=upgraded.made_at)
    sync = logged[logged["_job_id"].isna()]
    assert sync.groupby("_version").size().to_dict() == upgraded.expected["logged_sync_rows"]
    batch = logged[logged["_job_id"] == upgraded.expected["batch"]["job_id"]]
    assert batch["_prediction"].tolist() == [
        r["prediction"] for r in upgraded.expected["batch"]["results"]
    ]


def test_this_release_checks_drift_and_retrains_on_old_versions(upgraded: Upgraded) -> None:
    client, headers = upgraded.client, upgraded.admin
    job = client.post(
        "/drift/check", headers=headers, json={"model_key": "adult", "last_days": 3650}
    )
    assert job.status_code == 202, job.text
    done = wait_job(client, headers, job.json()["job_id"])
    assert done["status"] == "completed", done
    assert done["result"]["version"] == upgraded.expected["model"]["active_version"]
    assert done["result"]["sample_size"] > 0

    retrain = client.post("/models/adult/retrain", headers=headers)
    assert retrain.status_code == 202, retrain.text
    done = wait_job(client, headers, retrain.json()["job_id"])
    assert done["status"] == "completed", done
    versions = {
        v["version"]: v for v in client.get("/models/adult", headers=headers).json()["versions"]
    }
    assert len(versions) == 3 and versions[done["result"]["version"]]["parent_version"] == "1.1.0"
