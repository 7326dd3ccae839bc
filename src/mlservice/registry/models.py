from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mlservice.auth import models as _users  # noqa: F401 - the foreign keys name these tables
from mlservice.datasets import models as _datasets  # noqa: F401
from mlservice.db import Base, UTCDateTime, utcnow
from mlservice.db.types import JSONDoc


class RegisteredModel(Base):
    """A model key (e.g. "nomenclature_label_classifier") and which version serves it."""

    __tablename__ = "models"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    active_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_key", "version", name="uq_model_versions_key_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_key: Mapped[str] = mapped_column(ForeignKey("models.key", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200))
    classes: Mapped[list[Any]] = mapped_column(JSONDoc)
    features: Mapped[list[str]] = mapped_column(JSONDoc)
    schema: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    training: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    bundle_path: Mapped[str] = mapped_column(String(500))
    training_data_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True
    )
    parent_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ModelChange(Base):
    """Who changed what in the registry, and when: created, promoted, rolled back, deleted."""

    __tablename__ = "model_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_key: Mapped[str] = mapped_column(ForeignKey("models.key", ondelete="CASCADE"), index=True)
    version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(32))
    previous_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
