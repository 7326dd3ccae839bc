"""Live-update messages: the envelope, who may see each one, and the builders the services call.

A message is a plain dict that travels between processes as JSON::

    {"type": "job.stage", "ts": "2025-01-01T12:00:00.123456+00:00",
     "topics": ["jobs", "job:<id>", "model:<key>"], "audience": "user:7", "data": {...}}

``audience`` decides who receives it, with the same rules as the REST API: ``"all"`` (every
signed-in user: models, drift reports, alerts that are not admin-only), ``"admins"`` (admin
and system_admin: admin-only alerts, suspicious events, jobs nobody owns) and ``"user:<id>"``
(that user and the admins: jobs). ``topics`` are what a client may subscribe to. The audience is
stripped before a message goes out on a socket.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from mlservice.principal import Principal

Message = dict[str, Any]

ALL = "all"
ADMINS = "admins"

JOB_TYPES = (
    "job.created", "job.started", "job.stage", "job.progress", "job.cancel_requested",
    "job.completed", "job.failed", "job.cancelled",
)
MODEL_TYPES = ("model.version_created", "model.promoted", "model.rolled_back")
OTHER_TYPES = ("drift.report_ready", "alert.raised", "alert.acknowledged", "security.suspicious_event")
# Sent by the hub itself, never published.
CONTROL_TYPES = ("hello", "ping", "pong", "subscribed", "resync", "error")

TOPIC = re.compile(r"^(jobs|models|alerts|drift|security|job:[A-Za-z0-9_-]{1,64}|model:[A-Za-z0-9_.:-]{1,100}|alert:\d{1,18})$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def envelope(kind: str, data: dict[str, Any], *, topics: list[str], audience: str) -> Message:
    return {"type": kind, "ts": now_iso(), "topics": topics, "audience": audience, "data": data}


def user_audience(user_id: int | None) -> str:
    """A job's owner and the admins; a job nobody owns (a system check) is for admins only."""
    return ADMINS if user_id is None else f"user:{user_id}"


def may_see(principal: Principal, audience: str) -> bool:
    if audience == ALL or principal.is_admin:
        return True
    return audience == f"user:{principal.user_id}"


def _model_topics(model_key: str | None) -> list[str]:
    return [f"model:{model_key}"] if model_key else []


# Jobs ---------------------------------------------------------------------------------------


def job_message(kind: str, job: Any) -> Message:
    """From a ``Job`` row (or anything with its attributes), built before the commit."""
    data = {
        "job_id": job.id, "job_type": job.type, "status": job.status, "stage": job.stage,
        "progress": job.progress, "model_key": job.model_key, "model_version": job.model_version,
        "user_id": job.user_id,
    }
    if kind in ("job.failed", "job.cancelled"):
        data["error"] = job.error
    return envelope(kind, data, topics=["jobs", f"job:{job.id}", *_model_topics(job.model_key)],
                    audience=user_audience(job.user_id))


def job_progress_message(job_id: str, job_type: str, user_id: int | None, model_key: str | None,
                         stage: str | None, progress: float, details: dict[str, Any] | None) -> Message:
    data: dict[str, Any] = {"job_id": job_id, "job_type": job_type, "status": "running", "stage": stage,
                            "progress": progress, "model_key": model_key, "user_id": user_id}
    if details:
        # The small, per-epoch part; the whole loss history stays behind GET /jobs/{id}.
        data["details"] = {k: v for k, v in details.items() if k != "history"}
        history = details.get("history")
        if isinstance(history, list) and history:
            data["details"]["last"] = history[-1]
    return envelope("job.progress", data, topics=["jobs", f"job:{job_id}", *_model_topics(model_key)],
                    audience=user_audience(user_id))


# Models, drift, alerts, security --------------------------------------------------------------


def model_message(kind: str, model_key: str, version: str, *, user_id: int | None = None,
                  previous_version: str | None = None, job_id: str | None = None,
                  active_version: str | None = None) -> Message:
    data = {"model_key": model_key, "version": version, "active_version": active_version,
            "previous_version": previous_version, "job_id": job_id, "user_id": user_id}
    return envelope(kind, data, topics=["models", f"model:{model_key}"], audience=ALL)


def drift_report_message(report: Any) -> Message:
    data = {"report_id": report.id, "model_key": report.model_key, "version": report.version,
            "job_id": report.job_id, "trigger": report.trigger, "verdict": report.verdict,
            "drifted_share": report.drifted_share, "sample_size": report.sample_size}
    return envelope("drift.report_ready", data, topics=["drift", f"model:{report.model_key}"], audience=ALL)


def alert_message(kind: str, alert: Any) -> Message:
    data = {"alert_id": alert.id, "kind": alert.kind, "severity": alert.severity, "status": alert.status,
            "model_key": alert.model_key, "message": alert.message, "occurrences": alert.occurrences,
            "link": alert.link, "admin_only": alert.admin_only}
    return envelope(kind, data, topics=["alerts", f"alert:{alert.id}", *_model_topics(alert.model_key)],
                    audience=ADMINS if alert.admin_only else ALL)


def suspicious_message(data: dict[str, Any]) -> Message:
    return envelope("security.suspicious_event", data, topics=["security"], audience=ADMINS)
