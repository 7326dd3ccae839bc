"""Jobs whose worker was lost (distributed mode): the reconciler requeues or fails them, a
redelivery takes over only a stale job, a superseded attempt writes no ending; and the start-up
checks of `serve` / `worker` without a broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from mlservice.db import Database, utcnow
from mlservice.jobs.celery_queue import queue_for
from mlservice.jobs.models import Job
from mlservice.jobs.reporter import JobReporter
from mlservice.jobs.service import reconcile_lost_jobs
from mlservice.training.jobs import TRAIN
from mlservice.wiring import register_job_kinds
from tests.conftest import make_settings


def running_job(database: Database, *, beat_age_s: float, attempts: int = 1) -> str:
    job_id = uuid.uuid4().hex
    beat = utcnow() - timedelta(seconds=beat_age_s)
    with database.session(write=True) as session:
        session.add(Job(
            id=job_id, type="train", status="running", stage="fit_model", progress=40.0,
            stages=[{"name": name, "status": "done" if name == "load" else "pending"} for name in TRAIN.stages],
            params={}, details={}, attempts=attempts, started_at=beat, heartbeat_at=beat, worker="w1@host/1",
        ))
    return job_id


def read(database: Database, job_id: str) -> Job:
    with database.session() as session:
        job = session.get(Job, job_id)
        session.expunge(job)
        return job


def test_reconciler_requeues_a_stale_job_and_leaves_a_live_one(tmp_path: Path, database: Database) -> None:
    settings = make_settings(tmp_path, database, job_heartbeat_s=1, job_heartbeat_timeout_s=30)
    stale = running_job(database, beat_age_s=60)
    live = running_job(database, beat_age_s=2)
    assert reconcile_lost_jobs(database, settings) == [stale]
    job = read(database, stale)
    assert (job.status, job.stage, job.progress, job.worker, job.attempts) == ("queued", None, 0.0, None, 1)
    assert {stage["status"] for stage in job.stages} == {"pending"}
    assert read(database, live).status == "running"
    assert reconcile_lost_jobs(database, settings) == []  # handled once


def test_reconciler_fails_lost_jobs_when_retry_is_off_or_attempts_are_spent(tmp_path: Path, database: Database) -> None:
    no_retry = make_settings(tmp_path, database, retry_lost_jobs=False)
    first = running_job(database, beat_age_s=600)
    assert reconcile_lost_jobs(database, no_retry) == []
    job = read(database, first)
    assert job.status == "failed" and job.error == "interrupted: worker lost" and job.finished_at is not None

    retry = make_settings(tmp_path, database, job_max_attempts=3)
    spent = running_job(database, beat_age_s=600, attempts=3)
    assert reconcile_lost_jobs(database, retry) == []
    assert read(database, spent).error == "interrupted: worker lost after 3 attempt(s)"


def test_reconciler_sends_again_a_queued_job_whose_message_was_lost(tmp_path: Path, database: Database) -> None:
    """The API died between committing a job and sending its message (or the broker refused the
    send, or the reconciler's own requeue): nothing would ever run it. A job queued for longer than
    the heartbeat timeout is sent again, once per timeout; a duplicate of a message still in the
    broker is dropped by the worker that gets it (see the redelivery test below)."""
    settings = make_settings(tmp_path, database, job_heartbeat_timeout_s=30)
    unsent, waiting = running_job(database, beat_age_s=0, attempts=0), running_job(database, beat_age_s=0, attempts=0)
    with database.session(write=True) as session:
        for job_id, age in ((unsent, 120), (waiting, 5)):
            session.execute(update(Job).where(Job.id == job_id).values(
                status="queued", stage=None, started_at=None, heartbeat_at=None, worker=None,
                updated_at=utcnow() - timedelta(seconds=age)))
    assert reconcile_lost_jobs(database, settings) == [unsent]
    assert reconcile_lost_jobs(database, settings) == []  # not again before another timeout
    assert (read(database, unsent).status, read(database, waiting).status) == ("queued", "queued")


def test_redelivery_takes_over_only_a_stale_job_and_the_old_attempt_ends_nothing(database: Database) -> None:
    live = running_job(database, beat_age_s=1)
    assert JobReporter(database, live).start(takeover_after_s=30, worker="w2") is None  # a duplicate
    assert JobReporter(database, live).start() is None  # local mode never takes over

    stale = running_job(database, beat_age_s=120)
    old = JobReporter(database, stale)
    old.attempt = 1  # the attempt on the lost worker
    new = JobReporter(database, stale)
    job = new.start(takeover_after_s=30, worker="w2@host/2")
    assert job is not None and job.attempts == 2 and job.worker == "w2@host/2"
    old.fail("the old attempt must not end the new one")
    old.complete({"accuracy": 0})
    assert read(database, stale).status == "running"
    new.complete({"accuracy": 0.8})
    assert read(database, stale).status == "completed"


def test_heartbeat_refreshes_while_the_job_runs(database: Database) -> None:
    job_id = running_job(database, beat_age_s=0, attempts=0)
    with database.session(write=True) as session:
        session.get(Job, job_id).status = "queued"
    reporter = JobReporter(database, job_id)
    started = reporter.start(takeover_after_s=30)
    reporter.start_heartbeat(0.05)
    try:
        import time

        time.sleep(0.6)
    finally:
        reporter.stop_heartbeat()
    assert read(database, job_id).heartbeat_at > started.heartbeat_at


def test_routing_by_job_type() -> None:
    register_job_kinds()  # as `mlservice worker` and the API do: each kind names its queue
    assert [queue_for(t) for t in ("train", "retrain", "predict", "quality", "drift", "other", None)] == \
        ["train", "train", "predict", "predict", "drift", "default", "default"]


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "ML_DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run([sys.executable, "-m", "mlservice", *args], env=environment, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def test_serve_and_worker_exit_with_one_line_when_the_broker_is_unreachable(tmp_path: Path) -> None:
    unreachable = {"ML_QUEUE": "celery", "ML_BROKER_URL": "redis://:secret@127.0.0.1:1/0"}
    for command in ("serve", "worker"):
        result = run_cli(tmp_path, command, **unreachable)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ML_QUEUE=celery but the broker"), lines
        assert "secret" not in result.stderr and "127.0.0.1:1" in result.stderr
    waited = run_cli(tmp_path, "worker", ML_BROKER_WAIT_S="1.5", **unreachable)
    assert waited.returncode == 2 and "after retrying for 1.5 s" in waited.stderr
    local = run_cli(tmp_path, "worker")
    assert local.returncode == 2 and "set ML_QUEUE=celery" in local.stderr
