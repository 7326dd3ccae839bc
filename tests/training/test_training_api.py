"""Training through HTTP: the stages a job reports, where a failure stops, and retraining."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from tests.helpers import TINY_PARAMS, Accounts, adult_sample, records, train, upload, wait_job

STAGES = ["load", "validate", "profile", "fit_features", "fit_model", "evaluate", "save"]


def test_a_training_reports_each_stage_in_order(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("trainee")
    job = train(client, headers, "staged", adult_sample(300), params=TINY_PARAMS)
    assert [stage["name"] for stage in job["stages"]] == STAGES
    assert {stage["status"] for stage in job["stages"]} == {"done"} and job["stage"] == "save"
    # Each stage starts when the one before it finished.
    assert all(before["finished_at"] == after["started_at"] for before, after in zip(job["stages"], job["stages"][1:]))
    assert job["progress"] == 100 and job["result"]["version"] == "1.0.0"
    assert 0 <= job["result"]["metrics"]["accuracy"] <= 1


def test_a_class_with_a_single_row_trains_like_scikit_learn(client: TestClient, accounts: Accounts) -> None:
    # Real label columns have long tails; 0.12.0 refused the whole table with 422 rare_class.
    _, headers = accounts.login_as("long-tail")
    frame = adult_sample(300)
    frame.loc[0, "income"] = "unknown"
    job = train(client, headers, "long_tail", frame, params=TINY_PARAMS)
    version = client.get(f"/models/long_tail/versions/{job['result']['version']}", headers=headers).json()
    assert "unknown" in version["classes"]
    answer = client.post("/models/long_tail/predict", headers=headers,
                         json={"data": records(frame.drop(columns=["income"]).head(1))}).json()
    assert "unknown" in answer["results"][0]["probabilities"], answer


def test_a_failing_training_stops_at_the_stage_that_failed(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("unlucky")
    # Too few rows to train on: known only once the job counts the labelled rows.
    dataset = upload(client, headers, pd.DataFrame([{"x": i, "y": "ab"[i % 2]} for i in range(10)]))
    started = client.post("/train", headers=headers, json={
        "model_key": "too_few", "target": "y", "dataset_id": dataset["id"], "params": TINY_PARAMS})
    job = wait_job(client, headers, started.json()["job_id"])
    statuses = {stage["name"]: stage["status"] for stage in job["stages"]}
    assert job["status"] == "failed" and "too few to train on" in job["error"]
    assert statuses["load"] == "done" and statuses["validate"] == "failed" and job["stage"] == "validate"
    assert {statuses[name] for name in STAGES[2:]} == {"pending"}
    assert client.get("/models/too_few", headers=headers).status_code == 404


def test_retrain_is_for_admins_and_existing_models(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("retrainer")
    _, admin = accounts.login_as("retrain_admin", "admin")
    train(client, headers, "base", adult_sample(300), params=TINY_PARAMS)
    refused = client.post("/models/base/retrain", headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert client.post("/models/missing/retrain", headers=admin).status_code == 404
    started = client.post("/models/base/retrain", headers=admin)
    assert started.status_code == 202, started.text
    job = wait_job(client, admin, started.json()["job_id"])
    assert job["status"] == "completed" and job["type"] == "retrain" and job["model_version"] == "1.1.0"
    assert job["result"]["champion"] == "1.0.0" and job["result"]["rows"]["base"] == 300
    assert [stage["name"] for stage in job["stages"]] == [*STAGES, "compare"]
    # The challenger reads each column as the champion did (numbers stay numbers).
    kinds = [{c["name"]: c["kind"] for c in client.get(f"/models/base/versions/{v}", headers=admin).json()
              ["column_schema"]["columns"]} for v in ("1.0.0", "1.1.0")]
    assert kinds[0] == kinds[1] and kinds[0]["age"] == "numeric"
