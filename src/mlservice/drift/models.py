from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mlservice.db import Base, UTCDateTime, utcnow
from mlservice.db.types import JSONDoc


class DriftReport(Base):
    __tablename__ = "drift_reports"
    __table_args__ = (Index("ix_drift_reports_model_created", "model_key", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_key: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    trigger: Mapped[str] = mapped_column(String(16))  # manual | daily
    source: Mapped[str] = mapped_column(String(16))  # log | dataset | data
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    verdict: Mapped[str] = mapped_column(String(32))
    sample_size: Mapped[int] = mapped_column(Integer)
    drifted_share: Mapped[float] = mapped_column(Float)
    report: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DailyCheckRun(Base):
    """One row per model and day: the unique key makes the daily check run exactly once,
    whatever restarts or replicas happen around the scheduled time."""

    __tablename__ = "drift_daily_runs"
    __table_args__ = (UniqueConstraint("model_key", "run_date", name="uq_drift_daily_runs_model_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_key: Mapped[str] = mapped_column(String(100))
    run_date: Mapped[date] = mapped_column(Date)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
