"""Train → registry → predict (sync and async) → export → quality, through HTTP with real
worker processes, on SQLite and PostgreSQL. Small samples and layers: the accuracy tests on
whole datasets are in test_accuracy_end_to_end.py."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.helpers import Accounts, adult_sample, records, train, upload, wait_job


@pytest.fixture
def trained(client: TestClient, accounts: Accounts) -> dict:
    """A small Adult model, version 1.0.0, owned by a plain user."""
    user, headers = accounts.login_as("analyst")
    frame = adult_sample(400)
    job = train(client, headers, "adult", frame)
    return {"headers": headers, "job": job, "frame": frame, "user": user}


def test_training_creates_version_1_0_0_with_metrics_and_lineage(client: TestClient, trained) -> None:
    headers, job = trained["headers"], trained["job"]
    assert job["result"]["version"] == "1.0.0" and job["model_version"] == "1.0.0"
    assert [s["name"] for s in job["stages"]] == [
        "load", "validate", "profile", "fit_features", "fit_model", "evaluate", "save"
    ]
    assert all(s["status"] == "done" for s in job["stages"])
    assert job["progress"] == 100.0
    assert len(job["details"]["history"]) == job["result"]["epochs"]  # the whole loss curve
    model = client.get("/models/adult", headers=headers).json()
    assert model["active_version"] == "1.0.0"
    version = model["versions"][0]
    assert version["active"] is True and version["job_id"] == job["id"]
    assert 0.5 < version["metrics"]["accuracy"] <= 1 and "f1_macro" in version["metrics"]
    assert version["classes"] == ["<=50K", ">50K"] and "age" in version["features"]
    listed = client.get("/models", headers=headers).json()
    assert listed["items"][0]["model_key"] == "adult" and listed["items"][0]["status"] == "active"
    detail = client.get("/models/adult/versions/1.0.0", headers=headers).json()
    assert detail["full_metrics"]["confusion_matrix"]["labels"] == ["<=50K", ">50K"]
    assert detail["training"]["info"]["hidden_layers"] == [16]
    assert [c["action"] for c in model["changes"]] == ["created", "promoted"]


def test_second_training_is_1_1_0_and_needs_promotion(client: TestClient, accounts: Accounts, trained) -> None:
    headers = trained["headers"]
    second = train(client, headers, "adult", adult_sample(400, seed=1))
    assert second["result"]["version"] == "1.1.0"
    assert client.get("/models/adult", headers=headers).json()["active_version"] == "1.0.0"
    # Only admins change which version serves.
    refused = client.post("/models/adult/versions/1.1.0/promote", headers=headers)
    assert refused.status_code == 403
    _, admin = accounts.login_as("lead", "admin")
    promoted = client.post("/models/adult/versions/1.1.0/promote", headers=admin).json()
    assert promoted["active_version"] == "1.1.0"
    assert client.post("/models/adult/versions/1.1.0/promote", headers=admin).status_code == 409
    sync = client.post("/models/adult/predict", headers=headers, json={"data": records(trained["frame"].head(1))})
    assert sync.json()["version"] == "1.1.0"
    rolled = client.post("/models/adult/rollback", headers=admin).json()
    assert rolled["active_version"] == "1.0.0"
    assert client.delete("/models/adult/versions/1.0.0", headers=admin).status_code == 409  # active
    assert client.delete("/models/adult/versions/1.1.0", headers=admin).status_code == 204
    versions = client.get("/models/adult", headers=headers).json()["versions"]
    assert [v["version"] for v in versions] == ["1.0.0"]
    assert client.get("/models/adult/versions/1.1.0", headers=headers).status_code == 404
    actions = [c["action"] for c in client.get("/models/adult", headers=headers).json()["changes"]]
    assert actions == ["created", "promoted", "created", "promoted", "rolled_back", "deleted"]


def test_sync_prediction(client: TestClient, trained) -> None:
    headers, frame = trained["headers"], trained["frame"]
    rows = records(frame.drop(columns="income").head(5))
    rows[0]["extra_field"] = "ignored"
    response = client.post("/models/adult/predict", headers=headers, json={"data": rows})
    assert response.status_code == 200
    body = response.json()
    assert body["model_key"] == "adult" and body["version"] == "1.0.0"
    assert body["ignored_columns"] == ["extra_field"]
    assert len(body["results"]) == 5
    for result in body["results"]:
        assert result["prediction"] in ("<=50K", ">50K")
        assert result["confidence"] == pytest.approx(max(result["probabilities"].values()))
        assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_async_prediction_results_and_exports(client: TestClient, trained) -> None:
    headers, frame = trained["headers"], trained["frame"]
    inputs = frame.drop(columns="income").head(50)
    inputs.loc[0, "workclass"] = "=cmd|' /C calc'!A0"  # formula injection must be neutralised
    job_id = client.post("/predict", headers=headers, json={"model_key": "adult", "version": "1.0.0", "data": records(inputs)}).json()["job_id"]
    job = wait_job(client, headers, job_id)
    assert job["status"] == "completed" and job["type"] == "predict"
    body = client.get(f"/predict/{job_id}", headers=headers).json()
    assert body["status"] == "completed" and body["version"] == "1.0.0" and body["total"] == 50
    results = body["results"]
    sync = client.post("/models/adult/predict", headers=headers, json={"data": records(inputs.head(10))}).json()
    for a, b in zip(results[:10], sync["results"]):  # input order, same model
        assert a["prediction"] == b["prediction"]
        assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)
    page = client.get(f"/predict/{job_id}", params={"limit": 5, "offset": 45}, headers=headers).json()
    assert page["results"] == results[45:]

    exported = client.get(f"/predict/{job_id}/export", params={"format": "json"}, headers=headers)
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.json() == results
    as_csv = client.get(f"/predict/{job_id}/export", params={"format": "csv"}, headers=headers)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 50 and list(rows[0])[-2:] == ["prediction", "confidence"]
    assert rows[0]["workclass"].startswith("'=")
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in results]
    assert client.get(f"/predict/{job_id}/export", params={"format": "xml"}, headers=headers).status_code == 422


def test_prediction_on_an_uploaded_file_and_dataset(client: TestClient, trained) -> None:
    headers, frame = trained["headers"], trained["frame"]
    inputs = frame.drop(columns="income").head(30)
    from tests.helpers import csv_bytes

    by_file = client.post(
        "/predict", headers=headers, data={"model_key": "adult"},
        files={"file": ("batch.csv", csv_bytes(inputs), "text/csv")},
    )
    assert by_file.status_code == 202, by_file.text
    dataset = upload(client, headers, inputs)
    by_dataset = client.post("/predict", headers=headers, json={"model_key": "adult", "dataset_id": dataset["id"]})
    first = wait_job(client, headers, by_file.json()["job_id"])
    second = wait_job(client, headers, by_dataset.json()["job_id"])
    assert first["status"] == second["status"] == "completed"
    a = client.get(f"/predict/{first['id']}", headers=headers).json()["results"]
    b = client.get(f"/predict/{second['id']}", headers=headers).json()["results"]
    assert [r["prediction"] for r in a] == [r["prediction"] for r in b]


def test_quality_check(client: TestClient, trained) -> None:
    headers = trained["headers"]
    labelled = adult_sample(300, seed=7)
    job_id = client.post("/quality", headers=headers, json={"model_key": "adult", "target": "income", "data": records(labelled)}).json()["job_id"]
    job = wait_job(client, headers, job_id)
    assert job["status"] == "completed" and job["type"] == "quality"
    metrics = job["result"]["metrics"]
    assert metrics["n_samples"] == 300 and 0.5 < metrics["accuracy"] <= 1
    assert set(metrics["per_class"]) == {"<=50K", ">50K"}
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 300


def test_training_from_inline_data_and_multipart(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("inline")
    frame = adult_sample(300, seed=3)
    inline = client.post("/train", headers=headers, json={
        "model_key": "inline", "target": "income", "data": records(frame),
        "features": ["age", "education", "hours_per_week", "sex"], "column_types": {"age": "numeric"},
        "params": {"hidden_layer_sizes": [8], "max_iter": 10},
    })
    assert inline.status_code == 202, inline.text
    from tests.helpers import csv_bytes

    multipart = client.post(
        "/train", headers=headers,
        data={"model_key": "multi", "target": "income", "params": '{"hidden_layer_sizes": [8], "max_iter": 10}'},
        files={"file": ("adult.csv", csv_bytes(frame), "text/csv")},
    )
    assert multipart.status_code == 202, multipart.text
    first = wait_job(client, headers, inline.json()["job_id"])
    second = wait_job(client, headers, multipart.json()["job_id"])
    assert first["status"] == "completed" and second["status"] == "completed", (first, second)
    assert client.get("/models/inline", headers=headers).json()["features"] == ["age", "education", "sex", "hours_per_week"] or \
        sorted(client.get("/models/inline", headers=headers).json()["features"]) == ["age", "education", "hours_per_week", "sex"]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"model_key": "bad key!", "target": "income", "data": [{"a": 1}]}, 400, "invalid_model_key"),
        ({"model_key": "m", "target": "nope", "data": [{"a": 1, "b": 2}]}, 422, "unknown_target"),
        ({"model_key": "m", "target": "a", "data": []}, 422, "invalid_input"),
        ({"model_key": "m", "target": "a"}, 422, "data_source"),
        ({"model_key": "m", "target": "a", "data": [{"a": 1}], "dataset_id": "x"}, 422, "data_source"),
        ({"model_key": "m", "target": "a", "dataset_id": "missing"}, 404, "not_found"),
        ({"model_key": "m", "target": "a", "data": [{"a": 1, "b": 1}], "features": ["zz"]}, 422, "unknown_columns"),
        ({"model_key": "m", "target": "a", "data": [{"a": 1}], "params": {"max_iter": 0}}, 422, "invalid_input"),
        ({"model_key": "m", "target": "a", "data": [{"a": 1}], "params": {"hidden": 3}}, 422, "invalid_input"),
        ({"model_key": "m", "target": "a", "data": [{"a": 1}], "column_types": {"a": "weird"}}, 422, "invalid_input"),
    ],
)
def test_bad_training_requests_are_refused_up_front(client: TestClient, accounts: Accounts, payload, status, code) -> None:
    _, headers = accounts.login_as("sloppy")
    response = client.post("/train", headers=headers, json=payload)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert client.get("/jobs", headers=headers).json()["total"] == 0
    assert client.get("/datasets", headers=headers).json()["total"] == 0


def test_training_on_unusable_data_fails_with_a_readable_reason(client: TestClient, accounts: Accounts, database) -> None:
    _, headers = accounts.login_as("tester")
    one_class = [{"x": i, "y": "same"} for i in range(50)]
    # Inline data is checked before anything is stored; a stored dataset's target column is read
    # and checked before a job exists; what only training finds out fails in the job.
    refused = client.post("/train", headers=headers, json={"model_key": "broken", "target": "y", "data": one_class})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "single_class"
    assert client.get("/datasets", headers=headers).json()["total"] == 0
    dataset = upload(client, headers, pd.DataFrame(one_class))
    refused = client.post("/train", headers=headers, json={"model_key": "broken", "target": "y", "dataset_id": dataset["id"]})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "single_class"
    assert client.get("/jobs", headers=headers).json()["total"] == 0
    too_few = upload(client, headers, pd.DataFrame([{"x": i, "y": "ab"[i % 2]} for i in range(10)]))
    job_id = client.post("/train", headers=headers, json={"model_key": "broken", "target": "y", "dataset_id": too_few["id"]}).json()["job_id"]
    job = wait_job(client, headers, job_id)
    assert job["status"] == "failed" and "too few to train on" in job["error"]
    assert client.get("/models/broken", headers=headers).status_code == 404  # no half version


def test_bad_prediction_requests(client: TestClient, trained) -> None:
    headers = trained["headers"]
    row = records(trained["frame"].drop(columns="income").head(1))
    cases = [
        ("/models/nope/predict", {"data": row}, 404, "unknown_model"),
        ("/models/adult/predict", {"data": row, "version": "9.9.9"}, 404, "unknown_version"),
        ("/models/adult/predict", {"data": []}, 422, "empty_data"),
        ("/models/adult/predict", {"data": [{"age": 30}]}, 422, "missing_columns"),
        ("/models/adult/predict", {"data": row * 1001}, 413, "batch_too_large"),
        ("/models/adult/predict", {"data": "not a list"}, 422, "invalid_input"),
        ("/predict", {"model_key": "nope", "data": row}, 404, "unknown_model"),
        ("/predict", {"model_key": "adult", "data": []}, 422, "empty_data"),
        ("/predict", {"model_key": "adult"}, 422, "data_source"),
    ]
    for path, body, status, code in cases:
        response = client.post(path, headers=headers, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (path, response.text)
        if code == "missing_columns":
            assert "workclass" in response.json()["error"]["message"]


def test_async_prediction_with_missing_columns_fails_readably(client: TestClient, trained) -> None:
    headers = trained["headers"]
    job_id = client.post("/predict", headers=headers, json={"model_key": "adult", "data": [{"age": 30}]}).json()["job_id"]
    job = wait_job(client, headers, job_id)
    assert job["status"] == "failed" and "workclass" in job["error"]
    export = client.get(f"/predict/{job_id}/export", headers=headers)
    assert export.status_code == 409 and export.json()["error"]["code"] == "job_not_completed"
    assert client.get(f"/predict/{job_id}", headers=headers).json()["results"] is None


def test_unsupported_content_type(client: TestClient, trained) -> None:
    response = client.post("/predict", headers={**trained["headers"], "Content-Type": "text/plain"}, content=b"hello")
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media_type"
