"""Alerts: raised by drift checks, failed jobs, rejected retrains and security monitoring."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlservice import events, live
from mlservice.alerts.models import Alert
from mlservice.db import Database, utcnow
from mlservice.db.pagination import paginate, where_given
from mlservice.errors import Conflict, NotFound
from mlservice.principal import Principal

SEVERITIES = ("info", "warning", "critical")


def raise_alert(
    session: Session,
    *,
    kind: str,
    severity: str,
    dedup_key: str,
    message: str,
    model_key: str | None = None,
    link: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    admin_only: bool = False,
) -> Alert:
    """Open a new alert, or refresh the open one with the same ``dedup_key`` (an acknowledged
    alert that fires again becomes active again: the condition is back)."""
    alert = session.scalars(
        select(Alert).where(Alert.dedup_key == dedup_key, Alert.status != "resolved")
    ).first()
    now = utcnow()
    if alert is None:
        alert = Alert(
            kind=kind, severity=severity, status="active", dedup_key=dedup_key, model_key=model_key,
            message=message, link=link or {}, details=details or {}, occurrences=1,
            admin_only=admin_only, first_seen_at=now, last_seen_at=now,
        )
        session.add(alert)
    else:
        alert.occurrences += 1
        alert.last_seen_at = now
        alert.message = message
        alert.severity = max(alert.severity, severity, key=SEVERITIES.index)
        alert.link = link or alert.link
        alert.details = details or alert.details
        alert.status = "active"
        alert.acknowledged_at = None
        alert.acknowledged_by = None
    session.flush()
    live.alert_changed(alert, "alert.raised")
    if kind != "security" or alert.occurrences == 1:  # security alerts refresh with each flagged event
        events.emit("alert.raised", session=session, model_key=model_key, message=message,
                    input={"kind": kind, "severity": severity, "dedup_key": dedup_key}, output={"alert_id": alert.id})
    return alert


def raise_alert_now(database: Database, **kwargs: Any) -> int:
    with database.session(write=True) as session:
        return raise_alert(session, **kwargs).id


# One attack, one alert: the lockout that repeated failed logins cause is the same brute force,
# so it refreshes the failures' alert (one more occurrence, its message) instead of adding one.
SAME_ATTACK = {"login.failed": "login", "login.locked": "login"}


def raise_security_alert(database: Database, event: dict[str, Any]) -> None:
    """A listener for ``EventLog.subscribe`` (wired in app.py): a suspicious event raises (or
    refreshes) an admin-only security alert per kind of attack and user (or IP)."""
    if not event.get("suspicious"):
        return
    who = event.get("username") or event.get("user_id") or event.get("client_ip")
    attack = SAME_ATTACK.get(event["type"], event["type"])
    raise_alert_now(
        database, kind="security", severity="warning", dedup_key=f"security:{attack}:{who}",
        message=f"{event['type']} from {event.get('client_ip') or 'unknown IP'}: {'; '.join(event['reasons'])}",
        link={"type": "event", "id": event["id"]}, admin_only=True,
        details={"event_id": event["id"], "client_ip": event.get("client_ip"), "user_id": event.get("user_id")},
    )


def resolve(session: Session, dedup_key: str) -> None:
    for alert in session.scalars(select(Alert).where(Alert.dedup_key == dedup_key, Alert.status != "resolved")):
        alert.status = "resolved"


def list_alerts(
    session: Session,
    principal: Principal,
    *,
    status: str | None,
    kind: str | None,
    model_key: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Alert], int]:
    query = where_given(select(Alert), (Alert.status, status), (Alert.kind, kind), (Alert.model_key, model_key))
    if not principal.is_admin:
        query = query.where(Alert.admin_only.is_(False))
    return paginate(session, query, Alert.last_seen_at.desc(), Alert.id.desc(), limit=limit, offset=offset)


def acknowledge(session: Session, principal: Principal, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or (alert.admin_only and not principal.is_admin):
        raise NotFound(f"alert {alert_id} does not exist")
    if alert.status != "active":
        raise Conflict(f"alert {alert_id} is already {alert.status}", code="alert_not_active")
    alert.status = "acknowledged"
    alert.acknowledged_at = utcnow()
    alert.acknowledged_by = principal.user_id
    live.alert_changed(alert, "alert.acknowledged")
    return alert
