"""The universal jobs system through HTTP: listing, filters, visibility, cancel, recovery."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from mlservice.app import create_app
from mlservice.db import utcnow
from mlservice.jobs.models import Job, JobStatus, JobType
from mlservice.jobs.service import new_job
from mlservice.origin import Origin
from tests.helpers import Accounts, adult_sample, records, wait_job

SLOW_PARAMS = {"hidden_layer_sizes": [256, 256], "max_iter": 400, "early_stopping": False}


def test_jobs_are_listed_filtered_and_private(client: TestClient, accounts: Accounts) -> None:
    alice, alice_headers = accounts.login_as("alice_j")
    _, bob_headers = accounts.login_as("bob_j")
    frame = adult_sample(200)
    first = client.post("/train", headers=alice_headers, json={
        "model_key": "a1", "target": "income", "data": records(frame), "params": {"hidden_layer_sizes": [4], "max_iter": 3},
    }).json()["job_id"]
    wait_job(client, alice_headers, first)
    quality = client.post("/quality", headers=alice_headers, json={
        "model_key": "a1", "target": "income", "data": records(frame.head(50)),
    }).json()["job_id"]
    wait_job(client, alice_headers, quality)

    mine = client.get("/jobs", headers=alice_headers).json()
    assert mine["total"] == 2 and {j["id"] for j in mine["items"]} == {first, quality}
    assert client.get("/jobs", headers=bob_headers).json()["total"] == 0
    assert client.get(f"/jobs/{first}", headers=bob_headers).status_code == 404
    assert client.post(f"/jobs/{first}/cancel", headers=bob_headers).status_code == 404
    admin_view = client.get("/jobs", params={"user_id": alice["id"]}, headers=accounts.system_admin).json()
    assert admin_view["total"] == 2

    by_type = client.get("/jobs", params={"type": "quality"}, headers=alice_headers).json()
    assert [j["id"] for j in by_type["items"]] == [quality]
    by_model = client.get("/jobs", params={"model_key": "a1", "status": "completed"}, headers=alice_headers).json()
    assert by_model["total"] == 2
    page = client.get("/jobs", params={"limit": 1, "offset": 1}, headers=alice_headers).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    later = (utcnow() + timedelta(hours=1)).isoformat()
    assert client.get("/jobs", params={"updated_since": later}, headers=alice_headers).json()["total"] == 0
    assert client.get("/jobs", params={"status": "exploded"}, headers=alice_headers).status_code == 422

    job = client.get(f"/jobs/{first}", headers=alice_headers).json()
    for field in ("id", "type", "status", "stage", "progress", "created_at", "started_at", "finished_at", "result", "error"):
        assert field in job
    assert job["duration_s"] > 0 and job["source"] == "api" and job["user_agent"]
    finished = client.post(f"/jobs/{first}/cancel", headers=alice_headers)
    assert finished.status_code == 409 and finished.json()["error"]["code"] == "job_finished"


def test_cancel_a_running_training(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("canceller")
    job_id = client.post("/train", headers=headers, json={
        "model_key": "slow", "target": "income", "data": records(adult_sample(3000)), "params": SLOW_PARAMS,
    }).json()["job_id"]
    import time

    deadline = time.monotonic() + 120
    while client.get(f"/jobs/{job_id}", headers=headers).json()["stage"] != "fit_model":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    response = client.post(f"/jobs/{job_id}/cancel", headers=headers)
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    job = wait_job(client, headers, job_id, timeout=60)
    assert job["status"] == "cancelled"
    assert client.get("/models/slow", headers=headers).status_code == 404


def test_queued_job_cancelled_before_it_starts(client: TestClient, accounts: Accounts, database) -> None:
    user, headers = accounts.login_as("queuer")
    from mlservice.auth.models import Tier
    from mlservice.principal import Principal

    with database.session(write=True) as session:
        job = new_job(session, JobType.other, Principal(user["id"], "queuer", Tier.user, "session"),
                      Origin("api", "127.0.0.1", "test"), params={})
        job_id = job.id
    response = client.post(f"/jobs/{job_id}/cancel", headers=headers)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_restart_completes_a_training_killed_after_registering_its_version(
    client: TestClient, accounts: Accounts, settings, database
) -> None:
    """Registering the version is a training's last step. A kill between that commit and the
    job's own end used to leave the job failed beside a usable version; recovery completes it."""
    from sqlalchemy import update

    from tests.helpers import train

    _, headers = accounts.login_as("recovering")
    done = train(client, headers, "recovered", adult_sample(200))
    with database.session(write=True) as session:  # back to how the kill left it
        session.execute(update(Job).where(Job.id == done["id"]).values(
            status=JobStatus.running.value, result=None, model_version=None, finished_at=None, progress=96.0))
    with TestClient(create_app(settings, database)) as restarted:
        job = restarted.get(f"/jobs/{done['id']}", headers=headers).json()
        assert job["status"] == "completed" and job["error"] is None, job
        assert job["result"] == done["result"] and job["model_version"] == done["result"]["version"]
        model = restarted.get("/models/recovered", headers=headers).json()
        assert model["active_version"] == job["model_version"], model


