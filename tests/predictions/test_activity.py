"""GET /predictions/activity: predictions per hour of every model, from the prediction log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from mlservice.artifacts import ArtifactStore
from mlservice.predictions import log as plog
from mlservice.predictions.activity import hourly_counts
from tests.helpers import TINY_PARAMS, Accounts, adult_sample, records, train, wait_job

FEATURES = (("age", "numeric"),)


def _rows(count: int, at: datetime):
    frame = pd.DataFrame({"age": np.arange(count, dtype=float)})
    return plog.build_table(plog.feature_schema(FEATURES), frame, version="1.0.0", labels=["a"] * count,
                            confidences=np.full(count, 0.9), job_id=None, user_id=1, at=at)


def test_rows_land_in_their_clock_hour_and_the_window_ends_with_the_current_hour(tmp_path) -> None:
    store = ArtifactStore(tmp_path)
    start = datetime(2024, 3, 10, 22, tzinfo=UTC)  # the window crosses midnight: two day folders
    plog.write_batch(store, "m", _rows(3, start - timedelta(minutes=1)), "before")  # outside
    plog.write_batch(store, "m", _rows(4, start), "first")
    plog.write_batch(store, "m", _rows(5, start + timedelta(hours=2, minutes=59)), "third")
    plog.write_batch(store, "m", _rows(6, start + timedelta(hours=3)), "after")  # outside
    writer = plog.SyncLogWriter(store)  # an open segment (today's folder) is counted too
    try:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        writer.append("m", _rows(2, datetime.now(UTC)))
        assert hourly_counts(store, "m", start, 3) == [4, 0, 5]
        assert hourly_counts(store, "m", now, 1) == [2]
        assert hourly_counts(store, "nothing-logged", start, 3) == [0, 0, 0]
    finally:
        writer.close()
    assert hourly_counts(store, "m", now, 1) == [2]  # and once compacted to Parquet


def test_activity_counts_sync_and_batch_predictions_per_model(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("analyst")
    frame = adult_sample(300)
    train(client, headers, "adult", frame, params=TINY_PARAMS)
    train(client, headers, "idle", frame, params=TINY_PARAMS)
    for rows in (5, 3):
        response = client.post("/models/adult/predict", headers=headers, json={"data": records(frame.head(rows))})
        assert response.status_code == 200, response.text
    job = client.post("/predict", headers=headers, json={"model_key": "adult", "data": records(frame.head(20))})
    assert wait_job(client, headers, job.json()["job_id"])["status"] == "completed"

    body = client.get("/predictions/activity", headers=headers, params={"hours": 24}).json()
    assert body["hours"] == 24 and body["bucket_s"] == 3600
    start = datetime.fromisoformat(body["start"])
    assert start.minute == start.second == 0
    assert datetime.now(UTC) - start < timedelta(hours=24)
    adult = body["models"]["adult"]
    assert len(adult) == 24 and sum(adult) == 28
    assert sum(adult[-2:]) == 28  # just now: the current hour (or the one before, across a boundary)
    assert body["models"]["idle"] == [0] * 24  # a model nobody asked still gets its row
    assert client.get("/predictions/activity", headers=headers).json()["hours"] == 24  # the default


def test_activity_needs_a_signed_in_user_and_a_window_of_1_to_168_hours(client: TestClient, accounts: Accounts) -> None:
    assert client.get("/predictions/activity").status_code == 401
    _, headers = accounts.login_as("analyst")
    for hours in (0, 169, "a day"):
        response = client.get("/predictions/activity", headers=headers, params={"hours": hours})
        assert response.status_code == 422, response.text
        assert "hours" in response.text
    widest = client.get("/predictions/activity", headers=headers, params={"hours": 168})
    assert widest.status_code == 200 and widest.json() | {"start": None} == {
        "hours": 168, "bucket_s": 3600, "start": None, "models": {}}
