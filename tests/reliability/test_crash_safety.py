"""Crash safety: SIGKILL a real `mlservice serve` (its whole process group, local workers
included, as a power cut would) while a training runs, a batch prediction runs, a job waits in the
queue, a dataset upload is half-way through its body and sync predictions are being answered;
then restart on the same data directory. And in distributed mode (PostgreSQL + Redis), SIGKILL the
Celery workers that run a training, and the API with the last one.

After every restart: the database is intact (`PRAGMA integrity_check`; on PostgreSQL the rows agree
with each other), no job is left running or queued (the README: running ones are marked failed
"interrupted" unless a training had registered its version, queued ones run again; a lost worker's job is requeued, then failed after
``ML_JOB_MAX_ATTEMPTS``), every dataset, model version and prediction result the database refers
to is a complete, loadable file, leftovers of interrupted writes are nowhere the service reads,
and every sync prediction answered with 200 before the kill is in the prediction log."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from mlservice.artifacts import ArtifactStore
from mlservice.db import Database
from mlservice.jobs.kinds import WorkerContext
from mlservice.jobs.models import Job
from mlservice.ml import load_bundle, save_bundle, train
from mlservice.predictions.log import read_log
from mlservice.training.fitting import save_version
from mlservice.training.jobs import TRAIN
from mlservice.training.service import training_config
from tests.conftest import make_settings
from tests.distributed.cluster import Cluster, fresh_postgres_database
from tests.helpers import adult_sample, adult_train, csv_bytes, records, wait_for
from tests.live_server import live_server

SMALL = {"hidden_layer_sizes": [16], "max_iter": 15}
ENDLESS = {"hidden_layer_sizes": [16], "max_iter": 5000, "early_stopping": False}  # killed long before the end
FIT_STARTED = 18.0  # training progress once the first epoch is reported (training.fitting.FIT_SPAN)
MARKER = 10_000_000  # sync predictions carry fnlwgt = MARKER + i, so each is found in the log


def job(base: str, headers: dict, job_id: str) -> dict:
    return httpx.get(f"{base}/jobs/{job_id}", headers=headers, timeout=30).json()


def finished(base: str, headers: dict, job_id: str, timeout: float = 90) -> dict:
    return wait_for(lambda: (j := job(base, headers, job_id))["status"] in ("completed", "failed", "cancelled") and j,
                    f"job {job_id} to end", timeout, 0.2)


def training_underway(base: str, headers: dict, job_id: str) -> bool:
    state = job(base, headers, job_id)
    return state["status"] == "running" and state["stage"] == "fit_model" and state["progress"] > FIT_STARTED


def upload(base: str, headers: dict, name: str, content: bytes) -> dict:
    response = httpx.post(f"{base}/datasets", headers=headers, files={"file": (name, content)}, timeout=120)
    assert response.status_code == 201, response.text
    return response.json()


def submit(base: str, headers: dict, path: str, body: dict) -> str:
    response = httpx.post(f"{base}{path}", headers=headers, json=body, timeout=60)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


class SyncPredictions(threading.Thread):
    """A real-time client: one-row predictions in a loop; remembers which got a 200."""

    def __init__(self, base: str, headers: dict, model_key: str) -> None:
        super().__init__(daemon=True)
        self.base, self.headers, self.model_key = base, headers, model_key
        self.row = records(adult_sample(1, seed=7).drop(columns=["income"]))[0]
        self.acknowledged: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=10) as client:
            for i in range(1_000_000):
                if self.stop.is_set():
                    return
                marker = float(MARKER + i)
                try:
                    response = client.post(f"{self.base}/models/{self.model_key}/predict",
                                           json={"data": [{**self.row, "fnlwgt": marker}]})
                except httpx.HTTPError:
                    time.sleep(0.05)  # the server is down: not acknowledged
                    continue
                if response.status_code == 200:
                    self.acknowledged.append(marker)
                time.sleep(0.02)  # a steady client, not a load test: the CPUs are shared


class SlowUpload(threading.Thread):
    """A multipart upload streamed slowly: half the body, then it waits for the kill."""

    BOUNDARY = "crash-safety-boundary"

    def __init__(self, base: str, headers: dict, content: bytes) -> None:
        super().__init__(daemon=True)
        self.base, self.headers, self.content = base, headers, content
        self.half_sent = threading.Event()
        self.killed = threading.Event()
        self.outcome: object = None

    def body(self) -> Iterator[bytes]:
        yield (f"--{self.BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.csv\"\r\n"
               "Content-Type: text/csv\r\n\r\n").encode()
        half = len(self.content) // 2
        for start in range(0, half, 32_768):
            yield self.content[start:min(start + 32_768, half)]
            time.sleep(0.01)
        self.half_sent.set()
        self.killed.wait(120)
        for start in range(half, len(self.content), 32_768):
            yield self.content[start:start + 32_768]
        yield f"\r\n--{self.BOUNDARY}--\r\n".encode()

    def run(self) -> None:
        headers = {**self.headers, "Content-Type": f"multipart/form-data; boundary={self.BOUNDARY}"}
        try:
            self.outcome = httpx.post(f"{self.base}/datasets", headers=headers, content=self.body(), timeout=120)
        except httpx.HTTPError as exc:
            self.outcome = exc


def rows_of(engine, query: str, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        result = connection.execute(text(query), params)
        return [dict(row._mapping) for row in result]


def as_json(value):  # type: ignore[no-untyped-def]
    return json.loads(value) if isinstance(value, str) else value


def check_consistency(database_url: str, artifacts_root: Path) -> dict[str, int]:
    """What the database says agrees with itself and with the files: no job running or queued,
    every ended job has its end time and no stage still running, every active version exists,
    and every dataset, model version and prediction result referenced is complete and loads.
    Leftovers of interrupted writes (dot-named temporaries) are referenced by nothing."""
    engine = create_engine(database_url)
    store = ArtifactStore(artifacts_root)
    try:
        jobs = rows_of(engine, "SELECT id, type, status, stages, finished_at, result FROM jobs")
        assert not [j for j in jobs if j["status"] in ("running", "queued")], jobs
        for row in jobs:
            assert row["finished_at"] is not None, row
            assert "running" not in {stage["status"] for stage in as_json(row["stages"])}, row
        referenced: set[str] = set()
        datasets = rows_of(engine, "SELECT id, path, rows FROM datasets")
        for dataset in datasets:
            assert len(pd.read_parquet(store.path(dataset["path"]))) == dataset["rows"], dataset
            referenced.add(dataset["path"])
        versions = rows_of(engine, "SELECT model_key, version, bundle_path, training_data_path, classes "
                                   "FROM model_versions WHERE deleted_at IS NULL")
        for version in versions:
            model = load_bundle(store.path(version["bundle_path"]), store.root)  # every file's SHA-256 checked
            assert [str(c) for c in model.classes] == [str(c) for c in as_json(version["classes"])], version
            assert len(pd.read_parquet(store.path(version["training_data_path"]))) > 0
            referenced |= {version["bundle_path"], version["training_data_path"]}
        pairs = {(v["model_key"], v["version"]) for v in versions}
        for model in rows_of(engine, "SELECT key, active_version FROM models"):
            assert model["active_version"] is None or (model["key"], model["active_version"]) in pairs, model
        for row in jobs:
            if row["type"] == "predict" and row["status"] == "completed":
                results = f"predictions/{row['id']}/results.parquet"
                assert len(pd.read_parquet(store.path(results))) == as_json(row["result"])["rows"], row
                referenced.add(results)
        leftovers = [p for p in store.root.rglob(".*")]
        for path in leftovers:
            relative = store.relative(path)
            assert not any(r == relative or r.startswith(relative + "/") for r in referenced), relative
        return {"jobs": len(jobs), "datasets": len(datasets), "versions": len(versions)}
    finally:
        engine.dispose()


@pytest.mark.parametrize("api_workers", ["1", "2"])  # `serve --workers N`: one leader runs the jobs
def test_serve_killed_mid_training_upload_and_predictions_restarts_clean(tmp_path: Path, api_workers: str) -> None:
    settings = {"ML_MIN_WORKERS": "2", "ML_MAX_WORKERS_LIMIT": "2", "ML_RATE_LIMIT_EXPENSIVE": "off",
                "ML_API_WORKERS": api_workers}
    with live_server(tmp_path, **settings) as server:
        base = server.url
        headers = {"Authorization": f"Bearer {server.admin_token()}"}
        data_dir = tmp_path / "data"
        train_set = upload(base, headers, "train.csv", csv_bytes(adult_sample(2000)))
        unlabelled = pd.concat([adult_train()] * 2, ignore_index=True).drop(columns=["income"])
        big_set = upload(base, headers, "big.parquet", parquet_bytes(unlabelled))
        first = submit(base, headers, "/train", {"model_key": "crash", "target": "income",
                                                 "dataset_id": train_set["id"], "params": SMALL})
        assert finished(base, headers, first)["status"] == "completed"

        predictions = SyncPredictions(base, headers, "crash")
        predictions.start()
        slow = SlowUpload(base, headers, csv_bytes(adult_sample(20_000, seed=3)))
        slow.start()
        training = submit(base, headers, "/train", {"model_key": "long", "target": "income",
                                                    "dataset_id": train_set["id"], "params": ENDLESS})
        wait_for(lambda: training_underway(base, headers, training), "the training to be fitting")
        # The upload and the predictions first: the batch (parallel chunks, a second or two) and
        # the job queued behind it must still be where they are when the power goes.
        assert slow.half_sent.wait(60) and len(predictions.acknowledged) > 0
        batch = submit(base, headers, "/predict", {"model_key": "crash", "dataset_id": big_set["id"]})
        queued = submit(base, headers, "/train", {"model_key": "requeued", "target": "income",
                                                  "dataset_id": train_set["id"], "params": SMALL})
        wait_for(lambda: (j := job(base, headers, batch))["status"] == "running" and j["stage"] in ("predict", "save"),
                 "the batch prediction to be predicting")
        server.kill()  # ----- the power cut
        slow.killed.set()
        predictions.stop.set()
        predictions.join(30)
        slow.join(30)
        assert isinstance(slow.outcome, httpx.HTTPError), slow.outcome  # the upload never got an answer

        database = sqlite3.connect(data_dir / "mlservice.db")
        try:
            assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            status = dict(database.execute("SELECT id, status FROM jobs").fetchall())
        finally:
            database.close()
        # The kill landed mid-way: this is what the restarted server has to clean up.
        assert (status[training], status[batch], status[queued]) == ("running", "running", "queued"), status

        server.restart()
        headers = {"Authorization": f"Bearer {server.admin_token()}"}
        for interrupted in (training, batch):
            state = job(base, headers, interrupted)
            assert state["status"] == "failed", state
            assert state["error"] == "interrupted: the server stopped while this job was running", state
        assert finished(base, headers, queued)["status"] == "completed"  # queued jobs run again
        assert httpx.get(f"{base}/jobs", params={"status": "running"}, headers=headers).json()["total"] == 0
        assert httpx.get(f"{base}/models/long", headers=headers).status_code == 404
        assert httpx.get(f"{base}/predict/{batch}", headers=headers).json()["status"] == "failed"
        listed = httpx.get(f"{base}/datasets", headers=headers).json()
        assert {d["id"] for d in listed["items"]} == {train_set["id"], big_set["id"]}  # nothing of the cut upload
        assert sorted(p.name for p in (data_dir / "artifacts/datasets").iterdir()) == \
            sorted(f"{d}.parquet" for d in (train_set["id"], big_set["id"]))

        # Every prediction answered before the kill is in the log, and the log takes new ones.
        after = httpx.post(f"{base}/models/crash/predict", headers=headers, timeout=30,
                           json={"data": [{**predictions.row, "fnlwgt": float(MARKER - 1)}]})
        assert after.status_code == 200, after.text
        logged = set(read_log(ArtifactStore(data_dir / "artifacts"), "crash", columns=["fnlwgt"])["fnlwgt"])
        missing = set(predictions.acknowledged) - logged
        assert not missing, f"{len(missing)} acknowledged predictions are not in the log"
        assert float(MARKER - 1) in logged

        counts = check_consistency(f"sqlite:///{data_dir / 'mlservice.db'}", data_dir / "artifacts")
        assert counts == {"jobs": 4, "datasets": 2, "versions": 2}, counts


def test_workers_and_api_killed_in_distributed_mode(tmp_path: Path) -> None:
    """Two Celery workers train in turn; each is SIGKILLed mid-training (the second together with
    the API). The first loss is requeued and taken by the other worker; the second uses up
    ``ML_JOB_MAX_ATTEMPTS`` and the restarted API fails the job with the reason. test_cluster.py
    covers a requeued job completing; this covers the losses that end it, a retry after a loss at
    the very end of a training (the version registered, the job's end not recorded), and a job
    whose message never reached the broker."""
    with fresh_postgres_database("mlservice_crash") as url:
        cluster = Cluster(tmp_path, url, ML_JOB_MAX_ATTEMPTS="2")
        try:
            base = cluster.start_api("api")
            cluster.start_worker("w1")
            cluster.start_worker("w2")
            cluster.wait_workers(base, 2)
            headers = cluster.login(base)
            train_set = upload(base, headers, "train.csv", csv_bytes(adult_sample(2000)))
            good = submit(base, headers, "/train", {"model_key": "kept", "target": "income",
                                                    "dataset_id": train_set["id"], "params": SMALL})
            assert finished(base, headers, good)["status"] == "completed"

            # A worker killed after it registered the version but before it recorded the job's
            # end (a window of milliseconds, so the row is put back as such a kill leaves it):
            # the reconciler requeues the job, and the retry must keep that version intact.
            engine = create_engine(url)
            with engine.begin() as connection:
                connection.execute(text(
                    "UPDATE jobs SET status = 'running', stage = 'save', result = NULL, finished_at = NULL, "
                    "heartbeat_at = started_at - interval '1 hour' WHERE id = :id"), {"id": good})
            retried = wait_for(lambda: (j := job(base, headers, good))["status"] != "running"
                               and j["status"] != "queued" and j, "the retry of the lost job", 60, 0.2)
            assert retried["status"] == "completed" and retried["result"]["version"] == "1.0.0", retried
            kept = httpx.get(f"{base}/models/kept", headers=headers).json()
            assert [v["version"] for v in kept["versions"]] == ["1.0.0"] and kept["active_version"] == "1.0.0", kept
            assert rows_of(engine, "SELECT attempts FROM jobs WHERE id = :id", id=good)[0]["attempts"] == 2

            # The API killed between committing a job and sending its message (the row as such a
            # kill leaves it): the reconciler sends it again and a worker runs it.
            unsent = uuid.uuid4().hex
            with engine.begin() as connection:
                connection.execute(text(
                    "INSERT INTO jobs (id, type, status, stages, progress, model_key, user_id, source, params, details, "
                    "cancel_requested, attempts, created_at, updated_at) "
                    "SELECT :new, type, 'queued', CAST(:stages AS jsonb), 0, 'unsent', user_id, source, params, "
                    "CAST('{}' AS jsonb), false, 0, now() - interval '1 hour', now() - interval '1 hour' "
                    "FROM jobs WHERE id = :id"),
                    {"new": unsent, "id": good, "stages": json.dumps([{"name": n, "status": "pending"} for n in TRAIN.stages])})
            assert finished(base, headers, unsent, timeout=60)["status"] == "completed"

            lost = submit(base, headers, "/train", {"model_key": "lost", "target": "income",
                                                    "dataset_id": train_set["id"], "params": ENDLESS})

            def worker_of(attempt: int) -> str:
                wait_for(lambda: training_underway(base, headers, lost)
                         and rows_of(engine, "SELECT attempts FROM jobs WHERE id = :id", id=lost)[0]["attempts"] == attempt,
                         f"attempt {attempt} to be fitting")
                return rows_of(engine, "SELECT worker FROM jobs WHERE id = :id", id=lost)[0]["worker"].split("@")[0]

            first = worker_of(1)
            cluster.kill_worker(first)  # ----- kill 1: the worker running the training
            second = worker_of(2)  # the reconciler requeued it and the other worker took it
            assert second != first
            cluster.kill_worker(second)  # ----- kill 2: the last worker, and the API with it
            api = cluster.apis["api"][0]
            os.killpg(api.pid, signal.SIGKILL)
            api.wait(10)
            base = cluster.start_api("api-restarted")
            headers = cluster.login(base)
            state = finished(base, headers, lost, timeout=60)
            assert state["status"] == "failed" and state["error"] == "interrupted: worker lost after 2 attempt(s)", state
            assert httpx.get(f"{base}/models/lost", headers=headers).status_code == 404
            row = rows_of(engine, "SELECT attempts FROM jobs WHERE id = :id", id=lost)[0]
            assert row["attempts"] == 2
            engine.dispose()
            counts = check_consistency(url, tmp_path / "shared-artifacts")
            assert counts == {"jobs": 3, "datasets": 1, "versions": 2}, counts
        finally:
            cluster.stop()


def test_a_retried_training_keeps_or_replaces_what_its_lost_attempt_saved(tmp_path: Path, sqlite_database: Database) -> None:
    """A lost worker's training is run again (distributed mode), and its first attempt may have
    died at save: after its bundle was renamed into place (a bundle no version refers to), or
    after the version was registered too. The retry replaces the first, keeps the second — never
    a failed retry, a second version, or a registered version whose bundle is gone."""
    settings = make_settings(tmp_path, sqlite_database)
    store = ArtifactStore(settings.effective_artifacts_root)
    context = WorkerContext(settings, sqlite_database, store)
    frame = adult_sample(300)
    store.write_with("datasets/d.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    config, random_state = training_config(settings, SMALL)
    trained = train(frame, "income", config, random_state=random_state)
    job = Job(id="0" * 32, type="train", model_key="retried", params={}, user_id=None)

    save_bundle(train(frame, "income", config, random_state=random_state), store.path(f"models/retried/{job.id}"))
    assert save_version(context, job, trained, "datasets/d.parquet") == "1.0.0"  # the leftover replaced
    assert save_version(context, job, trained, "datasets/d.parquet") == "1.0.0"  # registered: kept
    counts = check_consistency(sqlite_database.url.render_as_string(hide_password=False), store.root)
    assert counts == {"jobs": 0, "datasets": 0, "versions": 1}, counts
