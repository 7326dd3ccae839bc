"""Two ways a prediction used to answer 500: a finite number too large for the model's float32
features (now 422 ``invalid_value`` naming the column; a batch job fails with the same message),
and a model bundle deleted from disk (now 503 ``bundle_missing`` saying which version and how to
fix it, and so do the batch and drift jobs that load it; a checksum mismatch stays 500
``bundle_tampered``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.helpers import TINY_PARAMS, Accounts, adult_sample, csv_bytes, records, train, wait_job


@pytest.fixture
def trained(client: TestClient, accounts: Accounts) -> dict:
    _, headers = accounts.login_as("analyst")
    frame = adult_sample(300)
    train(client, headers, "adult", frame, params=TINY_PARAMS)
    return {"headers": headers, "inputs": frame.drop(columns="income")}


def _bundle_dir(
    client: TestClient, headers: dict, key: str = "adult", version: str = "1.0.0"
) -> Path:
    from mlservice.registry.models import ModelVersion

    state = client.app.state
    with state.database.session() as session:
        row = session.query(ModelVersion).filter_by(model_key=key, version=version).one()
        return state.artifacts.path(row.bundle_path)


def _error(response) -> dict:  # type: ignore[no-untyped-def]
    return response.json()["error"]


def test_huge_finite_numbers_answer_422_naming_the_column(client: TestClient, trained) -> None:
    headers, inputs = trained["headers"], trained["inputs"]
    row = records(inputs.head(1))[0]
    for value in (1e300, -1e300, 1e39):
        response = client.post(
            "/models/adult/predict", headers=headers, json={"data": [{**row, "age": value}]}
        )
        assert response.status_code == 422, response.text
        error = _error(response)
        assert error["code"] == "invalid_value"
        assert (
            "column 'age'" in error["message"]
            and "out of range for a 32-bit float" in error["message"]
        )
        assert error["details"] == {"column": "age", "row": 1}
    # more rows than the one-row fast path: the DataFrame path says the same
    many = records(inputs.head(100))
    many[56]["hours_per_week"] = 1e300
    response = client.post("/models/adult/predict", headers=headers, json={"data": many})
    assert response.status_code == 422, response.text
    assert _error(response)["details"] == {"column": "hours_per_week", "row": 57}
    # large but representable values still predict
    ok = client.post(
        "/models/adult/predict",
        headers=headers,
        json={"data": [{**row, "age": 1e30}, {**row, "age": -1e30}]},
    )
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["results"]) == 2


def test_a_batch_with_a_huge_number_fails_with_the_same_message(
    client: TestClient, trained
) -> None:
    headers, inputs = trained["headers"], trained["inputs"]
    batch = inputs.head(30).astype({"capital_gain": float})
    batch.loc[11, "capital_gain"] = 1e300
    submitted = client.post(
        "/predict",
        headers=headers,
        data={"model_key": "adult"},
        files={"file": ("batch.csv", csv_bytes(batch), "text/csv")},
    )
    assert submitted.status_code == 202, submitted.text
    job = wait_job(client, headers, submitted.json()["job_id"])
    assert job["status"] == "failed"
    assert job["error"].startswith(
        "column 'capital_gain' has 1e+300 (row 12): out of range for a 32-bit float"
    )
    assert "internal error" not in job["error"]
    sync = client.post(
        "/models/adult/predict", headers=headers, json={"data": records(batch.iloc[11:12])}
    )
    assert _error(sync)["message"] == job["error"].replace("(row 12)", "(row 1)")


def test_a_deleted_bundle_answers_503_bundle_missing(client: TestClient, trained) -> None:
    headers, inputs = trained["headers"], trained["inputs"]
    row = records(inputs.head(1))
    bundle = _bundle_dir(client, headers)
    (bundle / "network.npz").unlink()
    response = client.post("/models/adult/predict", headers=headers, json={"data": row})
    assert response.status_code == 503, response.text
    error = _error(response)
    assert error["code"] == "bundle_missing"
    message = error["message"]
    assert "version 1.0.0 of model 'adult'" in message and "network.npz" in message
    assert "mlservice restore" in message and "retrain" in message
    assert error["details"]["version"] == "1.0.0" and error["details"]["artifact"].endswith(
        "/network.npz"
    )
    # a batch job loads the bundle the same way and fails with the same words
    job_id = client.post(
        "/predict", headers=headers, json={"model_key": "adult", "data": row}
    ).json()["job_id"]
    job = wait_job(client, headers, job_id)
    assert job["status"] == "failed" and job["error"] == message
    # ... and so does a drift check of that version
    checked = client.post("/drift/check", headers=headers, json={"model_key": "adult"})
    assert checked.status_code == 202, checked.text
    job = wait_job(client, headers, checked.json()["job_id"])
    assert job["status"] == "failed" and job["error"] == message
    # the whole version directory gone: the same answer
    shutil.rmtree(bundle)
    response = client.post("/models/adult/predict", headers=headers, json={"data": row})
    assert response.status_code == 503 and _error(response)["code"] == "bundle_missing"
    assert "version 1.0.0 of model 'adult'" in _error(response)["message"]


def test_a_modified_bundle_stays_bundle_tampered(client: TestClient, trained) -> None:
    headers, inputs = trained["headers"], trained["inputs"]
    path = _bundle_dir(client, headers) / "network.npz"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    response = client.post(
        "/models/adult/predict", headers=headers, json={"data": records(inputs.head(1))}
    )
    assert response.status_code == 500
    assert _error(response)["code"] == "bundle_tampered"
