"""Batch predictions split into chunks predicted in parallel: the same results and log, in input
order, as one pass; a chunk that fails fails the job with nothing logged."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mlservice.ml import TrainingConfig, train
from mlservice.predictions.jobs import predict_in_chunks
from mlservice.predictions.log import read_log
from tests.helpers import Accounts, adult_sample, records, wait_job
from tests.helpers import train as train_over_http


def test_chunks_in_parallel_give_the_one_pass_results_in_order() -> None:
    frame = adult_sample(300)
    model = train(frame, "income", TrainingConfig(hidden_layer_sizes=(8,), max_iter=5))
    inputs = adult_sample(300, seed=1).drop(columns="income")
    whole = model.predict_frame(inputs)
    done: list[int] = []
    chunked = predict_in_chunks(model, inputs, workers=3, chunk_rows=7, between=done.append)
    assert chunked.labels == whole.labels
    np.testing.assert_allclose(chunked.probabilities, whole.probabilities, atol=1e-6)
    np.testing.assert_allclose(chunked.confidences, whole.confidences, atol=1e-6)
    assert done == sorted(done) and done[-1] == 300 and len(done) == 43


@pytest.fixture
def small_chunks(make_client) -> TestClient:
    """An app whose batches of 50 rows or more are predicted in parallel chunks."""
    return make_client(batch_parallel_min_rows=50)


def test_a_parallel_batch_keeps_input_order_in_results_and_log(small_chunks: TestClient) -> None:
    client = small_chunks
    _user, headers = Accounts(client).login_as("analyst")
    train_over_http(client, headers, "chunks", adult_sample(300))
    inputs = adult_sample(300, seed=2).drop(columns="income")
    job_id = client.post(
        "/predict", headers=headers, json={"model_key": "chunks", "data": records(inputs)}
    ).json()["job_id"]
    assert wait_job(client, headers, job_id)["status"] == "completed"
    batch = client.get(f"/predict/{job_id}", headers=headers).json()["results"]
    sync = client.post(
        "/models/chunks/predict", headers=headers, json={"data": records(inputs)}
    ).json()["results"]
    assert [r["prediction"] for r in batch] == [r["prediction"] for r in sync]
    assert [r["confidence"] for r in batch] == pytest.approx(
        [r["confidence"] for r in sync], abs=1e-5
    )
    logged = read_log(client.app.state.artifacts, "chunks")
    logged = logged[logged["_job_id"] == job_id]
    assert logged["fnlwgt"].tolist() == inputs["fnlwgt"].astype(float).tolist()
    assert logged["_prediction"].tolist() == [r["prediction"] for r in batch]


def test_a_failing_chunk_fails_the_job_with_nothing_logged(small_chunks: TestClient) -> None:
    client = small_chunks
    _user, headers = Accounts(client).login_as("analyst")
    train_over_http(client, headers, "broken", adult_sample(300))
    inputs = adult_sample(300, seed=3).drop(columns="income")
    inputs["age"] = inputs["age"].astype(str)
    inputs.loc[250, "age"] = "not a number"  # in one of the last chunks only
    job_id = client.post(
        "/predict", headers=headers, json={"model_key": "broken", "data": records(inputs)}
    ).json()["job_id"]
    job = wait_job(client, headers, job_id)
    assert job["status"] == "failed" and "age" in job["error"], job
    artifacts = client.app.state.artifacts
    assert not artifacts.path(f"predictions/{job_id}/results.parquet").exists()
    logged = read_log(artifacts, "broken")
    assert len(logged) == 0 or (logged["_job_id"] != job_id).all()
