"""The pieces of `serve --workers N` on their own: the leader lock, the job hand-over through the
database, and the counters the processes share (tests/reliability/test_api_workers.py drives
them in real processes)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from mlservice.auth.counters import SharedCounters
from mlservice.auth.ratelimit import RequestLimiter
from mlservice.db import Database
from mlservice.jobs.models import Job, JobStatus
from mlservice.runtime.election import Leadership, supported
from mlservice.runtime.handoff import ElectedQueue
from tests.conftest import make_settings

pytestmark = pytest.mark.skipif(not supported(), reason="needs fcntl")


def test_one_leader_and_a_follower_takes_over_when_it_goes(tmp_path: Path) -> None:
    # Two descriptors of one file conflict even in one process: each stands for a process here.
    elected: list[str] = []
    first = Leadership(tmp_path / "leader.lock", lambda: elected.append("first"), retry_s=0.05, takeover_delay_s=0)
    second = Leadership(tmp_path / "leader.lock", lambda: elected.append("second"), retry_s=0.05, takeover_delay_s=0)
    assert first.start() is True and second.start() is False
    time.sleep(0.3)
    assert elected == ["first"] and not second.leading
    first.stop()  # as a death: the descriptor closes and the kernel drops the lock
    deadline = time.monotonic() + 5
    while elected == ["first"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert elected == ["first", "second"] and second.leading
    second.stop()


class RecordingQueue:
    def __init__(self) -> None:
        self.started = False
        self.enqueued: list[str] = []

    def start(self) -> None:
        self.started = True

    def enqueue(self, job_id: str) -> None:
        self.enqueued.append(job_id)

    def shutdown(self) -> None:
        pass


def _queued_job(database: Database, job_id: str) -> None:
    with database.session(write=True) as session:
        session.add(Job(id=job_id, type="train", status=JobStatus.queued.value))


def test_a_follower_hands_jobs_to_the_leader_through_the_database(sqlite_database: Database) -> None:
    follower, leader = ElectedQueue(RecordingQueue(), sqlite_database), ElectedQueue(RecordingQueue(), sqlite_database)
    _queued_job(sqlite_database, "job-a")
    follower.enqueue("job-a")  # the row is the hand-over: a follower runs nothing
    assert follower.inner.enqueued == [] and not follower.inner.started
    leader.leading = True
    assert leader.poll() == ["job-a"] and leader.inner.enqueued == ["job-a"]
    assert leader.poll() == []  # dispatched once, while it stays queued
    leader.enqueue("job-b")  # its own submissions go straight to the pool
    _queued_job(sqlite_database, "job-b")
    assert leader.poll() == [] and leader.inner.enqueued == ["job-a", "job-b"]


def test_shared_counters_count_across_instances_and_windows_end(tmp_path: Path) -> None:
    one, other = SharedCounters(tmp_path), SharedCounters(tmp_path)  # two processes' views
    assert [one.incr("k", 0.3), other.incr("k", 0.3), one.incr("k", 0.3)] == [1, 2, 3]
    assert other.get("k") == 3 and other.get_expiry("k") > time.time()
    time.sleep(0.35)
    assert one.get("k") == 0 and other.incr("k", 0.3) == 1  # a new window
    other.clear("k")
    assert one.get("k") == 0


def test_shared_counters_lose_no_increment_under_contention(tmp_path: Path) -> None:
    def hammer() -> None:
        counters = SharedCounters(tmp_path)
        for _ in range(200):
            counters.incr("hot", 60)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert SharedCounters(tmp_path).get("hot") == 800


@pytest.mark.parametrize(("limit", "admitted"), [("10/minute", 10), ("1000/minute", 1000)])
def test_rate_limits_count_across_processes(tmp_path: Path, limit: str, admitted: int) -> None:
    """Two processes' limiters (leases of 1 and of 10 requests) admit the limit, not more."""
    settings = make_settings(tmp_path, rate_limit_sync_predict=limit)
    one, other = RequestLimiter(settings, tmp_path), RequestLimiter(settings, tmp_path)

    async def hits() -> list[int | None]:
        return [await (one if n % 2 else other).hit("sync_predict", "token:t") for n in range(admitted + 50)]

    answers = asyncio.run(hits())
    assert answers[:admitted] == [None] * admitted
    assert all(isinstance(retry, int) and 1 <= retry <= 60 for retry in answers[admitted:]), answers[admitted:]
