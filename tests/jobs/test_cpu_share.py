"""How the local pool shares the cores between jobs, and where its workers come from."""

from __future__ import annotations

import os
from pathlib import Path

from threadpoolctl import threadpool_info

from mlservice.jobs import runner
from mlservice.jobs.queue import LocalJobQueue, blas_threads
from mlservice.jobs.runner import job_threads
from mlservice.ml.threads import available_cores, cpu_threads, thread_budget
from tests.conftest import make_settings


def test_a_job_alone_gets_every_core_and_concurrent_jobs_share() -> None:
    assert job_threads(cores=2, running=1) == 2
    assert job_threads(cores=16, running=1) == 16
    assert job_threads(cores=2, running=2) == 1
    assert job_threads(cores=16, running=2) == 8
    assert job_threads(cores=16, running=3) == 5
    assert job_threads(cores=2, running=5) == 1  # more jobs than cores: one each, never none


def test_a_job_takes_no_more_than_the_cores_other_work_leaves_free() -> None:
    assert job_threads(cores=2, running=1, busy=1) == 1
    assert job_threads(cores=16, running=1, busy=4) == 12
    assert job_threads(cores=16, running=2, busy=4) == 8  # the pool's share is the smaller
    assert job_threads(cores=2, running=1, busy=30) == 1


def test_celery_workers_get_at_least_an_even_share_of_the_cores(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, worker_concurrency=4, worker_cpu_per_task=0.25)
    assert blas_threads(settings, cpu_count=16) == 4
    assert (
        blas_threads(
            make_settings(tmp_path, worker_concurrency=32, worker_cpu_per_task=0.05), cpu_count=16
        )
        == 1
    )
    # sized like the local pool when no concurrency is set: 16 / 0.5 capped at 8 processes
    assert (
        blas_threads(
            make_settings(tmp_path, worker_cpu_per_task=0.5, max_workers_limit=8), cpu_count=16
        )
        == 8
    )


def test_cpu_threads_bounds_blas_inside_the_block_only() -> None:
    def blas() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    before = blas()
    with cpu_threads(1) as threads:
        assert threads == 1 and thread_budget() == 1
        assert blas() == {1}
    assert thread_budget() is None and blas() == before


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])


def _job_in_worker() -> tuple[int, int, int | None, int | None]:
    with runner.cpu_share() as threads:
        parent = os.getppid()
        return parent, _parent_of(parent), threads, thread_budget()


def test_workers_fork_from_the_template_and_apply_the_jobs_share(tmp_path: Path) -> None:
    queue = LocalJobQueue(make_settings(tmp_path))
    try:
        parent, grandparent, threads, applied = (
            queue._pool().submit(_job_in_worker).result(timeout=120)
        )
    finally:
        queue.shutdown()
    # forked by the template process (which imported the ML stack once), itself our child
    assert parent != os.getpid() and grandparent == os.getpid()
    # counted as the pool's only job: its share is what the machine's other work leaves free
    assert threads is not None and 1 <= threads <= available_cores() and applied == threads


def test_a_running_job_takes_the_cores_other_work_frees_and_gives_them_back(monkeypatch) -> None:
    """Rebalanced between steps from the CPU time other work used: a training that started
    while its upload's request still held cores takes them when its fit starts."""
    import multiprocessing

    from mlservice.ml import threads

    monkeypatch.setattr(runner, "_running", multiprocessing.Value("i", 0))
    monkeypatch.setattr(runner, "REBALANCE_EVERY_S", 0.0)
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda: 3)
    seen = iter([0.2, 2.6, None])
    monkeypatch.setattr(threads.OtherWork, "cores", lambda _self: next(seen))
    assert runner.rebalance_threads() is None  # not in a job
    with runner.cpu_share() as started:
        assert started == 1 and thread_budget() == 1  # 3 of 4 cores busy at the start
        assert runner.rebalance_threads() == 4 and thread_budget() == 4  # they were freed
        assert runner.rebalance_threads() == 1 and thread_budget() == 1  # 2.6 cores busy again
        assert runner.rebalance_threads() == 1  # unknown: unchanged
    assert thread_budget() is None


def test_other_work_counts_other_processes_cpu_not_our_own() -> None:
    import subprocess
    import sys
    import time

    from mlservice.ml.threads import OtherWork, _cpu_sample

    watch, before = OtherWork(), _cpu_sample()
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:  # our own busy loop: not "other work"
        pass
    own_only, after = watch.cores(), _cpu_sample()
    assert before is not None and after is not None and own_only is not None
    machine = (after[1] - before[1]) / (after[0] - before[0])  # every process, ours included
    ours = (after[2] - before[2]) / (after[0] - before[0])
    assert ours >= 0.3, ours  # the loop ran (on a busy machine: a share of a core)
    assert own_only <= machine - ours + 0.15, (own_only, machine, ours)

    burn = "import time\nt = time.monotonic() + 0.8\nwhile time.monotonic() < t: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    with_child = watch.cores()
    assert with_child is not None and with_child >= 0.3, with_child  # another process's work counts
