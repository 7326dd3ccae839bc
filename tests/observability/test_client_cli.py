"""The Python client and the CLI drive train → predict → drift against a live server; /metrics moves."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlservice.client import ApiError, Client, JobFailed, NotFoundError
from tests.helpers import adult_sample
from tests.live_server import LiveServer, live_server

METRICS_TOKEN = "scrape-" + "m" * 32


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live"), ML_METRICS_TOKEN=METRICS_TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "data.csv"
    adult_sample(300, seed=3).to_csv(path, index=False)
    return path


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_client_flow_and_metrics(server: LiveServer, data_csv: Path) -> None:
    with Client(server.url) as anonymous:
        assert anonymous.health()["status"] == "ok"
        with pytest.raises(ApiError) as denied:
            anonymous.models()
        assert denied.value.status_code == 401 and denied.value.code and "authentication" in denied.value.message

    client = Client(server.url)
    client.login("admin", "live-admin-password-1")
    api_token = client.create_token("tests")["token"]
    client.close()

    with Client(server.url, token=api_token) as ml:
        before = samples(ml.metrics())
        seen: list[dict] = []
        job = ml.train("adult_client", data_csv, target="income", progress=seen.append, timeout=300)
        assert job["status"] == "completed" and job["result"]["version"] == "1.0.0"
        assert seen and seen[-1]["status"] == "completed"
        assert ml.model("adult_client")["active_version"] == "1.0.0"

        frame = pd.read_csv(data_csv).drop(columns=["income"])
        sync = ml.predict("adult_client", frame.head(120), chunk_rows=50)  # three calls
        assert isinstance(sync, pd.DataFrame) and len(sync) == 120
        assert set(sync["prediction"]) <= {"<=50K", ">50K"} and sync["confidence"].between(0, 1).all()
        assert {"p:<=50K", "p:>50K"} <= set(sync.columns)

        batch = ml.predict_async("adult_client", frame, timeout=300)
        assert len(batch) == len(frame) and {"prediction", "confidence", "age"} <= set(batch.columns)

        report = ml.drift_check("adult_client", timeout=300)
        assert report["verdict"] in {"no_drift", "drift"} and report["sample_size"] >= 300
        listed = ml.drift_reports(model_key="adult_client")
        assert listed["items"][0]["id"] == report["id"] == ml.drift_report(report["id"])["id"]
        assert ml.jobs(type="train", model_key="adult_client")["total"] == 1
        assert ml.events(limit=5)["items"]
        assert "items" in ml.alerts()

        with pytest.raises(NotFoundError) as missing:
            ml.predict("no_such_model", frame.head(2))
        assert missing.value.status_code == 404 and "no_such_model" in missing.value.message
        with pytest.raises(ApiError) as invalid:
            ml.train("adult_client", data_csv, target="no_such_column", timeout=300)
        assert invalid.value.code == "unknown_target" and "no_such_column" in invalid.value.message
        one_class = pd.read_csv(data_csv).assign(income="<=50K")
        with pytest.raises(ApiError) as refused:  # found before a job exists
            ml.train("adult_client", one_class, target="income", timeout=300)
        assert refused.value.code == "single_class"
        too_few = pd.read_csv(data_csv).groupby("income").head(5)  # found by the job
        with pytest.raises(JobFailed) as failed:
            ml.train("adult_client", too_few, target="income", timeout=300)
        assert failed.value.job["status"] == "failed" and failed.value.job["error"]
        # The worker raises the alert just after it marks the job failed.
        deadline = time.monotonic() + 10
        while not ml.alerts(status="active", kind="job_failed", model_key="adult_client")["items"]:
            assert time.monotonic() < deadline, "the failed job raised no active alert"
            time.sleep(0.2)

        after = samples(ml.metrics())
    predict_route = dict(method="POST", route="/models/{model_key}/predict", status="200")
    assert value(after, "mlservice_http_requests_total", **predict_route) \
        - value(before, "mlservice_http_requests_total", **predict_route) == 3
    assert value(after, "mlservice_http_request_duration_seconds_count",
                 method="POST", route="/models/{model_key}/predict") >= 3
    assert value(after, "mlservice_predictions_total", model_key="adult_client", mode="sync") == 120
    assert value(after, "mlservice_predictions_total", model_key="adult_client", mode="async") == 300
    assert value(after, "mlservice_jobs", type="train", status="completed") == 1
    assert value(after, "mlservice_jobs", type="train", status="failed") == 1
    assert value(after, "mlservice_job_duration_seconds_count", type="train", status="completed") == 1
    assert value(after, "mlservice_queue_depth") == 0 and value(after, "mlservice_database_up") == 1
    drift_features = [labels for (name, labels) in after if name == "mlservice_drift_score"]
    assert any(dict(labels)["feature"] == "age" for labels in drift_features)
    assert value(after, "mlservice_alerts_active", kind="job_failed", severity="warning") == 1
    assert not any("/jobs/" in dict(labels).get("route", "") and "{" not in dict(labels)["route"]
                   for (_name, labels) in after), "raw paths must never become labels"


def test_metrics_access(server: LiveServer) -> None:
    import httpx

    assert httpx.get(f"{server.url}/metrics").status_code == 401
    scraped = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    admin = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {server.admin_token()}"})
    assert admin.status_code == 200
    httpx.post(f"{server.url}/auth/register", json={"username": "plainuser", "password": "plain-password-1"})
    user = httpx.post(f"{server.url}/auth/login", json={"username": "plainuser", "password": "plain-password-1"})
    forbidden = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {user.json()['token']}"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    dashboard = (Path(__file__).resolve().parents[2] / "deploy/grafana-dashboard.json").read_text()
    served = {family.name for family in text_string_to_metric_families(scraped.text)}
    for name in set(re.findall(r"mlservice_[a-z_]+", dashboard)):
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert base in served, f"the Grafana dashboard uses {name}, which /metrics does not serve"
    before = value(samples(scraped.text), "mlservice_login_failures_total")
    httpx.post(f"{server.url}/auth/login", json={"username": "plainuser", "password": "wrong-password"})
    deadline = time.monotonic() + 10  # counted when the event writer has written the event
    while time.monotonic() < deadline:
        text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        if value(samples(text), "mlservice_login_failures_total") == before + 1:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("login failure not counted")


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlservice", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_workflow_and_status(server: LiveServer, data_csv: Path, tmp_path: Path) -> None:
    env = server.env | {"ML_URL": server.url, "ML_TOKEN": server.admin_token()}
    trained = run("train", str(data_csv), "--target", "income", "--model-key", "adult_cli",
                  "--param", "max_iter=10", env=env, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "trained adult_cli 1.0.0" in trained.stdout and "accuracy" in trained.stdout

    out = tmp_path / "out.csv"
    predicted = run("predict", "--model-key", "adult_cli", str(data_csv), "-o", str(out), env=env, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 300 and {"prediction", "confidence"} <= set(frame.columns)
    synced = run("predict", "--model-key", "adult_cli", "--sync", str(data_csv), env=env, cwd=tmp_path)
    assert synced.returncode == 0 and len(synced.stdout.strip().splitlines()) == 301

    drift = run("drift", "--model-key", "adult_cli", env=env, cwd=tmp_path)
    assert drift.returncode == 0, drift.stderr
    assert "adult_cli 1.0.0:" in drift.stdout and ("no_drift" in drift.stdout or "drift" in drift.stdout)

    missing = run("predict", "--model-key", "nope", str(data_csv), env=env, cwd=tmp_path)
    assert missing.returncode == 1 and "error:" in missing.stderr and "nope" in missing.stderr
    no_token = run("drift", "--model-key", "adult_cli", env=env | {"ML_TOKEN": ""}, cwd=tmp_path)
    assert no_token.returncode == 1 and "401" in no_token.stderr

    status = run("status", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.startswith("service    up") and "database   up" in status.stdout
    # Without --url the server's own settings give the address (run on the server's machine).
    local = run("status", env=server.env, cwd=tmp_path)
    assert local.returncode == 0, local.stdout + local.stderr
    from tests.live_server import free_port

    down = run("status", "--url", f"http://127.0.0.1:{free_port()}", env=env, cwd=tmp_path)
    assert down.returncode == 1 and "down" in down.stdout
