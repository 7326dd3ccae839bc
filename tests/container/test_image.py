"""The container image, built from the unchanged Dockerfile and started as `docker run` would:
no `--init`, so `mlservice serve` is PID 1 and its job pool must survive that (the PID 1 bug of
0.12.0 failed every job there). Driven over HTTP like a user: health, dashboard, login, a
training job, a batch and a sync prediction. Then the bad input: an unusable
`ML_ADMIN_PASSWORD` stops the start with a clear message and leaves no admin behind.

Runs from `make test-image` (which `make test` calls after the suite): it builds the image with
deploy/podman/build-image.sh and names it in ML_TEST_IMAGE. Without an image there is nothing to
test, so the plain `pytest` run skips this module and says why.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from mlservice import __version__
from tests.helpers import TINY_PARAMS, adult_sample, records, train, wait_job
from tests.live_server import free_port

IMAGE = os.environ.get("ML_TEST_IMAGE", "")
ADMIN_PASSWORD = "container-admin-password-1"
IMAGE_UID = 10001  # the Dockerfile's `mlservice` user, owner of /data

pytestmark = pytest.mark.skipif(
    not IMAGE, reason="needs a built image: `make test-image` (called by `make test`) builds it and sets ML_TEST_IMAGE")


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@contextmanager
def container(*env: str, volume: Path | None = None) -> Iterator[tuple[str, str]]:
    """`podman run -d --network=host` on a free port, removed afterwards; its log is printed
    when the test fails."""
    port = free_port()
    name = f"mlservice-test-{port}"
    options = ["--name", name, "--network=host", "-e", f"ML_SERVICE_PORT={port}"]
    for item in env:
        options += ["-e", item]
    if volume is not None:
        options += ["-v", f"{volume}:/data"]
    podman("run", "-d", *options, IMAGE)
    try:
        yield name, f"http://127.0.0.1:{port}"
    except BaseException:
        logs = podman("logs", name, check=False)
        print(f"--- {name}'s log ---\n{(logs.stdout + logs.stderr)[-6000:]}")
        raise
    finally:
        podman("rm", "-f", "-t", "5", name, check=False)


def wait_healthy(url: str, name: str, timeout: float = 120) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        assert state == "running", f"the container stopped ({state}) before /health answered"
        time.sleep(0.25)
    raise AssertionError(f"/health did not answer within {timeout} s")


def test_the_image_runs_the_whole_product_as_pid_1() -> None:
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    with container(f"ML_ADMIN_PASSWORD={ADMIN_PASSWORD}") as (name, url):
        started = wait_healthy(url, name)
        print(f"\nimage {size / 1e6:.0f} MB; /health answered {started:.1f} s after `podman run`")
        top = podman("top", name, "pid", "args").stdout.splitlines()[1:]
        assert top[0].split()[0] == "1" and "mlservice serve" in top[0], top  # PID 1, no init before it
        with httpx.Client(base_url=url, timeout=60) as client:
            assert client.get("/health").json()["version"] == __version__
            index = client.get("/")
            assert index.status_code == 200 and "/_next/static/" in index.text, index.text[:300]
            assert client.get("/login/").status_code == 200

            token = client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
            assert token.status_code == 200, token.text
            client.cookies.clear()
            headers = {"Authorization": f"Bearer {token.json()['token']}"}
            frame = adult_sample(300, seed=7)
            job = train(client, headers, "container", frame, params=TINY_PARAMS)  # runs in the pool under PID 1
            assert job["status"] == "completed"

            rows = records(frame.drop(columns="income").head(20))
            batch = client.post("/predict", headers=headers, json={"model_key": "container", "data": rows})
            assert batch.status_code == 202, batch.text
            assert wait_job(client, headers, batch.json()["job_id"])["status"] == "completed"
            sync = client.post("/models/container/predict", headers=headers, json={"data": rows[:3]})
            assert sync.status_code == 200, sync.text
            assert [r["prediction"] in ("<=50K", ">50K") for r in sync.json()["results"]] == [True] * 3
        # `docker stop` is a SIGTERM to PID 1: a clean shutdown, exit status 0.
        stopping = time.monotonic()
        podman("stop", "-t", "30", name, timeout=60)
        assert podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
        print(f"stopped in {time.monotonic() - stopping:.1f} s")


def test_a_bad_admin_password_stops_the_start_and_creates_no_admin(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, IMAGE_UID, IMAGE_UID)
    with container("ML_ADMIN_PASSWORD= padded-by-a-quoting-mistake ", volume=data) as (name, _url):
        status = podman("wait", name, timeout=90).stdout.strip()
        log = podman("logs", name).stdout + podman("logs", name).stderr
        assert status == "2", log
        assert "Invalid setting ML_ADMIN_PASSWORD: starts or ends with a space" in log, log
    database = data / "mlservice.db"
    if database.exists():  # nothing should have been created; if a file is there, it holds no user
        with sqlite3.connect(database) as db:
            assert db.execute("select count(*) from sqlite_master where name = 'users'").fetchone()[0] == 0 \
                or db.execute("select count(*) from users").fetchone()[0] == 0

    # Fixed, on the same volume: the admin is the one the corrected setting names.
    with container(f"ML_ADMIN_PASSWORD={ADMIN_PASSWORD}", volume=data) as (name, url):
        wait_healthy(url, name)
        login = httpx.post(f"{url}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
