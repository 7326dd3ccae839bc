"""Soak test: concurrent clients against a real `mlservice serve`, on SQLite and on PostgreSQL,
with the local job queue or (``--queue celery``) Celery workers.

Each client holds a keep-alive connection (the harness's asyncio-streams HTTP/1.1 client) with a
user's session token and picks, request after request, one operation of a fixed mix: log in
(Argon2, a small share), list its jobs, a sync prediction of one row, an async prediction (a job).
What must hold, whatever the machine's load: no 5xx, no answer other than the expected one, no
database error text ("database is locked", OperationalError, …) in any answer, every async job
`completed`, and no ERROR or traceback in the server's log. Latencies are reported, never asserted.

    .venv/bin/python bench/soak.py [--duration 60] [--clients 50] [--backends sqlite,postgresql]
    .venv/bin/python bench/soak.py --queue celery [--workers 2]

The Celery form is a distributed deployment on loopback (tests/distributed/cluster.py): one
`serve` with ML_QUEUE=celery and `--workers` `mlservice worker` processes, on a throw-away
PostgreSQL database and the tests' Redis DB under a key prefix of the run's own; async
predictions travel through the broker and run on the workers.

`make soak` runs both forms; `tests/reliability/test_load.py` is their short form (10 s each).
The expensive-endpoint rate limit is raised (still enforced, so its cost is measured): the
clients are a load generator, not an abuser of `POST /predict`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ADULT_COLUMNS as COLUMNS
from harness import REPO_ROOT, LoadResult, _Connection, free_port

ADMIN_PASSWORD = "soak-admin-password"
USER_PASSWORD = "soak-user-password"
MODEL_KEY = "soak"
USER_AGENT = "mlservice-soak/1"
USERS = 5  # clients share their users' accounts round-robin
# Operation mix (relative weights). Login runs Argon2 (~tens of ms of CPU): a small share.
MIX = {"login": 2, "list_jobs": 33, "predict_sync": 55, "predict_async": 10}
EXPECTED = {"login": 200, "list_jobs": 200, "predict_sync": 200, "predict_async": 202}
# Text that means a database (or driver) error reached a client.
DB_ERROR = re.compile(
    rb"database is locked|database is busy|database_busy|OperationalError|IntegrityError|DatabaseError"
    rb"|sqlite3?\.|psycopg|sqlalchemy|deadlock detected|could not serialize|Traceback",
    re.IGNORECASE,
)
# Server log lines that are a failure under load.
LOG_PROBLEM = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback|database is locked")
NUMERIC = {"age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"}
SERVER_SETTINGS = {
    "ML_HIDDEN_LAYER_SIZES": "(16,)",
    "ML_MAX_ITER": "15",
    "ML_MIN_WORKERS": "1",
    "ML_MAX_WORKERS_LIMIT": "2",
    "ML_RATE_LIMIT_EXPENSIVE": "1000000/minute",
}
MAX_LISTED_ERRORS = 20
QUEUES = ("local", "celery")


def adult_records(rows: int) -> list[dict]:
    records = []
    with open(REPO_ROOT / "datasets" / "adult" / "adult.data", newline="") as handle:
        for values in csv.reader(handle, skipinitialspace=True):
            if len(values) != len(COLUMNS):
                continue
            record: dict = {}
            for name, value in zip(COLUMNS, values):
                record[name] = None if value == "?" else float(value) if name in NUMERIC else value
            records.append(record)
            if len(records) == rows:
                break
    return records


@dataclass
class Report:
    backend: str
    clients: int
    queue: str = "local"
    seconds: float = 0.0
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in MIX})
    failures: dict[str, int] = field(default_factory=lambda: {name: 0 for name in MIX})
    problems: list[str] = field(default_factory=list)  # the first few, for the message
    jobs_submitted: int = 0
    jobs_completed: int = 0
    job_problems: list[str] = field(default_factory=list)
    log_problems: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(
        default_factory=dict
    )  # wall seconds: start, setup, load, drain, total

    @property
    def requests(self) -> int:
        return sum(len(values) for values in self.latencies_ms.values())

    @property
    def errors(self) -> int:
        """Every unexpected answer, every job that did not complete, every problem in the log."""
        return (
            sum(self.failures.values())
            + (self.jobs_submitted - self.jobs_completed)
            + len(self.log_problems)
        )

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_LISTED_ERRORS:
            self.problems.append(text)

    def table(self) -> str:
        rate = self.requests / max(self.seconds, 1e-9)
        lines = [
            f"{self.backend}, {self.queue} queue: {self.clients} clients, {self.seconds:.1f} s, "
            + f"{self.requests} requests ({rate:.0f} req/s)"
        ]
        for name, latencies in self.latencies_ms.items():
            if latencies:
                lines.append(
                    "  "
                    + LoadResult(
                        name, len(latencies), self.failures[name], self.seconds, latencies
                    ).line()
                )
            else:
                lines.append(f"  {name:<42} no requests")
        lines.append(
            f"  async jobs completed {self.jobs_completed}/{self.jobs_submitted}; "
            f"server log problems {len(self.log_problems)}; errors {self.errors}"
        )
        if self.phases:
            lines.append("  wall s: " + ", ".join(f"{k} {v:.1f}" for k, v in self.phases.items()))
        lines += [
            f"  ! {text}"
            for text in self.problems + self.job_problems + self.log_problems[:MAX_LISTED_ERRORS]
        ]
        return "\n".join(lines)


@contextmanager
def serve(workdir: Path, database_url: str | None = None) -> Iterator[tuple[str, list[Path]]]:
    """`mlservice serve` on a free port with a fresh data dir; yields its URL and its log file."""
    port = free_port()
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith("ML_")}
        | SERVER_SETTINGS
        | {
            "ML_DATA_DIR": str(workdir / "data"),
            "ML_SERVICE_HOST": "127.0.0.1",
            "ML_SERVICE_PORT": str(port),
            "ML_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
    )
    if database_url:
        env["ML_DATABASE_URL"] = database_url
    log_path = workdir / "serve.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlservice", "serve"],
            env=env,
            cwd=workdir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"server did not start:\n{log_path.read_text(errors='replace')[-4000:]}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield base, [log_path]
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@contextmanager
def celery_cluster(
    workdir: Path, database_url: str, workers: int
) -> Iterator[tuple[str, list[Path]]]:
    """One `serve` with ML_QUEUE=celery and ``workers`` `mlservice worker` processes (one task at
    a time each), all with the soak's settings; yields the API's URL and every process's log."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.distributed.cluster import Cluster

    settings = SERVER_SETTINGS | {"ML_ADMIN_PASSWORD": ADMIN_PASSWORD, "ML_EVENTS_ENABLED": "true"}
    cluster = Cluster(workdir, database_url, **settings)
    try:
        base = cluster.start_api("api")
        names = [f"worker{index + 1}" for index in range(workers)]
        for name in names:
            cluster.start_worker(name)
        cluster.wait_workers(base, workers)
        yield base, [workdir / f"{name}.log" for name in ("api", *names)]
    finally:
        cluster.stop()


