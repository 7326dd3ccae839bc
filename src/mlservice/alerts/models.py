from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from mlservice.auth import models as _users  # noqa: F401 - acknowledged_by names the users table
from mlservice.db import Base, UTCDateTime, utcnow
from mlservice.db.types import JSONDoc


class Alert(Base):
    """Something a person should look at. The same condition (``dedup_key``) raised again
    while its alert is still open updates that alert instead of piling up new ones."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_open_dedup_key", "dedup_key", unique=True,
            sqlite_where=text("status != 'resolved'"), postgresql_where=text("status != 'resolved'"),
        ),
        Index("ix_alerts_status_last_seen", "status", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    dedup_key: Mapped[str] = mapped_column(String(200))
    model_key: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    message: Mapped[str] = mapped_column(Text)
    link: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    admin_only: Mapped[bool] = mapped_column(default=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
