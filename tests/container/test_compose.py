"""docker-compose.yml brought up with podman-compose, as a team would run it: PostgreSQL, Redis,
the one-shot migration, two API replicas and a Celery worker, all from the image `make
test-image` built (with stand-ins for postgres:16 and redis:7, see deploy/podman/). A training
job submitted to one replica is run by the worker and read back from the other, then both
replicas predict with the model.

podman-compose has no systemd here, so it runs no healthchecks and ignores
`depends_on: condition`; the stages the conditions describe are walked by hand instead:
database and broker, then `migrate` to completion, then the APIs and the worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.container.test_image import IMAGE, podman
from tests.helpers import TINY_PARAMS, adult_sample, records, upload, wait_job

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
ADMIN_PASSWORD = "compose-admin-password-1"
APIS = ("http://127.0.0.1:8085", "http://127.0.0.1:8086")  # the compose file's published ports

pytestmark = pytest.mark.skipif(
    not IMAGE, reason="needs a built image: `make test-image` (called by `make test`) builds it and sets ML_TEST_IMAGE")


def compose(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"ML_ADMIN_PASSWORD": ADMIN_PASSWORD}
    result = subprocess.run([str(Path(sys.executable).parent / "podman-compose"), *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"podman-compose {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def until(check, what: str, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    name = COMPOSE["name"]
    podman("tag", IMAGE, COMPOSE["x-mlservice"]["image"])  # the name the compose file runs
    compose("down", "-v", "-t", "5")  # nothing left from an interrupted run
    started = time.monotonic()
    try:
        compose("up", "-d", "--no-deps", "postgres", "redis")
        until(lambda: podman("exec", f"{name}_postgres_1", "pg_isready", "-h", "127.0.0.1", "-U", "mlservice",
                             check=False).returncode == 0, "PostgreSQL ready")
        compose("up", "-d", "--no-deps", "migrate")
        assert podman("wait", f"{name}_migrate_1", timeout=120).stdout.strip() == "0", \
            podman("logs", f"{name}_migrate_1").stderr
        compose("up", "-d", "--no-deps", "api-1", "api-2", "worker")
        until(lambda: all(httpx.get(f"{api}/health", timeout=2).json()["queue"]["workers"] >= 1 for api in APIS),
              "both API replicas healthy and seeing the worker")
        print(f"\ncompose: postgres, redis, migrate, 2 APIs and a worker up in {time.monotonic() - started:.0f} s")
        yield
    except BaseException:
        for service in ("migrate", "api-1", "api-2", "worker"):
            logs = podman("logs", f"{name}_{service}_1", check=False)
            print(f"--- {service} ---\n{(logs.stdout + logs.stderr)[-3000:]}")
        raise
    finally:
        compose("down", "-v", "-t", "10")


def test_two_replicas_and_a_worker_train_and_predict_on_postgresql(stack) -> None:
    one, two = (httpx.Client(base_url=api, timeout=60) for api in APIS)
    for api in (one, two):
        health = api.get("/health").json()
        assert health["database"]["backend"] == "postgresql" and health["queue"]["backend"] == "celery", health
    token = one.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}  # a session made by one replica, honoured by both
    one.cookies.clear()
    frame = adult_sample(300, seed=11)
    dataset = upload(one, headers, frame)  # the file lands on the shared artifacts volume
    submitted = one.post("/train", headers=headers, json={
        "model_key": "compose", "target": "income", "dataset_id": dataset["id"], "params": TINY_PARAMS})
    assert submitted.status_code == 202, submitted.text
    job = wait_job(two, headers, submitted.json()["job_id"], timeout=300)  # followed on the other replica
    assert job["status"] == "completed", job

    rows = records(frame.drop(columns="income").head(5))
    answers = [api.post("/models/compose/predict", headers=headers, json={"data": rows}) for api in (one, two)]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].json()["results"] == answers[1].json()["results"]  # one model, from the shared volume
