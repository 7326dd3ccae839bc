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
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import pandas as pd

from harness import ADMIN_PASSWORD, REPO_ROOT, free_port, load, running_server, wait_job

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]
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




def bench_ours(duration: float) -> dict:
    results: dict = {}
    with running_server() as base:
        token = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        train_csv = io.BytesIO()
        adult("train").to_csv(train_csv, index=False)
        started = time.perf_counter()
        job_id = httpx.post(f"{base}/train", headers=headers, timeout=120, data={"model_key": "adult", "target": "income"},
                            files={"file": ("adult.csv", train_csv.getvalue(), "text/csv")}).json()["job_id"]
        job = wait_job(base, headers, job_id)
        results["train_s"] = time.perf_counter() - started
        results["train"] = job["result"]
        print(f"trained in {results['train_s']:.1f} s: {job['result']}", flush=True)

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--skip-mlflow", action="store_true")
    args = parser.parse_args()

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
