"""Test helpers shared by the HTTP tests of datasets, training, registry and predictions."""

from __future__ import annotations

import io
import time
from functools import cache
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME

REPO = Path(__file__).resolve().parents[1]
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]
FINAL = {"completed", "failed", "cancelled"}
SMALL_PARAMS = {"hidden_layer_sizes": [16], "max_iter": 15}
TINY_PARAMS = {"hidden_layer_sizes": [8], "max_iter": 10}  # for tests about the service, not the model
USER_PASSWORD = "user-password-1"


@cache
def adult_train() -> pd.DataFrame:
    return pd.read_csv(REPO / "datasets/adult/adult.data", names=ADULT_COLUMNS,
                       skipinitialspace=True, na_values="?")


@cache
def adult_test() -> pd.DataFrame:
    frame = pd.read_csv(REPO / "datasets/adult/adult.test", names=ADULT_COLUMNS,
                        skipinitialspace=True, na_values="?", skiprows=1)
    frame["income"] = frame["income"].str.rstrip(".")
    return frame


def adult_sample(rows: int, seed: int = 0) -> pd.DataFrame:
    return adult_train().sample(rows, random_state=seed).reset_index(drop=True)


def records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def wait_for(condition, what: str, timeout: float = 90, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """The first truthy value of ``condition()``, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def wait_job(client: TestClient, headers: dict, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}", headers=headers).json()
        if job["status"] in FINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")


def upload(client: TestClient, headers: dict, frame: pd.DataFrame, name: str = "data.csv") -> dict:
    response = client.post("/datasets", headers=headers, files={"file": (name, csv_bytes(frame), "text/csv")})
    assert response.status_code == 201, response.text
    return response.json()


def train(client: TestClient, headers: dict, key: str, frame: pd.DataFrame, target: str = "income",
          params: dict | None = None, **extra) -> dict:
    dataset = upload(client, headers, frame)
    response = client.post("/train", headers=headers, json={
        "model_key": key, "target": target, "dataset_id": dataset["id"],
        "params": params if params is not None else SMALL_PARAMS, **extra,
    })
    assert response.status_code == 202, response.text
    job = wait_job(client, headers, response.json()["job_id"])
    assert job["status"] == "completed", job
    return job

def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # tests authenticate explicitly with the bearer header
    return {"Authorization": f"Bearer {response.json()['token']}"}


class Accounts:
    """Creates users of each tier through the real API and logs them in."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.system_admin = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)

    def create(self, username: str, tier: str = "user", password: str = USER_PASSWORD) -> dict:
        response = self.client.post(
            "/auth/users",
            json={"username": username, "password": password, "tier": tier},
            headers=self.system_admin,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def login_as(self, username: str, tier: str = "user") -> tuple[dict, dict[str, str]]:
        user = self.create(username, tier)
        return user, login(self.client, username, USER_PASSWORD)