def _prepare(base: str) -> tuple[str, list[tuple[str, str]], dict]:
    """A trained model and USERS logged-in users: (admin token, [(username, session token)], a row)."""
    with httpx.Client(base_url=base, timeout=300, headers={"User-Agent": USER_AGENT}) as http:
        response = http.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        response.raise_for_status()
        admin = {"Authorization": f"Bearer {response.json()['token']}"}
        data = adult_records(300)
        response = http.post(
            "/train",
            headers=admin,
            json={
                "model_key": MODEL_KEY,
                "target": "income",
                "data": data,
                "params": {"hidden_layer_sizes": [16], "max_iter": 15},
            },
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]

        def account(index: int) -> tuple[str, str]:
            username = f"soak-user-{index}"
            created = http.post(
                "/auth/users",
                headers=admin,
                json={"username": username, "password": USER_PASSWORD, "tier": "user"},
            )
            assert created.status_code == 201, created.text
            login = http.post("/auth/login", json={"username": username, "password": USER_PASSWORD})
            assert login.status_code == 200, login.text
            return username, login.json()["token"]

        began = time.monotonic()
        with ThreadPoolExecutor(USERS) as pool:  # the accounts while the model trains
            users = list(pool.map(account, range(USERS)))
        print(f"  {USERS} accounts in {time.monotonic() - began:.1f} s", flush=True)
        deadline = time.monotonic() + 300
        while (job := http.get(f"/jobs/{job_id}", headers=admin).json())["status"] not in (
            "completed",
            "failed",
            "cancelled",
        ):
            assert time.monotonic() < deadline, f"training still {job['status']} after 300 s"
            time.sleep(0.2)
        assert job["status"] == "completed", job
        print(
            f"  model trained after {time.monotonic() - began:.1f} s (job {job.get('duration_s')} s)",
            flush=True,
        )
    row = {k: v for k, v in adult_records(1)[0].items() if k != "income"}
    return admin["Authorization"].split()[1], users, row


