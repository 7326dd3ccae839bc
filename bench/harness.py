"""Shared pieces for the HTTP benchmarks: a real `mlservice serve` process and a load generator.

The load generator runs in its own process (asyncio streams speaking HTTP/1.1 with keep-alive
connections), so client and server do not share one interpreter; on a 2-core machine they still share the cores, which
the figures include.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import httpx

# The Adult census files (datasets/adult/adult.data, adult.test) have no header: their columns.
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]

ADMIN_PASSWORD = "bench-admin-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(data_dir: str | None = None, **env_overrides: str) -> Iterator[str]:
    """Start `mlservice serve` on a free port with a fresh data dir (or ``data_dir``, to start
    again on what an earlier run left); yield its base URL."""
    fresh = tempfile.TemporaryDirectory(prefix="mlservice-bench-") if data_dir is None else nullcontext(data_dir)
    with fresh as directory:
        port = free_port()
        env = os.environ | {
            "ML_DATA_DIR": directory,
            "ML_SERVICE_HOST": "127.0.0.1",
            "ML_SERVICE_PORT": str(port),
            "ML_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "ML_LOG_LEVEL": "WARNING",
        } | env_overrides
        process = subprocess.Popen(
            [sys.executable, "-m", "mlservice", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=directory,
        )
        base = f"http://127.0.0.1:{port}"
        SERVER_PIDS[base] = process.pid
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "no start")
            wait_until_idle(process.pid)
            yield base
        finally:
            SERVER_PIDS.pop(base, None)
            process.terminate()
            process.wait(timeout=30)


SERVER_PIDS: dict[str, int] = {}  # base URL → pid of the `serve` that running_server() started


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its descendants, from /proc (Linux)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        pending.extend(int(child) for child in children)
    return total


def wait_until_idle(pid: int, timeout: float = 90.0) -> None:
    """`serve` answers /health before its background start-up is over (worker processes
    importing the ML stack, the GPU probe importing torch): wait until the server's process
    tree is quiet, or every measurement would share the cores with that start-up."""
    deadline = time.monotonic() + timeout
    quiet = 0
    previous = _cpu_seconds(pid)
    while time.monotonic() < deadline and quiet < 3:
        time.sleep(0.5)
        current = _cpu_seconds(pid)
        quiet = quiet + 1 if current - previous < 0.05 else 0
        previous = current


@dataclass
class LoadResult:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu_s: float | None = None  # the server's process tree, over the measured window
    client_cpu_s: float | None = None  # this load generator's, over the same window

    def cpu_ms(self, seconds: float | None) -> float | None:
        return None if seconds is None or not self.requests else seconds / self.requests * 1000

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def line(self) -> str:
        return (
            f"{self.name:<42} {self.rps:8.0f} req/s   p50 {self.percentile(50):7.2f} ms   "
            f"p99 {self.percentile(99):7.2f} ms   errors {self.errors}/{self.requests}"
            + (f"   CPU per request: server {self.cpu_ms(self.server_cpu_s):.3f} ms, "
               f"load generator {self.cpu_ms(self.client_cpu_s):.3f} ms" if self.server_cpu_s is not None else "")
        )


class _Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams. httpx's AsyncClient costs
    ~10 ms of client CPU per request here, which would make the load generator the bottleneck
    the figures measure."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.body = b""

    async def request(self, method: str, path: str, body: bytes | None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body is not None else ""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}{extra}\r\n".encode()
        self.writer.write(head + (body or b""))
        assert self.reader is not None
        status_line = await self.reader.readline()
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        parts: list[bytes] = []
        if chunked:
            while True:
                size = int((await self.reader.readline()).strip() or b"0", 16)
                parts.append((await self.reader.readexactly(size + 2))[:size])
                if size == 0:
                    break
        elif length:
            parts.append(await self.reader.readexactly(length))
        self.body = b"".join(parts)  # the last response's body, for callers that check it
        return int(status_line.split()[1])


async def _load(
    base: str, method: str, path: str, *, concurrency: int, duration: float,
    headers: dict[str, str] | None, json_body: object | None, warmup: float,
) -> tuple[int, int, float, list[float], tuple[float, float] | None]:
    from urllib.parse import urlsplit

    import orjson

    url = urlsplit(base)
    body = orjson.dumps(json_body) if json_body is not None else None
    latencies: list[float] = []
    errors = 0
    count = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + duration

    async def worker() -> None:
        nonlocal errors, count
        connection = _Connection(url.hostname or "127.0.0.1", url.port or 80, headers or {})
        while time.perf_counter() < stop:
            began = time.perf_counter()
            status = await connection.request(method, path, body)
            elapsed = (time.perf_counter() - began) * 1000
            if began >= measure_from:
                count += 1
                latencies.append(elapsed)
                if status >= 400:
                    errors += 1
        if connection.writer is not None:
            connection.writer.close()

    server_pid = SERVER_PIDS.get(base)
    cpu: list[tuple[float, float]] = []

    async def sample_cpu() -> None:
        # CPU of the server's tree and of this process at the window's start and end
        for moment in (measure_from, stop):
            await asyncio.sleep(max(0.0, moment - time.perf_counter()))
            cpu.append((_cpu_seconds(server_pid) if server_pid else 0.0, time.process_time()))

    await asyncio.gather(sample_cpu(), *(worker() for _ in range(concurrency)))
    used = (cpu[1][0] - cpu[0][0], cpu[1][1] - cpu[0][1]) if server_pid else None
    return count, errors, time.perf_counter() - measure_from, latencies, used


def load(
    name: str, base: str, method: str, path: str, *, concurrency: int, duration: float = 10.0,
    headers: dict[str, str] | None = None, json_body: object | None = None, warmup: float = 1.0,
) -> LoadResult:
    try:  # uvloop (uvicorn[standard] brings it) costs the load generator less CPU per request
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        count, errors, seconds, latencies, used = runner.run(
            _load(base, method, path, concurrency=concurrency, duration=duration,
                  headers=headers, json_body=json_body, warmup=warmup)
        )
    server_cpu, client_cpu = used if used else (None, None)
    return LoadResult(name, count, errors, seconds, latencies, server_cpu, client_cpu)


def median(values: list[float]) -> float:
    return statistics.median(values)


def wait_job(base: str, headers: dict[str, str], job_id: str, timeout: float = 1800) -> dict:
    """Poll GET /jobs/{id} every 20 ms until the job ends; returns the job. One keep-alive
    connection: a new httpx client per poll cost ~10 ms of CPU, half a core at this rate, which
    the job being measured then saw as other work on the machine (and gave up a core for)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        while time.monotonic() < deadline:
            job = client.get(f"/jobs/{job_id}").json()
            if job["status"] in ("completed", "failed", "cancelled"):
                return job
            time.sleep(0.02)
    raise TimeoutError(f"job {job_id} still running after {timeout} s")


REPO_ROOT = Path(__file__).resolve().parents[1]
