"""Reading and expiring the event log: the list/detail shape, filters, retention."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from mlservice.db import Database, utcnow
from mlservice.db.pagination import owned_or_404, paginate, visible_to, where_given, within
from mlservice.events.models import Event
from mlservice.principal import Principal
from mlservice.settings import Settings

log = logging.getLogger(__name__)

LIST_FIELDS = (
    "id", "created_at", "type", "outcome", "source", "user_id", "username", "auth_kind", "token_id",
    "client_ip", "user_agent", "method", "path", "status_code", "duration_ms", "job_id", "model_key",
    "model_version", "message", "suspicious", "reasons",
)


def event_dict(event: Event, *, detail: bool = False) -> dict[str, Any]:
    """What the API (and every ``EventLog`` listener) sees of a row."""
    data = {name: getattr(event, name) for name in LIST_FIELDS}
    data["reasons"] = list(data["reasons"] or [])
    if detail:
        data["input"] = event.input_summary
        data["output"] = event.output_summary
    return data


@dataclass
class EventFilters:
    type: str | None = None
    source: str | None = None
    user_id: int | None = None
    username: str | None = None
    client_ip: str | None = None
    model_key: str | None = None
    job_id: str | None = None
    suspicious: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_events(
    session: Session, principal: Principal, filters: EventFilters, *, limit: int, offset: int
) -> tuple[list[Event], int]:
    """Admins see every event (or one user's with ``user_id``); everyone else only their own."""
    query = visible_to(select(Event), Event.user_id, principal, filters.user_id)
    if filters.type:
        # "login" matches login.ok, login.failed, …; "login.failed" matches itself.
        query = query.where(or_(Event.type == filters.type, Event.type.like(f"{filters.type}.%")))
    query = where_given(query, (Event.source, filters.source), (Event.username, filters.username),
                        (Event.client_ip, filters.client_ip), (Event.model_key, filters.model_key),
                        (Event.job_id, filters.job_id))
    if filters.suspicious is not None:
        query = query.where(Event.suspicious.is_(filters.suspicious))
    query = within(query, Event.created_at, filters.since, filters.until)
    return paginate(session, query, Event.created_at.desc(), Event.id.desc(), limit=limit, offset=offset)


def get_event(session: Session, principal: Principal, event_id: int) -> Event:
    return owned_or_404(session.get(Event, event_id), principal, f"event {event_id}")


def delete_older_than(session: Session, days: int) -> int:
    result = session.execute(delete(Event).where(Event.created_at < utcnow() - timedelta(days=days)))
    return result.rowcount or 0


def delete_expired_events(database: Database, settings: Settings) -> int:
    """The daily clean-up job (``ML_EVENT_RETENTION_DAYS``)."""
    with database.session(write=True) as session:
        removed = delete_older_than(session, settings.event_retention_days)
    if removed:
        log.info("event retention removed %d event(s)", removed)
    return removed
