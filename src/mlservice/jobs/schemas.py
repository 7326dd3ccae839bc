from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class JobStage(BaseModel):
    name: str
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    status: str
    stage: str | None
    stages: list[JobStage]
    progress: float
    model_key: str | None
    model_version: str | None
    user_id: int | None
    source: str
    client_ip: str | None
    user_agent: str | None
    details: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    duration_s: float | None


class JobCreated(BaseModel):
    job_id: str
