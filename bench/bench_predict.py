"""Serving benchmark on UCI Adult: our service vs MLflow's scoring server, in the same run.

Ours: `mlservice serve` (SQLite, one process), a model trained through POST /train with the
default settings; sync predict of one row (POST /models/adult/predict) at 1 and 16 concurrent
clients, and a 100,000-row batch end to end (multipart upload to POST /predict → job completed,
prediction log written → results fetched).

Reference: the same data in a scikit-learn Pipeline(ColumnTransformer + MLPClassifier
(512, 256, 128)) logged with mlflow.sklearn and served by `mlflow models serve` (one uvicorn
worker), one row per request, and one 10,000-row request. MLflow runs in its own virtualenv
(bench/.venv-mlflow, created on first use) so its pins don't touch ours.

    .venv/bin/python bench/bench_predict.py [--duration 10] [--skip-mlflow]

`--workers 1,2` measures instead sync predict at 16 clients against `serve --workers N` for each
N: one model trained once, then servers started in turn on its data directory, alternating
(A/B/A/B…, `--rounds` times) so that a change in what else the machine runs spreads over every
N; medians of req/s and of p99 per N.

    .venv/bin/python bench/bench_predict.py --workers 1,2 [--rounds 3] [--duration 10]

Every load line also gives the CPU time per request of the server's process tree and of the load
generator over the measured window.

`--batch --reference CHECKOUT` measures batch predictions (and with `--large-rows N` one training
epoch and a batch on N real flights, bench/flights.py) on this checkout and a reference one,
alternated; see `bench_batch`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

import httpx
import pandas as pd
from harness import ADMIN_PASSWORD, REPO_ROOT, free_port, load, median, running_server, wait_job
from harness import ADULT_COLUMNS as COLUMNS

MLFLOW_VENV = REPO_ROOT / "bench" / ".venv-mlflow"
MLFLOW_VERSION = "3.17.2"


def adult(split: str) -> pd.DataFrame:
    path = REPO_ROOT / "datasets" / "adult" / ("adult.data" if split == "train" else "adult.test")
    frame = pd.read_csv(path, names=COLUMNS, skipinitialspace=True, na_values="?",
                        skiprows=0 if split == "train" else 1)
    frame["income"] = frame["income"].str.rstrip(".")
    return frame


def one_row() -> dict:
    row = adult("test").drop(columns="income").iloc[0]
    return {k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()}


def batch_csv(rows: int) -> bytes:
    test = adult("test").drop(columns="income")
    frame = pd.concat([test] * (rows // len(test) + 1), ignore_index=True).iloc[:rows]
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()




def admin_headers(base: str) -> dict[str, str]:
    token = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def train_adult(base: str, headers: dict[str, str], results: dict) -> None:
    """The model every measurement serves: Adult, the server's default settings."""
    train_csv = io.BytesIO()
    adult("train").to_csv(train_csv, index=False)
    started = time.perf_counter()
    job_id = httpx.post(f"{base}/train", headers=headers, timeout=120, data={"model_key": "adult", "target": "income"},
                        files={"file": ("adult.csv", train_csv.getvalue(), "text/csv")}).json()["job_id"]
    job = wait_job(base, headers, job_id)
    results["train_s"] = time.perf_counter() - started
    results["train"] = job["result"]
    print(f"trained in {results['train_s']:.1f} s: {job['result']}", flush=True)


def bench_workers(counts: list[int], rounds: int, duration: float) -> dict[int, list]:
    """Sync predict at 16 clients per API process count, servers alternating on one data dir."""
    measured: dict[int, list] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="mlservice-bench-workers-") as data_dir:
        with running_server(data_dir) as base:
            train_adult(base, admin_headers(base), {})
        body = {"data": [one_row()]}
        for round_ in range(rounds):
            for n in counts:
                with running_server(data_dir, ML_API_WORKERS=str(n)) as base:
                    result = load(f"ours: --workers {n}, 16 clients (round {round_ + 1})", base, "POST",
                                  "/models/adult/predict", concurrency=16, duration=duration,
                                  headers=admin_headers(base), json_body=body)
                print(result.line(), flush=True)
                measured[n].append(result)
    return measured


def report_workers(measured: dict[int, list]) -> None:
    print("\n== Sync predict, one row per request, 16 clients, by API processes (medians of rounds) ==")
    base_rps = None
    for n, results in measured.items():
        rps, p99 = median([r.rps for r in results]), median([r.percentile(99) for r in results])
        base_rps = base_rps or rps
        print(f"--workers {n}: {rps:8.0f} req/s   p99 {p99:7.2f} ms   ({rps / base_rps:.2f}x the first; "
              f"errors {sum(r.errors for r in results)})")


