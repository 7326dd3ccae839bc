"""The model registry: versions of each model key, which one is active, and its history."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlservice import events, live
from mlservice.artifacts import ArtifactStore
from mlservice.db import utcnow
from mlservice.errors import AppError, BadRequest, Conflict, NotFound
from mlservice.principal import Principal
from mlservice.registry.models import ModelChange, ModelVersion, RegisteredModel

log = logging.getLogger(__name__)

MODEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
SUMMARY_METRICS = ("accuracy", "balanced_accuracy", "log_loss", "n_samples")


def check_model_key(key: str) -> str:
    if not re.fullmatch(MODEL_KEY_PATTERN, key):
        raise BadRequest(
            f"invalid model_key {key!r}: use 1-100 letters, digits, '_', '.' or '-'",
            code="invalid_model_key",
        )
    return key


def summary_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    summary = {name: metrics.get(name) for name in SUMMARY_METRICS if name in metrics}
    if "macro_f1" in metrics:
        summary["f1_macro"] = metrics["macro_f1"]
    return summary


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def next_version(session: Session, key: str) -> str:
    """1.0.0 for a new key, then the next minor: 1.1.0, 1.2.0, … (deleted numbers stay used)."""
    versions = session.scalars(select(ModelVersion.version).where(ModelVersion.model_key == key)).all()
    if not versions:
        return "1.0.0"
    major, minor, _ = max(_version_tuple(v) for v in versions)
    return f"{major}.{minor + 1}.0"


def get_model(session: Session, key: str) -> RegisteredModel:
    model = session.get(RegisteredModel, key)
    if model is None:
        raise NotFound(f"model {key!r} does not exist", code="unknown_model")
    return model


def live_versions(session: Session, key: str) -> list[ModelVersion]:
    rows = session.scalars(
        select(ModelVersion).where(ModelVersion.model_key == key, ModelVersion.deleted_at.is_(None))
    ).all()
    return sorted(rows, key=lambda v: _version_tuple(v.version))


def get_version(session: Session, key: str, version: str | None = None) -> ModelVersion:
    """A live version; without ``version``, the active one."""
    model = get_model(session, key)
    wanted = version or model.active_version
    if wanted is None:
        raise Conflict(f"model {key!r} has no active version; promote one first", code="no_active_version")
    row = session.scalars(
        select(ModelVersion).where(
            ModelVersion.model_key == key, ModelVersion.version == wanted, ModelVersion.deleted_at.is_(None)
        )
    ).first()
    if row is None:
        raise NotFound(f"model {key!r} has no version {wanted!r}", code="unknown_version")
    return row


def register_version(
    session: Session,
    *,
    key: str,
    version: str,
    principal_user_id: int | None,
    target: str,
    classes: list[Any],
    features: list[str],
    schema: dict[str, Any],
    metrics: dict[str, Any],
    training: dict[str, Any],
    bundle_path: str,
    training_data_path: str | None,
    dataset_id: str | None,
    parent_version: str | None,
    job_id: str | None,
) -> ModelVersion:
    model = session.get(RegisteredModel, key)
    if model is None:
        model = RegisteredModel(key=key, created_by=principal_user_id)
        session.add(model)
        session.flush()
    row = ModelVersion(
        model_key=key, version=version, target=target, classes=classes, features=features,
        schema=schema, metrics=metrics, training=training, bundle_path=bundle_path,
        training_data_path=training_data_path, dataset_id=dataset_id, parent_version=parent_version,
        job_id=job_id, created_by=principal_user_id,
    )
    session.add(row)
    session.add(ModelChange(model_key=key, version=version, action="created", user_id=principal_user_id))
    live.model_changed(session, "model.version_created", key, version, user_id=principal_user_id, job_id=job_id,
                       active_version=model.active_version or version)
    if model.active_version is None:
        _activate(session, model, version, principal_user_id, "promoted")
    session.flush()
    return row


def _activate(session: Session, model: RegisteredModel, version: str, user_id: int | None, action: str) -> None:
    live.model_changed(session, f"model.{action}", model.key, version, user_id=user_id,
                       previous_version=model.active_version, active_version=version)
    session.add(ModelChange(
        model_key=model.key, version=version, action=action,
        previous_version=model.active_version, user_id=user_id,
    ))
    events.emit(f"model.{action}", session=session, model_key=model.key, model_version=version, user_id=user_id,
                input={"previous_version": model.active_version, "version": version})
    model.active_version = version
    model.updated_at = utcnow()


def activate_as_system(session: Session, model: RegisteredModel, version: str, action: str) -> None:
    """Automatic promotion (a retrain that beat the champion): recorded with no user."""
    _activate(session, model, version, None, action)


def promote(session: Session, actor: Principal, key: str, version: str) -> RegisteredModel:
    row = get_version(session, key, version)
    model = get_model(session, key)
    if model.active_version == row.version:
        raise Conflict(f"version {version} of {key!r} is already active", code="already_active")
    _activate(session, model, row.version, actor.user_id, "promoted")
    return model


def rollback(session: Session, actor: Principal, key: str) -> RegisteredModel:
    """Make the version that was active before the current one active again."""
    model = get_model(session, key)
    live = {v.version for v in live_versions(session, key)}
    activations = session.scalars(
        select(ModelChange)
        .where(ModelChange.model_key == key, ModelChange.action.in_(("promoted", "rolled_back")))
        .order_by(ModelChange.id.desc())
    ).all()
    current = model.active_version
    for change in activations:
        candidate = change.previous_version
        if change.version == current and candidate and candidate != current and candidate in live:
            _activate(session, model, candidate, actor.user_id, "rolled_back")
            return model
    raise Conflict(f"model {key!r} has no earlier active version to roll back to", code="nothing_to_roll_back")


def delete_version(session: Session, actor: Principal, key: str, version: str) -> None:
    row = get_version(session, key, version)
    model = get_model(session, key)
    if model.active_version == row.version:
        raise Conflict(
            f"version {version} is active; promote another version before deleting it", code="version_active"
        )
    row.deleted_at = utcnow()
    session.add(ModelChange(model_key=key, version=version, action="deleted", user_id=actor.user_id))
    events.emit("model.version_deleted", session=session, principal=actor, model_key=key, model_version=version)


def list_models(session: Session, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    total = session.scalar(select(func.count()).select_from(RegisteredModel)) or 0
    models = session.scalars(select(RegisteredModel).order_by(RegisteredModel.key).limit(limit).offset(offset)).all()
    counts = dict(
        session.execute(
            select(ModelVersion.model_key, func.count())
            .where(ModelVersion.deleted_at.is_(None))
            .group_by(ModelVersion.model_key)
        ).all()
    )
    items = []
    for model in models:
        active = None
        if model.active_version:
            active = session.scalars(
                select(ModelVersion).where(
                    ModelVersion.model_key == model.key, ModelVersion.version == model.active_version
                )
            ).first()
        items.append({
            "model_key": model.key,
            "active_version": model.active_version,
            "versions": counts.get(model.key, 0),
            "status": "active" if model.active_version else "no_active_version",
            "metrics": summary_metrics(active.metrics) if active else None,
            "created_at": model.created_at,
            "updated_at": model.updated_at,
        })
    return items, total


def changes(session: Session, key: str) -> list[ModelChange]:
    return list(session.scalars(
        select(ModelChange).where(ModelChange.model_key == key).order_by(ModelChange.id)
    ).all())


class BundleMissing(AppError):
    """A version's bundle is not on disk. 503, not 500: the service is fine and so is the data
    that describes the version; an operator restores the file (or retrains) and it serves again."""

    status_code = 503
    code = "bundle_missing"


class ModelCache:
    """Loaded bundles by path, least recently used evicted; bundles are immutable once saved."""

    def __init__(self, artifacts: ArtifactStore, capacity: int = 8) -> None:
        self.artifacts = artifacts
        self.capacity = capacity
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, bundle_path: str, *, model_key: str | None = None,
            version: str | None = None) -> Any:
        """The loaded bundle. :class:`BundleMissing` if it is not on disk; naming ``model_key``
        and ``version`` lets the message say which version it is."""
        from mlservice.ml import load_bundle
        from mlservice.ml.errors import BundleMissingError

        with self._lock:
            model = self._models.get(bundle_path)
            if model is not None:
                self._models.move_to_end(bundle_path)
                return model
        try:
            model = load_bundle(self.artifacts.path(bundle_path), trusted_root=self.artifacts.root)
        except BundleMissingError as exc:
            raise self._missing(bundle_path, model_key, version, exc) from None
        with self._lock:
            self._models[bundle_path] = model
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return model

    def _missing(self, bundle_path: str, model_key: str | None, version: str | None,
                 exc: Exception) -> BundleMissing:
        which = (f"version {version} of model {model_key!r}" if model_key and version
                 else f"the model bundle {bundle_path!r}")
        file = getattr(exc, "details", {}).get("file")
        artifact = f"{bundle_path}/{file}" if file else bundle_path
        # The operator reads the server log, the client the answer: both say what to do.
        log.error("model bundle missing: %s (%s)", which, exc)
        return BundleMissing(
            f"the model file of {which} is missing from the artifact store ({artifact} under "
            "ML_ARTIFACTS_ROOT); an administrator can restore it from a backup (taken with "
            "`mlservice backup`, restored with `mlservice restore`) or retrain the model",
            details={"model_key": model_key, "version": version, "artifact": artifact},
        )


async def get_model_cache(request: Request) -> ModelCache:
    return request.app.state.model_cache


ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]
