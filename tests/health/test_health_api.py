"""GET /health: public, and what it reports about the database, the job queue and the GPU."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from mlservice.app import create_app
from tests.backends import REDIS_URL
from tests.conftest import make_settings
from tests.live_server import free_port


def test_health_needs_no_auth(client: TestClient, database) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["database"] == {"ok": True, "backend": database.backend}
    assert body["version"] and body["uptime_s"] >= 0


def test_health_reports_the_local_pool(client: TestClient, settings) -> None:
    queue = client.get("/health").json()["queue"]
    assert queue == {"backend": "local", "ok": True, "workers": settings.max_workers_limit, "broker": None}


@pytest.mark.parametrize("broker", ["no worker", "unreachable"])
def test_a_celery_queue_without_workers_is_degraded(tmp_path, database, broker: str) -> None:
    url = REDIS_URL if broker == "no worker" else f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(tmp_path, database, queue="celery", broker_url=url, pubsub="local",
                             broker_key_prefix=f"health-{uuid.uuid4().hex[:8]}:")
    with TestClient(create_app(settings, database)) as client:
        response = client.get("/health")
    # Still 200: the body says what is wrong, and the database side is fine.
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["database"]["ok"] is True
    assert body["queue"] == {"backend": "celery", "ok": False, "workers": 0, "broker": broker == "no worker"}


def _gpus_nvidia_smi_lists() -> bool:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    listed = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30, check=False)
    return listed.returncode == 0 and "GPU " in listed.stdout


def test_health_reports_what_torch_sees(client: TestClient) -> None:
    import torch  # the gpu extra is part of the test install

    deadline = time.monotonic() + 120
    gpu = client.get("/health").json()["gpu"]
    while gpu["source"] == "probing" and time.monotonic() < deadline:
        time.sleep(0.5)
        gpu = client.get("/health").json()["gpu"]
    if torch.cuda.is_available():
        first = torch.cuda.get_device_properties(0)
        assert torch.cuda.device_count() >= 1
        assert gpu == {"available": True, "name": first.name, "memory_mb": first.total_memory // 2**20,
                       "source": "torch"}
    elif _gpus_nvidia_smi_lists():  # a GPU this torch build cannot use: nvidia-smi names it
        assert gpu["available"] is True and gpu["source"] == "nvidia-smi" and gpu["name"]
    else:
        assert gpu == {"available": False, "name": None, "memory_mb": None, "source": "torch"}