class _Client:
    def __init__(self, base: str, token: str) -> None:
        from urllib.parse import urlsplit

        url = urlsplit(base)
        self.args = (
            url.hostname or "127.0.0.1",
            url.port or 80,
            {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
        )
        self.connection = _Connection(*self.args)

    async def call(
        self, method: str, path: str, body: bytes | None, timeout: float = 60
    ) -> tuple[int, bytes]:
        """(status, body); (0, what went wrong) when the connection failed or timed out."""
        try:
            async with asyncio.timeout(timeout):
                status = await self.connection.request(method, path, body)
            return status, self.connection.body
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError, TimeoutError) as exc:
            if self.connection.writer is not None:
                self.connection.writer.close()
            self.connection = _Connection(*self.args)
            return 0, f"connection failed: {type(exc).__name__}: {exc}".encode()

    def close(self) -> None:
        if self.connection.writer is not None:
            self.connection.writer.close()


async def _drive(
    base: str,
    report: Report,
    users: list[tuple[str, str]],
    row: dict,
    admin_token: str,
    duration: float,
    drain_timeout: float,
) -> None:
    sync_body = json.dumps({"data": [row]}).encode()
    async_body = json.dumps({"model_key": MODEL_KEY, "data": [row]}).encode()
    names, weights = list(MIX), list(MIX.values())
    job_ids: list[str] = []
    stop = time.perf_counter() + duration

    async def client(index: int) -> None:
        username, token = users[index % len(users)]
        login_body = json.dumps({"username": username, "password": USER_PASSWORD}).encode()
        requests = {
            "login": ("POST", "/auth/login", login_body),
            "list_jobs": ("GET", "/jobs?limit=20", None),
            "predict_sync": ("POST", f"/models/{MODEL_KEY}/predict", sync_body),
            "predict_async": ("POST", "/predict", async_body),
        }
        rng = random.Random(index)
        connection = _Client(base, token)
        first = True
        while time.perf_counter() < stop:
            # The first request goes round the operations, so even a short run does each of them.
            name = names[index % len(names)] if first else rng.choices(names, weights)[0]
            first = False
            began = time.perf_counter()
            status, body = await connection.call(*requests[name])
            report.latencies_ms[name].append((time.perf_counter() - began) * 1000)
            if status != EXPECTED[name] or DB_ERROR.search(body):
                report.failures[name] += 1
                report.problem(f"{name}: {status} {body[:300].decode(errors='replace')}")
            elif name == "predict_async":
                job_ids.append(json.loads(body)["job_id"])
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(report.clients)))
    report.seconds = report.phases["load"] = time.perf_counter() - started
    report.jobs_submitted = len(job_ids)
    drain_began = time.perf_counter()

    # Every submitted job must end `completed`, with no error.
    pending = list(job_ids)
    checkers = [_Client(base, admin_token) for _ in range(8)]
    deadline = time.monotonic() + drain_timeout
    while pending and time.monotonic() < deadline:
        still: list[str] = []

        async def check(checker: _Client, ids: list[str], still: list[str] = still) -> None:
            for job_id in ids:
                status, body = await checker.call("GET", f"/jobs/{job_id}", None)
                job = json.loads(body) if status == 200 else {"status": f"HTTP {status}"}
                if job["status"] in ("queued", "running"):
                    still.append(job_id)
                elif (
                    job["status"] == "completed"
                    and not job.get("error")
                    and not DB_ERROR.search(body)
                ):
                    report.jobs_completed += 1
                else:
                    report.job_problems.append(
                        f"job {job_id}: {body[:300].decode(errors='replace')}"
                    )

        await asyncio.gather(
            *(check(c, pending[i :: len(checkers)]) for i, c in enumerate(checkers))
        )
        pending = still
        if pending:
            await asyncio.sleep(0.5)
    for job_id in pending[:MAX_LISTED_ERRORS]:
        report.job_problems.append(
            f"job {job_id}: not finished after {drain_timeout:.0f} s of draining"
        )
    for checker in checkers:
        checker.close()
    report.phases["drain"] = time.perf_counter() - drain_began


