from __future__ import annotations

import time

from fastapi import APIRouter, Request
from pydantic import BaseModel

from mlservice import __version__

router = APIRouter(tags=["health"])


class DatabaseHealth(BaseModel):
    ok: bool
    backend: str


class QueueHealth(BaseModel):
    backend: str  # local | celery
    ok: bool  # local: always; celery: the broker answers and at least one worker does
    workers: int  # local: pool size; celery: workers answering a ping
    broker: bool | None = None  # celery only: the broker answers


class GpuHealth(BaseModel):
    available: bool | None  # None while the first probe runs
    name: str | None
    memory_mb: int | None
    source: str  # torch | nvidia-smi | none | probing


class HealthRead(BaseModel):
    status: str
    version: str
    uptime_s: float
    database: DatabaseHealth
    queue: QueueHealth
    gpu: GpuHealth


@router.get("/health", response_model=HealthRead)
def health(request: Request) -> HealthRead:
    state = request.app.state
    database_ok = state.database.ping()
    report = getattr(state.queue, "health", None)
    queue = QueueHealth(**report()) if report else QueueHealth(backend="custom", ok=True, workers=0)
    return HealthRead(
        status="ok" if database_ok and queue.ok else "degraded",
        version=__version__,
        uptime_s=round(time.monotonic() - state.started_at, 3),
        database=DatabaseHealth(ok=database_ok, backend=state.database.backend),
        queue=queue,
        gpu=GpuHealth(**state.gpu_probe.result()),
    )
