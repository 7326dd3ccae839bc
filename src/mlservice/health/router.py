from __future__ import annotations

import time

from fastapi import APIRouter, Request
from pydantic import BaseModel

from mlservice import __version__

router = APIRouter(tags=["health"])


class DatabaseHealth(BaseModel):
    ok: bool
    backend: str


class HealthRead(BaseModel):
    status: str
    version: str
    uptime_s: float
    database: DatabaseHealth


@router.get("/health", response_model=HealthRead)
def health(request: Request) -> HealthRead:
    state = request.app.state
    database_ok = state.database.ping()
    return HealthRead(
        status="ok" if database_ok else "degraded",
        version=__version__,
        uptime_s=round(time.monotonic() - state.started_at, 3),
        database=DatabaseHealth(ok=database_ok, backend=state.database.backend),
    )
