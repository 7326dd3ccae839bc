from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mlservice.db import Base, UTCDateTime, utcnow
from mlservice.db.types import JSONDoc


class Event(Base):
    """One meaningful operation (login, token change, train, promotion, alert, …) with where it
    came from. Written in batches by a background writer, or in the job's own transaction by
    worker processes. Never holds a password or a bearer secret (see ``events.summary``)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_created_at", "created_at"),
        Index("ix_events_type_created", "type", "created_at"),
        Index("ix_events_user_created", "user_id", "created_at"),
        Index("ix_events_ip_created", "client_ip", "created_at"),
        Index("ix_events_token_ip", "token_id", "client_ip"),
        Index("ix_events_suspicious_created", "suspicious", "created_at"),
        Index("ix_events_model_created", "model_key", "created_at"),
        Index("ix_events_job_id", "job_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    type: Mapped[str] = mapped_column(String(48))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok | failed | denied
    source: Mapped[str] = mapped_column(String(16), default="api")  # gui | api | system
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    auth_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # session | api | system
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(512), nullable=True)
    method: Mapped[str | None] = mapped_column(String(8), nullable=True)
    path: Mapped[str | None] = mapped_column(String(300), nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    model_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    input_summary: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    output_summary: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)
    suspicious: Mapped[bool] = mapped_column(Boolean, default=False)
    reasons: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
