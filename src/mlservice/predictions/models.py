from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mlservice.auth import models as _users  # noqa: F401 - the foreign keys name these tables
from mlservice.db import Base, UTCDateTime, utcnow
from mlservice.jobs import models as _jobs  # noqa: F401


class PredictionFeedback(Base):
    """A true label sent back for one predicted row (from an async prediction job)."""

    __tablename__ = "prediction_feedback"
    __table_args__ = (UniqueConstraint("job_id", "row_index", name="uq_prediction_feedback_job_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    model_key: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(32))
    row_index: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    predicted: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
