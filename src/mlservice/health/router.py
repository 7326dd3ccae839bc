from __future__ import annotations

import time

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mlservice import __version__
from mlservice.db import db_io
from mlservice.jobs.queue import LocalJobQueue

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


async def _queue_health(queue: object) -> QueueHealth:
    report = getattr(queue, "health", None)
    if report is None:
        return QueueHealth(backend="custom", ok=True, workers=0)
    # The local pool answers from memory; Celery's answer pings the broker and the workers.
    values = report() if isinstance(queue, LocalJobQueue) else await run_in_threadpool(report)
    return QueueHealth(**values)


@router.get("/health", response_model=HealthRead)
async def health(request: Request) -> HealthRead:
    # Async, so that load balancers polling it under load cost no thread hops (see db_io).
    state = request.app.state
    database_ok = await db_io(state.database, state.database.ping)
    queue = await _queue_health(state.queue)
    return HealthRead(
        status="ok" if database_ok and queue.ok else "degraded",
        version=__version__,
        uptime_s=round(time.monotonic() - state.started_at, 3),
        database=DatabaseHealth(ok=database_ok, backend=state.database.backend),
        queue=queue,
        gpu=GpuHealth(**state.gpu_probe.result()),
    )
