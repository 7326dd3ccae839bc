from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class EventRead(BaseModel):
    id: int
    created_at: datetime
    type: str
    outcome: str
    source: str
    user_id: int | None
    username: str | None
    auth_kind: str | None
    token_id: int | None
    client_ip: str | None
    user_agent: str | None
    method: str | None
    path: str | None
    status_code: int | None
    duration_ms: float | None
    job_id: str | None
    model_key: str | None
    model_version: str | None
    message: str | None
    suspicious: bool
    reasons: list[str]


class EventDetail(EventRead):
    input: dict[str, Any] | None
    output: dict[str, Any] | None
