"""Distributed mode end to end, on loopback: two `mlservice serve` replicas and two
`mlservice worker` processes on the machine's real PostgreSQL (a fresh database) and Redis (a DB
number and key prefix of this run's own). Train and predict through replica A, watch over
replica B's WebSocket, SIGKILL the worker running the training: the job completes on the other
worker, and nothing is left running. Cancellation from replica B reaches a job on a worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.distributed.cluster import Cluster, fresh_postgres_database, wait_job
from tests.helpers import adult_sample, records

LONG_TRAINING = {"hidden_layer_sizes": [256, 256], "max_iter": 120, "early_stopping": False}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with fresh_postgres_database() as url:
        cluster = Cluster(tmp_path_factory.mktemp("cluster"), url)
        try:
            a = cluster.start_api("api-a")  # migrates; the others find the database ready
            cluster.start_worker("w1")
            cluster.start_worker("w2")
            cluster.start_api("api-b")
            health = cluster.wait_workers(a, 2)
            assert health["queue"] == {"backend": "celery", "ok": True, "workers": 2, "broker": True}
            yield cluster
        finally:
            cluster.stop()


def receive(ws: ClientConnection, timeout: float) -> dict:
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if message["type"] == "ping":
            ws.send(json.dumps({"type": "pong"}))
            continue
        return message


def job_row(cluster: Cluster, job_id: str) -> dict:
    url = cluster.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT status, attempts, worker, error FROM jobs WHERE id = %s", (job_id,)).fetchone()
    return dict(zip(("status", "attempts", "worker", "error"), row))


def test_worker_killed_mid_training_the_other_finishes_the_job(cluster: Cluster) -> None:
    a, b = cluster.apis["api-a"][1], cluster.apis["api-b"][1]
    headers = cluster.login(a)
    with connect(f"ws://{b.removeprefix('http://')}/ws", additional_headers=headers, open_timeout=10) as ws:
        assert receive(ws, 10)["type"] == "hello"
        response = httpx.post(f"{a}/train", headers=headers, timeout=60, json={
            "model_key": "adult_dist", "target": "income", "data": records(adult_sample(3000)), "params": LONG_TRAINING,
        })
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]

        # Replica B relays the progress the worker publishes to Redis.
        while True:
            message = receive(ws, 120)
            data = message["data"]
            if message["type"] == "job.progress" and data["job_id"] == job_id and data["stage"] == "fit_model" \
                    and data["progress"] > 0:
                break
        victim = job_row(cluster, job_id)["worker"].split("@")[0]
        survivor = ({"w1", "w2"} - {victim}).pop()
        cluster.kill_worker(victim)

        kinds = []
        while not kinds or kinds[-1] not in ("job.completed", "job.failed"):
            message = receive(ws, 120)
            if message["type"].startswith("job.") and message["type"] != "job.progress" \
                    and message["data"]["job_id"] == job_id:
                kinds.append(message["type"])
    assert kinds[0] == "job.requeued" and kinds[-1] == "job.completed", kinds
    row = job_row(cluster, job_id)
    assert row["status"] == "completed" and row["attempts"] == 2 and row["worker"].startswith(f"{survivor}@"), row
    assert httpx.get(f"{b}/jobs", params={"status": "running"}, headers=headers).json()["total"] == 0
    assert cluster.wait_workers(b, 1)["queue"]["ok"] is True

    # The model trained on a worker serves from both replicas (shared artifacts).
    rows = records(adult_sample(50, seed=1).drop(columns=["income"]))
    predict = httpx.post(f"{a}/predict", headers=headers, timeout=60, json={"model_key": "adult_dist", "data": rows})
    assert predict.status_code == 202, predict.text
    result = wait_job(a, headers, predict.json()["job_id"], path="/predict/")
    assert result["status"] == "completed" and len(result["results"]) == 50, result
    sync = httpx.post(f"{b}/models/adult_dist/predict", headers=headers, timeout=60, json={"data": rows[:5]})
    assert sync.status_code == 200, sync.text
    assert {r["prediction"] for r in sync.json()["results"]} <= {"<=50K", ">50K"}


def test_cancel_from_another_replica_reaches_the_worker(cluster: Cluster) -> None:
    a, b = cluster.apis["api-a"][1], cluster.apis["api-b"][1]
    headers = cluster.login(a)
    job_id = httpx.post(f"{a}/train", headers=headers, timeout=60, json={
        "model_key": "adult_cancel", "target": "income", "data": records(adult_sample(2000)),
        "params": {**LONG_TRAINING, "max_iter": 2000},
    }).json()["job_id"]
    deadline = time.monotonic() + 90
    while httpx.get(f"{b}/jobs/{job_id}", headers=headers).json().get("stage") != "fit_model":
        assert time.monotonic() < deadline, "training never reached fit_model"
        time.sleep(0.3)
    assert httpx.post(f"{b}/jobs/{job_id}/cancel", headers=headers).status_code == 200
    job = wait_job(b, headers, job_id, timeout=60)
    assert job["status"] == "cancelled", job
