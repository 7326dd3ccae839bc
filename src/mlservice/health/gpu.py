"""GPU presence for /health, probed once in a child process: asking PyTorch means importing
it, which would cost the API process seconds and hundreds of MB it never needs otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

PROBE = "import json; from mlservice.ml.gpu import gpu_info; print(json.dumps(gpu_info()))"
UNKNOWN = {"available": None, "name": None, "memory_mb": None, "source": "probing"}
PUBLISHED_NAME = "gpu-probe.json"


class GpuProbe:
    """``published``: with `serve --workers N` the supervisor probes once for all its API
    processes (:func:`publish_probe`) and they only read its answer from that file; a probe per
    process cost each a torch import (seconds of CPU) right when they start serving."""

    def __init__(self, published: Path | None = None) -> None:
        self._result: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._started = False
        self._published = published

    def start(self) -> None:
        with self._lock:
            if self._started or self._published is not None:
                return
            self._started = True
        threading.Thread(target=self._probe, name="gpu-probe", daemon=True).start()

    def _probe(self) -> None:
        try:
            done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
            info = json.loads(done.stdout.strip().splitlines()[-1])
            self._result = {
                "available": bool(info.get("cuda_available")),
                "name": info.get("device_name"),
                "memory_mb": info.get("memory_total_mb"),
                "source": info.get("source") or "none",
            }
        except Exception as exc:  # noqa: BLE001 - /health must answer whatever happens here
            self._result = {"available": False, "name": None, "memory_mb": None, "source": f"error: {exc}"[:200]}

    def result(self) -> dict[str, Any]:
        """The probe's answer; the first call starts it and answers "probing" meanwhile."""
        if self._published is not None and self._result is None:
            try:
                self._result = json.loads(self._published.read_text())
            except (OSError, ValueError):  # not written yet
                return dict(UNKNOWN)
        self.start()
        return dict(self._result or UNKNOWN)


def publish_probe(path: Path) -> None:
    """Probe in a thread of this process and write the answer to ``path`` (atomically) for the
    API processes that read it."""
    path.unlink(missing_ok=True)

    def run() -> None:
        probe = GpuProbe()
        probe._probe()
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(probe._result))
        os.replace(temporary, path)

    threading.Thread(target=run, name="gpu-probe", daemon=True).start()


async def get_gpu_probe(request: Request) -> GpuProbe:
    return request.app.state.gpu_probe


GpuProbeDep = Annotated[GpuProbe, Depends(get_gpu_probe)]
