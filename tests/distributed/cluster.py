"""A distributed deployment on loopback, for the integration test and bench_distributed:
real `mlservice serve` replicas and `mlservice worker` processes sharing one fresh PostgreSQL
database, one Redis DB under a key prefix of their own, and one artifacts directory (the
"shared volume")."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from tests.backends import POSTGRES_SERVER_URL, REDIS_URL
from tests.live_server import daily_check_not_due

ADMIN = {"username": "admin", "password": "distributed-admin-pw"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "mlservice_dist") -> Iterator[str]:
    server = make_url(POSTGRES_SERVER_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_job(base: str, headers: dict, job_id: str, timeout: float = 120, path: str = "/jobs/") -> dict:
    """Poll a job over HTTP until it ends (any server: a replica, a serve run as PID 1)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}{path}{job_id}", headers=headers, timeout=30).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end: {job}")


class Cluster:
    def __init__(self, workdir: Path, database_url: str, **settings: str) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.prefix = f"mlservice-test-{uuid.uuid4().hex[:8]}:"
        self.env = {
            "PATH": os.environ["PATH"], "HOME": str(workdir), "ML_DATA_DIR": str(workdir / "data"),
            "ML_ARTIFACTS_ROOT": str(workdir / "shared-artifacts"),  # the shared volume
            "ML_DATABASE_URL": database_url, "ML_QUEUE": "celery", "ML_BROKER_URL": REDIS_URL,
            "ML_BROKER_KEY_PREFIX": self.prefix, "ML_PUBSUB_CHANNEL": f"{self.prefix}live",
            "ML_ADMIN_PASSWORD": ADMIN["password"], "ML_SERVICE_HOST": "127.0.0.1",
            "ML_WORKER_CPU_PER_TASK": "1", "ML_WORKER_CONCURRENCY": "1",
            "ML_JOB_HEARTBEAT_S": "1", "ML_JOB_HEARTBEAT_TIMEOUT_S": "5", "ML_JOB_RECONCILE_S": "1",
            "ML_RATE_LIMIT_EXPENSIVE": "off", "ML_EVENTS_ENABLED": "false",
            **daily_check_not_due(), **settings,
        }
        self.apis: dict[str, tuple[subprocess.Popen, str]] = {}
        self.workers: dict[str, subprocess.Popen] = {}
        self.killed: set[str] = set()

    def _spawn(self, name: str, args: list[str], env: dict[str, str], launcher: tuple[str, ...] = ()) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen([*launcher, sys.executable, "-m", "mlservice", *args], env=env, cwd=self.workdir,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start_api(self, name: str, timeout: float = 90) -> str:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = self._spawn(name, ["serve", "--port", str(port)], self.env)
        self.apis[name] = (process, base)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited: {self.log(name)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    return base
            time.sleep(0.3)
        raise AssertionError(f"{name} did not start: {self.log(name)}")

    def start_worker(self, name: str, concurrency: int = 1, queues: str | None = None,
                     launcher: tuple[str, ...] = ()) -> subprocess.Popen:
        args = ["worker", "--name", f"{name}@%h", "--concurrency", str(concurrency)]
        if queues:
            args += ["--queues", queues]
        process = self._spawn(name, args, self.env, launcher)
        self.workers[name] = process
        return process

    def wait_workers(self, base: str, count: int, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        health: dict = {}
        while time.monotonic() < deadline:
            health = httpx.get(f"{base}/health", timeout=10).json()
            if health["queue"]["workers"] == count:
                return health
            for name, process in self.workers.items():
                if process.poll() is not None and name not in self.killed:
                    raise AssertionError(f"worker {name} exited: {self.log(name)}")
            time.sleep(0.5)
        raise AssertionError(f"expected {count} workers, health says {health}")

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and its pool processes: a machine that vanished."""
        self.killed.add(name)
        process = self.workers[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def log(self, name: str, tail: int = 3000) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else "(no log)"

    def login(self, base: str) -> dict[str, str]:
        token = httpx.post(f"{base}/auth/login", json=ADMIN, timeout=30).json()["token"]
        return {"Authorization": f"Bearer {token}"}

    def stop(self) -> None:
        processes = [p for p, _ in self.apis.values()] + list(self.workers.values())
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._clean_redis()

    def _clean_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
