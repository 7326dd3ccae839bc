"""A real `mlservice serve` process: killed mid-training, restarted, and driven with the
0.11.2's own curl example for /predict."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import adult_sample, records
from tests.test_cli import free_port

ADMIN = {"username": "admin", "password": "restart-admin-pw"}


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {
        "PATH": os.environ["PATH"], "HOME": str(data_dir), "ML_DATA_DIR": str(data_dir),
        "ML_SERVICE_PORT": str(port), "ML_SERVICE_HOST": "127.0.0.1",
        "ML_ADMIN_PASSWORD": ADMIN["password"], "ML_MAX_WORKERS_LIMIT": "2", "ML_WORKER_CPU_PER_TASK": "1",
    }
    process = subprocess.Popen([sys.executable, "-m", "mlservice", "serve"], env=env, cwd=data_dir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("server did not start")


def wait(base: str, headers: dict, job_id: str, until: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/jobs/{job_id}", headers=headers).json()
        if job["status"] in until or job.get("stage") in until:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job never reached {until}: {job}")


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()]


def _is_python(pid: int) -> bool:
    try:
        return "python" in Path(f"/proc/{pid}/cmdline").read_text(errors="ignore")
    except OSError:
        return False


def test_kill_during_training_then_restart(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    try:
        token = httpx.post(f"{base}/auth/login", json=ADMIN).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        job_id = httpx.post(f"{base}/train", headers=headers, timeout=60, json={
            "model_key": "long", "target": "income", "data": records(adult_sample(3000)),
            "params": {"hidden_layer_sizes": [256, 256], "max_iter": 500, "early_stopping": False},
        }).json()["job_id"]
        wait(base, headers, job_id, {"fit_model"})
        workers = children_of(server.pid)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
    # Workers poll for their parent (a fraction of a second); allow for a loaded machine.
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in workers if _is_python(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive == [], "worker processes outlived the killed server"

    connection = sqlite3.connect(tmp_path / "mlservice.db")
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    connection.close()

    server = start_server(tmp_path, port)
    try:
        token = httpx.post(f"{base}/auth/login", json=ADMIN).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        job = httpx.get(f"{base}/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "failed" and job["error"].startswith("interrupted")
        running = httpx.get(f"{base}/jobs", params={"status": "running"}, headers=headers).json()
        assert running["total"] == 0
        assert httpx.get(f"{base}/models/long", headers=headers).status_code == 404

        # A new training works, and 0.11.2's curl example predicts with it as written.
        rows = [{"field1": f"value{i % 3}", "field2": f"value{i % 2}", "label": f"L{i % 3}"} for i in range(120)]
        new_job = httpx.post(f"{base}/train", headers=headers, json={
            "model_key": "nomenclature_label_classifier", "target": "label", "data": rows,
            "params": {"hidden_layer_sizes": [8], "max_iter": 30},
        }).json()["job_id"]
        assert wait(base, headers, new_job, {"completed", "failed"})["status"] == "completed"
        example = subprocess.run([
            "curl", "-s", "-X", "POST", f"{base}/predict",
            "-H", f"Authorization: Bearer {token}",
            "-H", "Content-Type: application/json",
            "-d", '{\n    "model_key": "nomenclature_label_classifier",\n    "version": "1.0.0",\n'
                  '    "data": [{"field1": "value1", "field2": "value2"}]\n  }',
        ], capture_output=True, text=True, timeout=30)
        predict_job = json.loads(example.stdout)["job_id"]
        status = subprocess.run(["curl", "-s", "-X", "GET", f"{base}/predict/{predict_job}",
                                 "-H", f"Authorization: Bearer {token}"], capture_output=True, text=True)
        deadline = time.monotonic() + 60
        body = json.loads(status.stdout)
        while body["status"] not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.3)
            body = httpx.get(f"{base}/predict/{predict_job}", headers=headers).json()
        assert body["status"] == "completed", body
        assert body["results"][0]["prediction"] in {"L0", "L1", "L2"}
    finally:
        server.terminate()
        server.wait(timeout=30)