def test_restart_drops_the_logged_rows_of_a_batch_killed_after_logging(
    client: TestClient, accounts: Accounts, settings, database
) -> None:
    """A batch prediction logs its rows just before it ends. Killed in between, it is failed at
    recovery, and its rows must not stay in the log, where they would count towards drift."""
    from sqlalchemy import update

    from mlservice.predictions.log import LOG_DIR
    from tests.helpers import train

    _, headers = accounts.login_as("batcher")
    train(client, headers, "batched", adult_sample(200))
    kept = client.post("/predict", headers=headers, json={"model_key": "batched", "data": records(adult_sample(30, seed=1))})
    killed = client.post("/predict", headers=headers, json={"model_key": "batched", "data": records(adult_sample(20, seed=2))})
    for started in (kept, killed):
        assert wait_job(client, headers, started.json()["job_id"])["status"] == "completed"
    log_dir = settings.effective_artifacts_root / LOG_DIR / "batched"
    logged = lambda job_id: list(log_dir.glob(f"*/*{job_id}*.parquet"))  # noqa: E731
    killed_id, kept_id = killed.json()["job_id"], kept.json()["job_id"]
    assert logged(killed_id) and logged(kept_id)
    with database.session(write=True) as session:  # back to how the kill left it
        session.execute(update(Job).where(Job.id == killed_id).values(
            status=JobStatus.running.value, result=None, finished_at=None, progress=92.0))
    with TestClient(create_app(settings, database)) as restarted:
        job = restarted.get(f"/jobs/{killed_id}", headers=headers).json()
        assert job["status"] == "failed" and job["error"].startswith("interrupted"), job
    assert not logged(killed_id), "a failed batch's rows are out of the log"
    assert logged(kept_id), "a completed batch keeps its rows"


def test_restart_marks_running_jobs_interrupted_and_requeues_queued(tmp_path, database) -> None:
    import time

    from mlservice.auth.service import ensure_first_admin
    from tests.conftest import make_settings
    from tests.helpers import USER_PASSWORD, login

    # One worker, busy on a long training: the second training waits in the queue. Stopping the
    # app ends the worker mid-fit, which leaves one job running and one queued in the database.
    settings = make_settings(tmp_path, database, max_workers_limit=1)
    with database.session(write=True) as session:
        ensure_first_admin(session, settings)
    with TestClient(create_app(settings, database)) as client:
        _, headers = Accounts(client).login_as("restarter")
        submit = lambda key, rows, params: client.post("/train", headers=headers, json={
            "model_key": key, "target": "income", "data": records(adult_sample(rows)), "params": params,
        }).json()["job_id"]
        running_id = submit("slow", 3000, SLOW_PARAMS)
        deadline = time.monotonic() + 120
        while client.get(f"/jobs/{running_id}", headers=headers).json()["stage"] != "fit_model":
            assert time.monotonic() < deadline, "the long training never started fitting"
            time.sleep(0.2)
        queued_id = submit("small", 300, {"hidden_layer_sizes": [8], "max_iter": 10})
        assert client.get(f"/jobs/{queued_id}", headers=headers).json()["status"] == "queued"
    with database.session() as session:
        assert session.get(Job, running_id).status == "running"
        assert session.get(Job, queued_id).status == "queued"

    with TestClient(create_app(settings, database)) as client:
        headers = login(client, "restarter", USER_PASSWORD)
        interrupted = client.get(f"/jobs/{running_id}", headers=headers).json()
        assert interrupted["status"] == "failed" and interrupted["error"].startswith("interrupted")
        assert interrupted["finished_at"] is not None
        requeued = wait_job(client, headers, queued_id, timeout=120)
        assert requeued["status"] == "completed" and requeued["result"]["version"] == "1.0.0"
        assert client.get("/models/small", headers=headers).json()["active_version"] == "1.0.0"
