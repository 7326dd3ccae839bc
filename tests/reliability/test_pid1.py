"""`serve` and `mlservice worker` as PID 1, as `docker compose up` runs them without `init: true`:
their worker processes must run jobs. Each runs as PID 1 of a new PID namespace (util-linux
`unshare`, as root), which is what a container gives a process. Their workers once read their
parent's pid of 1 as "orphaned" and exited at once (BrokenProcessPool, WorkerLostError)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.distributed.cluster import Cluster, fresh_postgres_database, wait_job
from tests.helpers import adult_sample, csv_bytes
from tests.live_server import AS_PID_1, live_server

TRAINING = {"target": "income", "model_key": "pid1", "params": '{"hidden_layer_sizes": [8], "max_iter": 5}'}


def train_and_wait(base: str, headers: dict[str, str]) -> dict:
    files = {"file": ("adult.csv", csv_bytes(adult_sample(200)), "text/csv")}
    response = httpx.post(f"{base}/train", headers=headers, files=files, data=TRAINING, timeout=60)
    assert response.status_code == 202, response.text
    return wait_job(base, headers, response.json()["job_id"], timeout=180)


def test_serve_as_pid_1_runs_jobs_in_its_local_workers(tmp_path: Path) -> None:
    with live_server(tmp_path, launcher=AS_PID_1) as server:
        headers = {"Authorization": f"Bearer {server.admin_token()}"}
        job = train_and_wait(server.url, headers)
        assert job["status"] == "completed", (job, "".join(server.lines)[-3000:])


def test_celery_worker_as_pid_1_runs_jobs(tmp_path: Path) -> None:
    with fresh_postgres_database("mlservice_pid1") as url:
        cluster = Cluster(tmp_path, url)
        try:
            base = cluster.start_api("api")
            cluster.start_worker("w", launcher=AS_PID_1)
            cluster.wait_workers(base, 1)
            job = train_and_wait(base, cluster.login(base))
            assert job["status"] == "completed", (job, cluster.log("w"))
            assert "WorkerLostError" not in cluster.log("w", tail=100_000)
        finally:
            cluster.stop()