def bench_ours(duration: float) -> dict:
    results: dict = {}
    with running_server() as base:
        headers = admin_headers(base)
        train_adult(base, headers, results)

        body = {"data": [one_row()]}
        results["sync_c1"] = load("ours: sync 1 row, 1 client", base, "POST", "/models/adult/predict",
                                  concurrency=1, duration=duration, headers=headers, json_body=body)
        results["sync_c16"] = load("ours: sync 1 row, 16 clients", base, "POST", "/models/adult/predict",
                                   concurrency=16, duration=duration, headers=headers, json_body=body)

        payload = batch_csv(100_000)
        started = time.perf_counter()
        response = httpx.post(f"{base}/predict", headers=headers, timeout=300, data={"model_key": "adult"},
                              files={"file": ("batch.csv", payload, "text/csv")})
        job = wait_job(base, headers, response.json()["job_id"])
        completed = time.perf_counter() - started
        fetched = httpx.get(f"{base}/predict/{job['id']}", headers=headers, timeout=300).json()
        total = time.perf_counter() - started
        assert job["status"] == "completed" and len(fetched["results"]) == 100_000, job
        results["batch_to_completed_s"] = completed
        results["batch_with_results_s"] = total
    return results


def ensure_mlflow() -> Path | None:
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        print("creating bench/.venv-mlflow (first run only) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        installed = subprocess.run([str(python), "-m", "pip", "install", "-q", f"mlflow=={MLFLOW_VERSION}",
                                    "scikit-learn", "pandas"], capture_output=True, text=True)
        if installed.returncode != 0:
            print("could not install MLflow:", installed.stderr[-2000:])
            return None
    return python


MLFLOW_TRAIN = textwrap.dedent("""
    import sys, mlflow, mlflow.sklearn, pandas as pd, numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    frame = pd.read_parquet(sys.argv[1])
    y = frame.pop("income")
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "if"]
    categorical = [c for c in frame.columns if c not in numeric]
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), categorical),
    ])
    model = Pipeline([("pre", pre), ("mlp", MLPClassifier((512, 256, 128), early_stopping=True, max_iter=30, random_state=0))])
    model.fit(frame, y)
    mlflow.set_tracking_uri("file://" + sys.argv[2])
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
    print("runs:/%s/model" % run.info.run_id)
""")


