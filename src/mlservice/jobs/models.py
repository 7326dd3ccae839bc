from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mlservice.auth import models as _users  # noqa: F401 - jobs.user_id names the users table
from mlservice.db import Base, UTCDateTime, utcnow
from mlservice.db.types import JSONDoc


class JobType(str, enum.Enum):
    train = "train"
    predict = "predict"
    quality = "quality"
    drift = "drift"
    retrain = "retrain"
    other = "other"


class JobStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.completed, JobStatus.failed, JobStatus.cancelled})


class Job(Base):
    """One row per unit of background work; the queue only ever carries the id."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_user_created", "user_id", "created_at"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_updated_at", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued.value)
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    model_key: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    model_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="api")
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Distributed mode: the worker running the job refreshes heartbeat_at; a stale one means the
    # worker was lost (the reconciler requeues or fails the job).
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def status_enum(self) -> JobStatus:
        return JobStatus(self.status)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or utcnow()
        return round((end - self.started_at).total_seconds(), 3)
