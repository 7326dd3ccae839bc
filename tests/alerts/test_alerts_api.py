"""Alerts through HTTP: a failed job raises one, its owner acknowledges it, and it fires again."""

from __future__ import annotations

import time

import pandas as pd
from fastapi.testclient import TestClient

from tests.helpers import TINY_PARAMS, Accounts, upload, wait_job


def _active_alerts(client: TestClient, headers: dict, **filters) -> list[dict]:
    """The worker raises a failed job's alert just after it marks the job failed."""
    deadline = time.monotonic() + 10
    while True:
        items = client.get("/health/alerts", headers=headers, params={"status": "active", **filters}).json()["items"]
        if items or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def test_a_failed_job_alert_is_acknowledged_then_fires_again(client: TestClient, accounts: Accounts) -> None:
    user, headers = accounts.login_as("on_call")
    # Too few rows to train on: found by the job (a one-class table is refused before one exists).
    dataset = upload(client, headers, pd.DataFrame([{"x": i, "y": "ab"[i % 2]} for i in range(10)]))

    def fail_training() -> str:
        started = client.post("/train", headers=headers, json={
            "model_key": "broken", "target": "y", "dataset_id": dataset["id"], "params": TINY_PARAMS})
        job = wait_job(client, headers, started.json()["job_id"])
        assert job["status"] == "failed", job
        return job["id"]

    first_job = fail_training()
    [alert] = _active_alerts(client, headers, kind="job_failed", model_key="broken")
    assert alert["severity"] == "warning" and alert["occurrences"] == 1
    assert alert["link"] == {"type": "job", "id": first_job}
    assert alert["message"].startswith("train job for broken failed") and "too few to train on" in alert["message"]

    acked = client.post(f"/health/alerts/{alert['id']}/ack", headers=headers)
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged" and acked.json()["acknowledged_by"] == user["id"]
    assert client.get("/health/alerts", headers=headers, params={"kind": "job_failed"}).json()["total"] == 0
    listed = client.get("/health/alerts", headers=headers, params={"status": "acknowledged"}).json()
    assert [a["id"] for a in listed["items"]] == [alert["id"]]
    again = client.post(f"/health/alerts/{alert['id']}/ack", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "alert_not_active"
    assert client.post("/health/alerts/987654/ack", headers=headers).status_code == 404

    second_job = fail_training()  # the same condition again: the same alert, active once more
    [refired] = _active_alerts(client, headers, kind="job_failed")
    assert refired["id"] == alert["id"] and refired["occurrences"] == 2
    assert refired["acknowledged_at"] is None and refired["link"] == {"type": "job", "id": second_job}


def test_alert_filters_are_validated(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("filterer")
    assert client.get("/health/alerts").status_code == 401
    assert client.get("/health/alerts", headers=headers, params={"status": "sleeping"}).status_code == 422
    assert client.get("/health/alerts", headers=headers, params={"limit": 0}).status_code == 422
    empty = client.get("/health/alerts", headers=headers, params={"status": "all", "limit": 5}).json()
    assert empty == {"items": [], "total": 0, "limit": 5, "offset": 0}
