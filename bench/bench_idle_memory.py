"""Idle memory of `mlservice serve` and its job workers, and how soon the first job starts.

    .venv/bin/python bench/bench_idle_memory.py [--reference /tmp/wt773] [--rounds 2]

Starts a real `serve` (SQLite, fresh data dir) for this checkout and, alternately, for a
reference checkout (``git worktree add /tmp/wt773 773bfef``, run through PYTHONPATH with the
same venv), waits until the process tree is quiet, and sums PSS and RSS over the whole tree
(`serve`, the job pool's template and workers, multiprocessing's helpers) from
``/proc/PID/smaps_rollup``: PSS divides a page shared by N processes between them, so it is what
the tree really costs; RSS counts shared pages once per process. Then it submits a tiny training
job (200 Adult rows, 8 units, 5 epochs) and reports the job's wait from creation to its start
(the server's own ``created_at`` → ``started_at``), and the tree's memory afterwards.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from harness import ADMIN_PASSWORD, ADULT_COLUMNS, running_server, wait_job



def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants. Each thread lists the children it started
    (``/proc/PID/task/TID/children``): the pool's template is started by a thread of `serve`."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending.extend(int(child) for child in children.read_text().split())
            except OSError:  # the thread or process ended meanwhile
                continue
    return tree


def tree_cpu_s(pid: int) -> float:
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def settle(pid: int, timeout: float = 120.0) -> None:
    """Until the whole tree (template included, which harness.wait_until_idle does not see) has
    been quiet for 1.5 s: start-up imports must be over before memory is read."""
    deadline, quiet, previous = time.monotonic() + timeout, 0, tree_cpu_s(pid)
    while time.monotonic() < deadline and quiet < 3:
        time.sleep(0.5)
        current = tree_cpu_s(pid)
        quiet = quiet + 1 if current - previous < 0.05 else 0
        previous = current


def memory_kib(pid: int) -> dict[str, int]:
    """Pss and Rss of the tree under ``pid`` in KiB, and how many processes it holds."""
    totals = {"Pss": 0, "Rss": 0, "processes": 0}
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/smaps_rollup").read_text().splitlines()
        except OSError:  # ended meanwhile
            continue
        totals["processes"] += 1
        for line in lines:
            key, _, value = line.partition(":")
            if key in ("Pss", "Rss"):
                totals[key] += int(value.split()[0])
    return totals


def tiny_training_csv() -> bytes:
    import pandas as pd

    frame = pd.read_csv(
        ROOT / "datasets/adult/adult.data",
        names=ADULT_COLUMNS,
        skipinitialspace=True,
        na_values="?",
    ).sample(200, random_state=0)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def measure(label: str, pythonpath: str | None) -> dict:
    env = {"PYTHONPATH": pythonpath} if pythonpath else {}
    with running_server(**env) as base:
        pid = server_pid(base)
        settle(pid)
        idle = memory_kib(pid)
        token = httpx.post(
            f"{base}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        response = httpx.post(
            f"{base}/train",
            headers=headers,
            timeout=60,
            data={
                "model_key": "tiny",
                "target": "income",
                "params": '{"hidden_layer_sizes": [8], "max_iter": 5}',
            },
            files={"file": ("adult.csv", tiny_training_csv(), "text/csv")},
        )
        job = wait_job(base, headers, response.json()["job_id"], timeout=300)
        assert job["status"] == "completed", job
        wait_s = (
            datetime.fromisoformat(job["started_at"]) - datetime.fromisoformat(job["created_at"])
        ).total_seconds()
        settle(pid)
        after = memory_kib(pid)
    result = {"label": label, "idle": idle, "after_job": after, "first_job_wait_s": wait_s}
    print(
        f"{label:<10} idle: PSS {idle['Pss'] / 1024:7.0f} MiB  RSS {idle['Rss'] / 1024:7.0f} MiB "
        f"({idle['processes']} processes) | first job waited {wait_s:5.2f} s | after it: "
        f"PSS {after['Pss'] / 1024:7.0f} MiB  RSS {after['Rss'] / 1024:7.0f} MiB ({after['processes']})",
        flush=True,
    )
    return result


def server_pid(base: str) -> int:
    """The pid of the `serve` listening at ``base`` (harness starts it as our child)."""
    port = base.rsplit(":", 1)[1]
    for child in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        if "mlservice serve" in cmdline and f"ML_SERVICE_PORT={port}".encode() in environ:
            return int(child)
    raise RuntimeError(f"no serve process for {base}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference",
        default="/tmp/wt773",
        help="a checkout of the reference commit (git worktree add /tmp/wt773 773bfef)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}", flush=True)
    reference = Path(args.reference) / "src"
    runs: dict[str, list[dict]] = {"reference": [], "this": []}
    for _ in range(args.rounds):  # alternated: the machine is shared, its load drifts
        if reference.is_dir():
            runs["reference"].append(measure("reference", str(reference)))
        runs["this"].append(measure("this", None))
    print(f"load average {os.getloadavg()[0]:.2f}")
    for label, results in runs.items():
        if not results:
            continue
        pss = statistics.median(r["idle"]["Pss"] for r in results) / 1024
        rss = statistics.median(r["idle"]["Rss"] for r in results) / 1024
        wait = statistics.median(r["first_job_wait_s"] for r in results)
        print(
            f"median {label:<10} idle PSS {pss:6.0f} MiB, RSS {rss:6.0f} MiB, first job waited {wait:.2f} s"
        )


if __name__ == "__main__":
    main()
