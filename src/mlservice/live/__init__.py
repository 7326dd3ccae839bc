"""Live updates: whatever changes a job, model, drift report or alert publishes a message after
its commit; the WebSocket hub of every API replica delivers it to the clients allowed to see it.

The one-line hooks the services call (each a no-op in a process without a publisher)::

    live.job_changed(job, "job.stage")            # job row in a session, before its commit
    live.job_progress(session, job, progress, details)
    live.model_changed(session, "model.promoted", key, version, ...)
    live.alert_changed(alert, "alert.raised")
    live.drift_report_ready(report)
    live.suspicious_event(data)                   # published at once (no session)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, object_session

from mlservice.live import bus, messages
from mlservice.live.bus import install_worker_publisher, publish, publish_after_commit

__all__ = [
    "alert_changed", "drift_report_ready", "install_worker_publisher", "job_changed", "job_progress",
    "forward_suspicious", "model_changed", "publish", "publish_after_commit", "suspicious_event",
]


def _after_commit_of(row: Any, build) -> None:  # type: ignore[no-untyped-def]
    if not bus.active():
        return
    session = object_session(row)
    message = build()
    if session is None:
        bus.publish(message)
    else:
        bus.publish_after_commit(session, message)


def job_changed(job: Any, kind: str) -> None:
    _after_commit_of(job, lambda: messages.job_message(kind, job))


def job_progress(session: Session, job: Any, progress: float, details: dict[str, Any] | None = None) -> None:
    """``job``: its row, or anything with its ``id``, ``type``, ``user_id``, ``model_key`` and
    ``stage`` (the jobs domain passes them: live updates never import a domain)."""
    if bus.active():
        bus.publish_after_commit(session, messages.job_progress_message(
            job.id, job.type, job.user_id, job.model_key, job.stage, progress, details))


def model_changed(session: Session, kind: str, model_key: str, version: str, **fields: Any) -> None:
    if bus.active():
        bus.publish_after_commit(session, messages.model_message(kind, model_key, version, **fields))


def alert_changed(alert: Any, kind: str) -> None:
    _after_commit_of(alert, lambda: messages.alert_message(kind, alert))


def drift_report_ready(report: Any) -> None:
    """Call once the report row is flushed (it needs its id); it goes out after the commit."""
    _after_commit_of(report, lambda: messages.drift_report_message(report))


def suspicious_event(data: dict[str, Any]) -> None:
    """For the security monitor's listener: admins only."""
    bus.publish(messages.suspicious_message(data))


def forward_suspicious(event: dict[str, Any]) -> None:
    """A listener for ``EventLog.subscribe`` (mlservice.events): suspicious events go to admins."""
    if event.get("suspicious"):
        suspicious_event(event)
