"""Drift check end to end through the service: 1,000,000 logged predictions × 15 features
against the baseline of a model trained on 50,000 rows, vs Evidently's DataDriftPreset on the
same rows in the same run.

Ours (timed): POST /drift/check → the job reads the prediction log (written by a real batch
prediction of the 1,000,000 rows through POST /predict) and the version's profile, computes PSI
and Jensen–Shannon per feature and for the predictions, stores the report → job completed.
Target: < 5 s. Reference: Evidently 0.7.23 `Report([DataDriftPreset()])` on the same reference
and current frames (its own virtualenv, see bench_engine_drift.py); only `Report.run` is timed,
so the comparison favours Evidently.

    .venv/bin/python bench/bench_drift_service.py [--rows 1000000] [--no-evidently]
"""

from __future__ import annotations

import argparse
import io
import json
import time

import httpx
import numpy as np

from bench_engine_drift import make_data, run_evidently
from harness import ADMIN_PASSWORD, running_server, wait_job




def parquet_bytes(frame) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-evidently", action="store_true")
    args = parser.parse_args()

    reference = make_data(args.reference_rows, 1, shift=False)
    current = make_data(args.rows, 2, shift=True)
    labelled = reference.assign(label=np.where(reference["num_0"].fillna(0) + reference["num_3"].fillna(0) > 0, "a", "b"))

    with running_server(ML_MAX_BODY_MB="500") as base:
        token = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        train = httpx.post(f"{base}/train", headers=headers, timeout=300,
                           data={"model_key": "synthetic", "target": "label",
                                 "params": json.dumps({"hidden_layer_sizes": [32], "max_iter": 5})},
                           files={"file": ("reference.parquet", parquet_bytes(labelled), "application/octet-stream")})
        assert wait_job(base, headers, train.json()["job_id"])["status"] == "completed"
        started = time.perf_counter()
        predict = httpx.post(f"{base}/predict", headers=headers, timeout=600, data={"model_key": "synthetic"},
                             files={"file": ("current.parquet", parquet_bytes(current), "application/octet-stream")})
        job = wait_job(base, headers, predict.json()["job_id"])
        assert job["status"] == "completed", job
        print(f"logged {args.rows:,} predictions through POST /predict in {time.perf_counter() - started:.1f} s")

        timings, job_seconds = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            check = httpx.post(f"{base}/drift/check", headers=headers, json={"model_key": "synthetic", "last_days": 1})
            job = wait_job(base, headers, check.json()["job_id"])
            timings.append(time.perf_counter() - started)
            job_seconds.append(job["duration_s"])
            assert job["status"] == "completed", job
        report = httpx.get(f"{base}/drift/reports/{job['result']['report_id']}", headers=headers).json()

    ours = float(np.median(timings))
    print(f"\n== Drift check from the prediction log: {report['sample_size']:,} rows × {len(report['features'])} features ==")
    print(f"ours, POST /drift/check → completed: median {ours:.2f} s (job itself {np.median(job_seconds):.2f} s) "
          f"over {args.repeat} runs; target < 5 s")
    print(f"verdict {report['verdict']}, drifted {report['drifted_features']}")
    if args.no_evidently:
        return
    evidently = run_evidently(reference, current)
    if evidently is None:
        return
    print(f"Evidently DataDriftPreset (Report.run only): {evidently['seconds']:.2f} s, drifted columns {evidently['drifted_columns']}")
    print(f"ratio Evidently / ours end to end: {evidently['seconds'] / ours:.1f}x")


if __name__ == "__main__":
    main()
