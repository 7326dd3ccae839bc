"""What the drift tests do through HTTP: train the Adult model, predict, send labels back, check."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from tests.helpers import adult_sample, records, wait_job

TRAIN_PARAMS = {"hidden_layer_sizes": [16], "max_iter": 20}


def train_adult(client: TestClient, headers: dict, rows: int = 3000) -> dict:
    response = client.post("/train", headers=headers, json={
        "model_key": "adult", "target": "income", "data": records(adult_sample(rows)), "params": TRAIN_PARAMS,
    })
    job = wait_job(client, headers, response.json()["job_id"])
    assert job["status"] == "completed", job
    return job


def log_predictions(client: TestClient, headers: dict, frame: pd.DataFrame) -> str:
    """A batch prediction (logged for drift checks); returns its job id."""
    job_id = client.post("/predict", headers=headers, json={"model_key": "adult", "data": records(frame)}).json()["job_id"]
    assert wait_job(client, headers, job_id)["status"] == "completed"
    return job_id


def predicted(client: TestClient, headers: dict, job_id: str) -> list[str]:
    return [r["prediction"] for r in client.get(f"/predict/{job_id}", headers=headers).json()["results"]]


def send_labels(client: TestClient, headers: dict, job_id: str, labels: list) -> dict:
    response = client.post(f"/predict/{job_id}/feedback", headers=headers,
                           json={"labels": [{"row": i, "label": label} for i, label in enumerate(labels)]})
    assert response.status_code == 200, response.text
    return response.json()


def check(client: TestClient, headers: dict, **body) -> tuple[dict, dict]:
    response = client.post("/drift/check", headers=headers, json={"model_key": "adult", **body})
    assert response.status_code == 202, response.text
    job = wait_job(client, headers, response.json()["job_id"])
    assert job["status"] == "completed", job
    report = client.get(f"/drift/reports/{job['result']['report_id']}", headers=headers).json()
    return job, report


def shifted(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Ages +15 years and a different workclass mix, drawn independently of everything else."""
    rng = np.random.default_rng(seed)
    moved = frame.copy()
    moved["age"] = moved["age"] + 15
    moved["workclass"] = rng.choice(["Self-emp-inc", "Federal-gov", "Private"], size=len(moved), p=[0.45, 0.45, 0.10])
    return moved