def run_backend(
    backend: str,
    workdir: Path,
    database_url: str | None = None,
    *,
    clients: int = 50,
    duration: float = 10.0,
    drain_timeout: float = 120.0,
    queue: str = "local",
    workers: int = 2,
) -> Report:
    """One soak run against a fresh server on `backend` (sqlite, or postgresql at `database_url`),
    whose async jobs run in its local pool or, with ``queue="celery"``, on ``workers`` Celery
    workers (PostgreSQL only: the distributed deployment)."""
    if queue == "celery" and (backend != "postgresql" or not database_url):
        raise ValueError(
            "the Celery form runs on PostgreSQL: give backend 'postgresql' and its URL"
        )
    report = Report(backend, clients, queue)
    began = time.monotonic()
    deployment = (
        celery_cluster(workdir, database_url or "", workers)
        if queue == "celery"
        else serve(workdir, database_url if backend == "postgresql" else None)
    )
    with deployment as (base, log_paths):
        report.phases["start"] = time.monotonic() - began
        admin_token, users, row = _prepare(base)
        report.phases["setup"] = time.monotonic() - began - report.phases["start"]
        asyncio.run(_drive(base, report, users, row, admin_token, duration, drain_timeout))
        time.sleep(0.5)  # let the processes write what the last requests caused
        report.log_problems = [
            f"{path.stem}: {line}"
            for path in log_paths
            for line in path.read_text(errors="replace").splitlines()
            if LOG_PROBLEM.search(line)
        ]
    report.phases["total"] = time.monotonic() - began
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per backend")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--backends", default=None, help="sqlite,postgresql (local); postgresql (celery)"
    )
    parser.add_argument("--queue", choices=QUEUES, default="local", help="where async jobs run")
    parser.add_argument(
        "--workers", type=int, default=2, help="Celery worker processes (--queue celery)"
    )
    args = parser.parse_args()
    backends = args.backends or ("postgresql" if args.queue == "celery" else "sqlite,postgresql")
    if args.queue == "celery" and backends != "postgresql":
        parser.error("--queue celery runs on PostgreSQL only (--backends postgresql)")
    form = {
        "queue": args.queue,
        "workers": args.workers,
        "clients": args.clients,
        "duration": args.duration,
    }
    sys.path.insert(0, str(REPO_ROOT))
    from tests.distributed.cluster import fresh_postgres_database

    reports = []
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for backend in backends.split(","):
        with tempfile.TemporaryDirectory(
            prefix=f"mlservice-soak-{backend}-{args.queue}-"
        ) as workdir:
            if backend == "postgresql":
                with fresh_postgres_database("mlservice_soak") as url:
                    report = run_backend(backend, Path(workdir), url, **form)
            else:
                report = run_backend(backend, Path(workdir), **form)
        print(report.table(), flush=True)
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        reports.append(report)
    failed = [f"{r.backend} ({r.queue} queue)" for r in reports if r.errors]
    print("FAILED: " + ", ".join(failed) if failed else "OK: no errors", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
