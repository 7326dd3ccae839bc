from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class DatasetColumn(BaseModel):
    name: str
    type: str
    reason: str | None = None
    missing_share: float | None = None


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    filename: str | None
    format: str
    rows: int
    columns: list[DatasetColumn]
    size_bytes: int
    user_id: int | None
    created_at: datetime


class DatasetDetail(DatasetRead):
    preview: list[dict[str, Any]]
