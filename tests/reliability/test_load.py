"""Load: 50 concurrent clients against a real `mlservice serve`, on SQLite and on PostgreSQL with
the local job queue, and on PostgreSQL with Celery workers (real `mlservice worker` processes,
the Redis DB of the tests).

The short form of `make soak` (bench/soak.py, which holds the load logic): 10 s per form of
logins (a small share: Argon2), job listings, one-row sync predictions and async predictions.
Asserted: no 5xx and no other unexpected answer, no database error text ("database is locked",
OperationalError, …) in any answer, every async job `completed`, and no ERROR or traceback in the
server's log. Latencies are printed (`pytest -s`), never asserted: the machine is shared."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO_ROOT
from tests.distributed.cluster import fresh_postgres_database

sys.path.insert(0, str(REPO_ROOT / "bench"))
import soak

CLIENTS = 50
DURATION_S = 10.0
CELERY_WORKERS = 2


def assert_clean(report: soak.Report) -> None:
    print("\n" + report.table())
    assert all(report.latencies_ms[name] for name in soak.MIX), (
        f"an operation never ran:\n{report.table()}"
    )
    assert report.failures == dict.fromkeys(soak.MIX, 0), report.table()
    assert report.jobs_submitted >= 1, report.table()
    assert report.jobs_completed == report.jobs_submitted, report.table()
    assert report.log_problems == [], report.table()
    assert report.errors == 0


# `serve --workers N` on the embedded default; PostgreSQL's form runs with one process (the
# hand-over between processes is the same code on both databases, and the suite's time counts).
@pytest.mark.parametrize(("backend", "api_workers"), [("sqlite", "1"), ("sqlite", "2"), ("postgresql", "1")])
def test_fifty_clients_mixed_load_has_no_errors(
    backend: str, api_workers: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(soak.SERVER_SETTINGS, "ML_API_WORKERS", api_workers)
    with ExitStack() as stack:
        url = (
            stack.enter_context(fresh_postgres_database("mlservice_load"))
            if backend == "postgresql"
            else None
        )
        report = soak.run_backend(
            backend, tmp_path, url, clients=CLIENTS, duration=DURATION_S, drain_timeout=90
        )
    assert_clean(report)


def test_fifty_clients_with_celery_workers_has_no_errors(tmp_path: Path) -> None:
    """The same mix with ML_QUEUE=celery: async predictions go through Redis to two worker
    processes, which write their results and job rows to the shared PostgreSQL database."""
    with fresh_postgres_database("mlservice_load") as url:
        report = soak.run_backend(
            "postgresql",
            tmp_path,
            url,
            clients=CLIENTS,
            duration=DURATION_S,
            drain_timeout=90,
            queue="celery",
            workers=CELERY_WORKERS,
        )
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
            ran_on = dict(
                connection.execute(
                    "SELECT split_part(worker, '@', 1), count(*) FROM jobs WHERE type = 'predict' GROUP BY 1"
                ).fetchall()
            )
    assert_clean(report)
    # Every async job ran on a Celery worker, and both workers took a share.
    assert set(ran_on) == {f"worker{index + 1}" for index in range(CELERY_WORKERS)}, ran_on
    assert sum(ran_on.values()) == report.jobs_submitted, (ran_on, report.jobs_submitted)


def test_the_checks_see_a_database_error_and_a_5xx() -> None:
    """The soak's judgement is not blind: the texts a locked or failing database produces count."""
    for body in (
        b'{"error": {"code": "database_busy", "message": "the database stayed locked"}}',
        b"sqlite3.OperationalError: database is locked",
        b"psycopg.errors.DeadlockDetected: deadlock detected",
    ):
        assert soak.DB_ERROR.search(body), body
    assert not soak.DB_ERROR.search(b'{"items": [], "total": 0, "limit": 20, "offset": 0}')
    assert soak.LOG_PROBLEM.search(
        "2026-11-26 08:25:14,061 ERROR mlservice.errors [-] unhandled error on GET /jobs"
    )
    assert not soak.LOG_PROBLEM.search(
        "2026-11-26 08:25:14,061 WARNING mlservice.db.engine [-] database locked, retrying"
    )
    report = soak.Report("sqlite", 1)
    report.latencies_ms["predict_sync"].append(1.0)
    report.failures["predict_sync"] += 1
    assert report.errors == 1
