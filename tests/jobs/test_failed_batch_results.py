"""The daily leftovers sweep removes the results file of a batch prediction that failed after
writing it, once the file is a day old, and never the results of a completed or running batch."""

from __future__ import annotations

import os
import time

from fastapi.testclient import TestClient
from sqlalchemy import update

from mlservice.artifacts import ArtifactStore
from mlservice.jobs.models import Job, JobStatus
from mlservice.predictions.log import LOG_DIR
from mlservice.predictions.service import results_path
from mlservice.scheduler import LEFTOVER_AGE_S, sweep_leftovers
from tests.helpers import Accounts, adult_sample, records, train, wait_job


def test_sweep_removes_day_old_results_of_failed_batches_only(
    client: TestClient, accounts: Accounts, settings, database
) -> None:
    _, headers = accounts.login_as("result_sweeper")
    train(client, headers, "swept", adult_sample(200))
    store = ArtifactStore(settings.effective_artifacts_root)

    def batch(seed: int) -> dict:
        response = client.post(
            "/predict",
            headers=headers,
            json={"model_key": "swept", "data": records(adult_sample(20, seed=seed))},
        )
        assert response.status_code == 202, response.text
        return wait_job(client, headers, response.json()["job_id"])

    # A file where the model's prediction log folder goes: a batch writes its results, then
    # fails on its last step (logging its rows), as on a full or broken disk.
    blocker = store.path(f"{LOG_DIR}/swept")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"not a folder")
    failed, young_failed = batch(1), batch(2)
    blocker.unlink()
    completed, running = batch(3), batch(4)
    for job in (failed, young_failed):
        assert job["status"] == "failed", job
    for job in (completed, running):
        assert job["status"] == "completed", job
    with database.session(write=True) as session:  # a batch still writing, as a worker sees it
        session.execute(
            update(Job)
            .where(Job.id == running["id"])
            .values(status=JobStatus.running.value, finished_at=None)
        )

    results = {
        job["id"]: store.path(results_path(job["id"]))
        for job in (failed, young_failed, completed, running)
    }
    assert all(path.exists() for path in results.values()), "each batch wrote its results file"
    day_old = time.time() - LEFTOVER_AGE_S - 60
    for job in (failed, completed, running):
        os.utime(results[job["id"]], (day_old, day_old))

    sweep_leftovers(database, store)

    assert not results[failed["id"]].exists(), "a day-old results file of a failed batch goes"
    assert results[young_failed["id"]].exists(), "a younger one stays (its writer may still run)"
    assert results[completed["id"]].exists() and results[running["id"]].exists()
    assert store.path(f"predictions/{failed['id']}/input.parquet").exists(), "only the results go"
    served = client.get(f"/predict/{completed['id']}", headers=headers).json()
    assert served["status"] == "completed" and len(served["results"]) == 20
    gone = client.get(f"/predict/{failed['id']}", headers=headers)
    assert (
        gone.status_code == 200
        and gone.json()["status"] == "failed"
        and gone.json()["results"] is None
    )
