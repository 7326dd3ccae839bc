from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mlservice import __version__
from mlservice.db import DatabaseDep, db_io
from mlservice.health.gpu import GpuProbeDep
from mlservice.jobs.queue import LocalJobQueue, QueueDep

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


async def uptime_s(request: Request) -> float:
    return round(time.monotonic() - request.app.state.started_at, 3)


@router.get("/health", response_model=HealthRead)
async def health(
    database: DatabaseDep, queue: QueueDep, gpu: GpuProbeDep, uptime: Annotated[float, Depends(uptime_s)]
) -> HealthRead:
    # Async, so that load balancers polling it under load cost no thread hops (see db_io).
    database_ok = await db_io(database, database.ping)
    queue_health = await _queue_health(queue)
    return HealthRead(
        status="ok" if database_ok and queue_health.ok else "degraded",
        version=__version__,
        uptime_s=uptime,
        database=DatabaseHealth(ok=database_ok, backend=database.backend),
        queue=queue_health,
        gpu=GpuHealth(**gpu.result()),
    )
