"""Distributed mode: batch-prediction throughput and training jobs per hour with 1 vs 2
`mlservice worker` processes (ML_QUEUE=celery), reported as ratios 2 workers ÷ 1 worker.

One `mlservice serve` replica on loopback, a fresh PostgreSQL database and Redis under a key
prefix of this run's own (tests/distributed/cluster.py). Each worker runs one job at a time with
ML_WORKER_CPU_PER_TASK cores of BLAS threads (default 0.5 → one thread on a 2-core machine), so a
worker stands for one core-sized machine. Phase 1 starts one worker; phase 2 adds the second and
repeats the same work:

- batch predictions: `--predict-jobs` async `POST /predict` jobs over a `--predict-rows`-row
  dataset (uploaded once), all submitted at once; rows/s = all rows ÷ wall time from the first
  submit to the last completion;
- training: `--train-jobs` small trainings (Adult, `--train-rows` rows, (64,), 30 epochs)
  submitted at once; jobs/hour from the wall time to the last completion.

On a 2-core machine the API, PostgreSQL, Redis and both workers share the same two cores (and
other users' work), so the ceiling is ≈ 2× and less in practice; on separate machines each worker
brings its own cores.

    .venv/bin/python bench/bench_distributed.py [--predict-jobs 8] [--predict-rows 20000] [--train-jobs 4]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.distributed.cluster import Cluster, fresh_postgres_database  # noqa: E402
from tests.helpers import adult_sample, records  # noqa: E402


def wait_all(base: str, headers: dict, job_ids: list[str], timeout: float = 1800) -> None:
    pending = set(job_ids)
    deadline = time.monotonic() + timeout
    while pending:
        assert time.monotonic() < deadline, f"jobs did not finish: {pending}"
        for job_id in list(pending):
            job = httpx.get(f"{base}/jobs/{job_id}", headers=headers, timeout=30).json()
            if job["status"] in ("completed", "failed", "cancelled"):
                assert job["status"] == "completed", job
                pending.discard(job_id)
        time.sleep(0.2)


def batch_predictions(base: str, headers: dict, dataset_id: str, jobs: int, rows: int) -> float:
    start = time.perf_counter()
    ids = [httpx.post(f"{base}/predict", headers=headers, timeout=60,
                      json={"model_key": "bench", "dataset_id": dataset_id}).json()["job_id"] for _ in range(jobs)]
    wait_all(base, headers, ids)
    return jobs * rows / (time.perf_counter() - start)


def trainings(base: str, headers: dict, data: list[dict], jobs: int) -> float:
    start = time.perf_counter()
    ids = [httpx.post(f"{base}/train", headers=headers, timeout=60, json={
        "model_key": f"bench_train_{i}", "target": "income", "data": data,
        "params": {"hidden_layer_sizes": [64], "max_iter": 30, "early_stopping": False},
    }).json()["job_id"] for i in range(jobs)]
    wait_all(base, headers, ids)
    return jobs * 3600 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predict-jobs", type=int, default=8)
    parser.add_argument("--predict-rows", type=int, default=20000)
    parser.add_argument("--train-jobs", type=int, default=4)
    parser.add_argument("--train-rows", type=int, default=3000)
    parser.add_argument("--cpu-per-task", default="0.5")
    args = parser.parse_args()

    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    with fresh_postgres_database("mlservice_bench") as url, tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(Path(workdir), url, ML_WORKER_CPU_PER_TASK=args.cpu_per_task,
                          ML_JOB_HEARTBEAT_S="5", ML_JOB_HEARTBEAT_TIMEOUT_S="60", ML_JOB_RECONCILE_S="15")
        try:
            base = cluster.start_api("api")
            headers = cluster.login(base)
            cluster.start_worker("w1")
            cluster.wait_workers(base, 1)
            model = httpx.post(f"{base}/train", headers=headers, timeout=60, json={
                "model_key": "bench", "target": "income", "data": records(adult_sample(2000)),
                "params": {"hidden_layer_sizes": [64], "max_iter": 20},
            }).json()["job_id"]
            wait_all(base, headers, [model])
            frame = adult_sample(args.predict_rows, seed=3).drop(columns=["income"])
            buffer = io.BytesIO()
            frame.to_csv(buffer, index=False)
            dataset = httpx.post(f"{base}/datasets", headers=headers, timeout=120,
                                 files={"file": ("rows.csv", buffer.getvalue(), "text/csv")}).json()["id"]
            train_data = records(adult_sample(args.train_rows, seed=4))
            batch_predictions(base, headers, dataset, 1, args.predict_rows)  # warm the worker's caches

            results: dict[int, tuple[float, float]] = {}
            for workers in (1, 2):
                if workers == 2:
                    cluster.start_worker("w2")
                    cluster.wait_workers(base, 2)
                    batch_predictions(base, headers, dataset, 2, args.predict_rows)  # warm w2 too
                load = os.getloadavg()[0]
                rows_per_s = batch_predictions(base, headers, dataset, args.predict_jobs, args.predict_rows)
                jobs_per_hour = trainings(base, headers, train_data, args.train_jobs)
                results[workers] = (rows_per_s, jobs_per_hour)
                print(f"{workers} worker(s): batch prediction {rows_per_s:,.0f} rows/s "
                      f"({args.predict_jobs} jobs × {args.predict_rows:,} rows); training {jobs_per_hour:,.0f} jobs/hour "
                      f"({args.train_jobs} jobs); load average before {load:.2f}")
            (p1, t1), (p2, t2) = results[1], results[2]
            print(f"ratio 2 workers ÷ 1 worker: batch prediction {p2 / p1:.2f}×, training {t2 / t1:.2f}×")
            print(f"load average at end: {os.getloadavg()[0]:.2f}")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