def bench_mlflow(duration: float) -> dict | None:
    python = ensure_mlflow()
    if python is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mlflow-bench-") as tmp:
        data = Path(tmp) / "adult.parquet"
        adult("train").to_parquet(data)
        env = os.environ | {"MLFLOW_ALLOW_FILE_STORE": "true", "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
                            "MLFLOW_TRACKING_URI": f"file://{tmp}/mlruns",
                            "PATH": f"{python.parent}:{os.environ['PATH']}"}
        trained = subprocess.run([str(python), "-c", MLFLOW_TRAIN, str(data), f"{tmp}/mlruns"],
                                 capture_output=True, text=True, env=env)
        if trained.returncode != 0:
            print("MLflow training failed:", trained.stderr[-3000:])
            return None
        uri = trained.stdout.strip().splitlines()[-1]
        port = free_port()
        server = subprocess.Popen([str(python.parent / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
                                   "-h", "127.0.0.1", "-p", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/ping", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            row = one_row()
            body = {"dataframe_records": [row]}
            results = {
                "sync_c1": load("MLflow: 1 row, 1 client", base, "POST", "/invocations", concurrency=1,
                                duration=duration, json_body=body),
                "sync_c16": load("MLflow: 1 row, 16 clients", base, "POST", "/invocations", concurrency=16,
                                 duration=duration, json_body=body),
            }
            rows = adult("test").drop(columns="income").head(10_000)
            records = rows.astype(object).where(rows.notna(), None).to_dict("records")
            started = time.perf_counter()
            response = httpx.post(f"{base}/invocations", json={"dataframe_records": records}, timeout=300)
            results["batch_10k_s"] = time.perf_counter() - started
            assert response.status_code == 200, response.text[:500]
            return results
        finally:
            server.terminate()
            server.wait(timeout=30)


def _stage_seconds(job: dict, name: str) -> float:
    stage = next(s for s in job["stages"] if s["name"] == name)
    return (datetime.fromisoformat(stage["finished_at"]) - datetime.fromisoformat(stage["started_at"])).total_seconds()


def _csv(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def bench_batch(reference: Path | None, rounds: int, large_rows: int) -> None:
    """`--batch`: batch predictions end to end (upload → job completed, log included) on this
    checkout and on a reference checkout (e.g. `git worktree add /tmp/wt773 773bfef`, run with
    PYTHONPATH), alternated `rounds` times: 100,000 Adult rows (multipart CSV) with a model of the
    default architecture. With `large_rows` N, the real flights table (bench/flights.py, time
    order): a model of the large architecture (1024, 512, 256, 128) trained for one epoch on the
    first N flights (the epoch's time is the job's `fit_model` stage: one epoch plus the
    validation pass), then a batch prediction of the next N flights (a dataset uploaded first,
    not timed)."""
    from flights import TARGET, flights

    trees = {"this": None} if reference is None else {"reference": str(reference / "src"), "this": None}
    rates: dict[str, dict[str, list[float]]] = {
        name: {"100k": [], "epoch_s": [], "large": [], "accuracy": []} for name in trees
    }
    small = {"max_iter": 2}
    large = {"hidden_layer_sizes": [1024, 512, 256, 128], "max_iter": 1, "adaptive_architecture": False}
    train_csv = _csv(adult("train"))
    if large_rows:
        large_train = _csv(flights(0, large_rows))
        large_batch = _csv(flights(large_rows, large_rows).drop(columns=TARGET))
    for _ in range(rounds):
        for name, pythonpath in trees.items():
            with running_server(**({"PYTHONPATH": pythonpath} if pythonpath else {})) as base:
                token = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
                headers = {"Authorization": f"Bearer {token}"}
                job_id = httpx.post(f"{base}/train", headers=headers, timeout=120,
                                    data={"model_key": "adult", "target": "income", "params": json.dumps(small)},
                                    files={"file": ("adult.csv", train_csv, "text/csv")}).json()["job_id"]
                assert wait_job(base, headers, job_id)["status"] == "completed"
                started = time.perf_counter()
                response = httpx.post(f"{base}/predict", headers=headers, timeout=300, data={"model_key": "adult"},
                                      files={"file": ("batch.csv", batch_csv(100_000), "text/csv")})
                job = wait_job(base, headers, response.json()["job_id"])
                assert job["status"] == "completed", job
                rates[name]["100k"].append(100_000 / (time.perf_counter() - started))
                if large_rows:
                    job_id = httpx.post(f"{base}/train", headers=headers, timeout=900,
                                        data={"model_key": "large", "target": TARGET, "params": json.dumps(large)},
                                        files={"file": ("flights.csv", large_train, "text/csv")}).json()["job_id"]
                    job = wait_job(base, headers, job_id, timeout=7200)
                    assert job["status"] == "completed", job
                    rates[name]["epoch_s"].append(_stage_seconds(job, "fit_model"))
                    rates[name]["accuracy"].append(job["result"]["metrics"]["accuracy"])
                    dataset = httpx.post(f"{base}/datasets", headers=headers, timeout=900,
                                         files={"file": ("next.csv", large_batch, "text/csv")}).json()
                    started = time.perf_counter()
                    response = httpx.post(f"{base}/predict", headers=headers, timeout=60,
                                          json={"model_key": "large", "dataset_id": dataset["id"]})
                    job = wait_job(base, headers, response.json()["job_id"], timeout=3600)
                    assert job["status"] == "completed", job
                    rates[name]["large"].append(large_rows / (time.perf_counter() - started))
            print(f"{name:<10} " + "  ".join(f"{k}: {v[-1]:,.4g}" for k, v in rates[name].items() if v)
                  + f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    for name, measured in rates.items():
        print(f"median {name:<10} " + "  ".join(f"{k}: {median(v):,.4g}" for k, v in measured.items() if v))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--workers", help="compare `serve --workers N` for these N, e.g. 1,2 (nothing else runs)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for --workers")
    parser.add_argument("--batch", action="store_true", help="batch predictions only, against --reference")
    parser.add_argument("--reference", type=Path, help="with --batch: a checkout to compare, e.g. /tmp/wt773")
    parser.add_argument("--large-rows", type=int, default=0, help="with --batch: also train on this many real flights (bench/flights.py) and predict as many")
    args = parser.parse_args()
    if args.batch:
        bench_batch(args.reference, args.rounds, args.large_rows)
        return
    if args.workers:
        report_workers(bench_workers([int(n) for n in args.workers.split(",")], args.rounds, args.duration))
        return

    ours = bench_ours(args.duration)
    reference = None if args.skip_mlflow else bench_mlflow(args.duration)

    print("\n== Sync predict, one row per request ==")
    for key in ("sync_c1", "sync_c16"):
        print(ours[key].line())
        if reference:
            print(reference[key].line())
            print(f"   ratio ours/MLflow: {ours[key].rps / reference[key].rps:.1f}x req/s")
    batch_rate = 100_000 / ours["batch_to_completed_s"]
    print("\n== Batch predict, 100,000 Adult rows, end to end with logging ==")
    print(f"ours: upload → job completed: {ours['batch_to_completed_s']:.2f} s = {batch_rate:,.0f} rows/s "
          f"(with fetching all results as JSON: {100_000 / ours['batch_with_results_s']:,.0f} rows/s)")
    if reference:
        mlflow_rate = 10_000 / reference["batch_10k_s"]
        print(f"MLflow: one 10,000-row request: {reference['batch_10k_s']:.2f} s = {mlflow_rate:,.0f} rows/s")
        print(f"   ratio ours/MLflow: {batch_rate / mlflow_rate:.1f}x rows/s")


if __name__ == "__main__":
    main()
