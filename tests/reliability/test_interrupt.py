"""Ctrl-C on `mlservice serve`, as a terminal sends it (SIGINT to the whole process group, once),
at any moment of its start: while it imports, right after it listens (the job pool's template is
still importing the ML stack), and once the first worker is up. Each time it stops in a few
seconds, exits cleanly and prints no traceback: no KeyboardInterrupt from the template or a
worker, no worker forked after the server is gone (it failed on the pool's vanished semaphore)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.live_server import ADMIN_PASSWORD, MLSERVICE, base_env, free_port

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups (POSIX)")


@pytest.mark.parametrize(("after", "when"), [
    (1.0, "while it imports"),
    ("Uvicorn running", "as it starts listening"),
    ("Uvicorn running+3", "once the pool has had time to start"),
])
def test_ctrl_c_stops_serve_without_a_traceback(tmp_path: Path, after: float | str, when: str) -> None:
    env = base_env(tmp_path) | {"ML_DATA_DIR": str(tmp_path / "data"), "ML_SERVICE_HOST": "127.0.0.1",
                                "ML_SERVICE_PORT": str(free_port()), "ML_ADMIN_PASSWORD": ADMIN_PASSWORD}
    process = subprocess.Popen([*MLSERVICE, "serve"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        if isinstance(after, float):
            time.sleep(after)
        else:
            marker, _, delay = after.partition("+")
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and marker not in (line := process.stdout.readline()):  # type: ignore[union-attr]
                assert line or process.poll() is None, "".join(lines)
                lines.append(line)
            time.sleep(float(delay or 0))
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = "".join(lines) + output
    assert "Traceback" not in text and "Error" not in text, f"{when}:\n{text}"
    # Before serving: 130, or death by SIGINT itself when it came before Python's own handler.
    expected = {130, -signal.SIGINT} if isinstance(after, float) else {0}
    assert process.returncode in expected, f"{when}: exit {process.returncode}\n{text}"
