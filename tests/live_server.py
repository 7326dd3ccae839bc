"""A real ``mlservice serve`` on a free port, for tests that drive it as users do (client, CLI,
README examples, HTTPS)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

ADMIN_PASSWORD = "live-admin-password-1"
# Small, fast training for every example and workflow (the server's own defaults).
FAST_TRAINING = {"ML_HIDDEN_LAYER_SIZES": "(16,)", "ML_MAX_ITER": "15", "ML_DRIFT_MIN_SAMPLES": "50",
                 "ML_MIN_WORKERS": "1", "ML_MAX_WORKERS_LIMIT": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def daily_check_not_due() -> dict[str, str]:
    """Settings under which today's daily drift check is 22 hours away, whenever the suite runs.
    A server started after the check time (23:00 by default) catches up the day's check at once
    and queues drift jobs, and auto-retrains, that the test never asked for: a suite run late in
    the evening failed on them. The server's day is put at 01:xx, with the check at 23:30."""
    offset = (1 - datetime.now(UTC).hour) % 24
    if offset > 14:  # the Etc zones span UTC-12 to UTC+14
        offset -= 24
    zone = f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"  # POSIX signs: Etc/GMT-3 is UTC+3
    return {"ML_TIMEZONE": zone, "ML_DAILY_DRIFT_CHECK_TIME": "23:30"}


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: no ML_* of the developer's shell, the venv's scripts on PATH, and no
    daily check due (a test that wants one sets its own time)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)
    return env | daily_check_not_due()


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    home: Path | None = None
    launcher: tuple[str, ...] = ()

    def kill(self) -> None:
        """SIGKILL the server's whole process group, its local worker processes included: a
        power cut, no shutdown code runs."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def restart(self) -> None:
        """Start a new `serve` on the same data directory and port (after :meth:`kill`)."""
        if self.process.poll() is None:
            self.kill()
        assert self.home is not None
        self.process, self.lines = spawn_serve(self.home, self.env, self.launcher)

    def admin_token(self, verify: object = True) -> str:
        response = httpx.post(f"{self.url}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD},
                              verify=verify)  # type: ignore[arg-type]
        response.raise_for_status()
        return response.json()["token"]


# Runs a command as PID 1 of a new PID namespace, as `docker run` without --init does; SIGTERM to
# the launcher reaches the command (and everything in the namespace ends with it).
AS_PID_1 = ("unshare", "--pid", "--fork", "--kill-child=SIGTERM")


@contextmanager
def live_server(home: Path, scheme: str = "http", launcher: tuple[str, ...] = (), **settings: str) -> Iterator[LiveServer]:
    port = free_port()
    env = base_env(home) | {
        "ML_DATA_DIR": str(home / "data"), "ML_SERVICE_HOST": "127.0.0.1", "ML_SERVICE_PORT": str(port),
        "ML_ADMIN_PASSWORD": ADMIN_PASSWORD, **FAST_TRAINING, **settings,
    }
    process, lines = spawn_serve(home, env, launcher)
    server = LiveServer(f"{scheme}://127.0.0.1:{port}", process, env, lines, home, launcher)
    try:
        yield server
    finally:
        process = server.process  # the latest one, after a restart
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


MLSERVICE = (sys.executable, "-m", "mlservice")  # this checkout's, from the suite's venv


def spawn_serve(home: Path, env: dict[str, str], launcher: tuple[str, ...] = (),
                program: tuple[str, ...] = MLSERVICE) -> tuple[subprocess.Popen, list[str]]:
    """`program serve` in a process group of its own (so a test can kill it with its workers),
    returned once it listens."""
    process = subprocess.Popen([*launcher, *program, "serve"], env=env, cwd=home,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        lines.append(line)
        if "Uvicorn running" in line or process.poll() is not None:
            break
    # `serve --workers N`: the supervisor listens before its API processes are up; wait for them.
    workers = env.get("ML_API_WORKERS", "1")
    while workers.isdigit() and "".join(lines).count("Application startup complete") < int(workers) \
            and time.monotonic() < deadline and process.poll() is None:
        lines.append(process.stdout.readline())  # type: ignore[union-attr]
    if process.poll() is not None:
        raise AssertionError("server did not start:\n" + "".join(lines))
    # Keep reading its output so a chatty server never blocks on a full pipe.
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()  # type: ignore[arg-type]
    return process, lines
