"""Recording an event: ``emit`` and the request context it appends to.

- inside an HTTP request, ``emit`` appends to the request's context (a context variable set by
  ``RequestEvents``); when the response starts, the middleware stamps status and duration and
  hands the batch to the ``EventLog`` writer thread, which inserts in batches in a transaction
  of its own — so a failed login is kept although the request's unit of work rolls back, and
  requests never wait for an insert;
- outside a request (worker processes, the scheduler), ``emit(..., session=s)`` adds the row to
  that session, so a job's end and its event commit together.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mlservice.db import utcnow
from mlservice.events.models import Event
from mlservice.events.summary import summarize
from mlservice.principal import Principal

if TYPE_CHECKING:
    from mlservice.events.writer import EventLog

log = logging.getLogger(__name__)

EVENT_COLUMNS = frozenset(column.name for column in Event.__table__.columns)


def event_row(event: dict[str, Any]) -> Event:
    """The row for an event dict; keys that are not columns (working notes) are left out."""
    return Event(**{k: v for k, v in event.items() if k in EVENT_COLUMNS})


@dataclass
class RequestContext:
    """What the middleware knows about the current request; events emitted during it inherit it."""

    log: EventLog
    scope: dict[str, Any]
    source: str
    client_ip: str | None
    user_agent: str | None
    method: str
    path: str
    started: float
    events: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def principal(self) -> Principal | None:
        return self.scope.get("state", {}).get("principal")


_current: ContextVar[RequestContext | None] = ContextVar("mlservice_request_events", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


def set_current(context: RequestContext | None) -> Token[RequestContext | None]:
    return _current.set(context)


def reset_current(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def principal_fields(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {}
    return {
        "user_id": principal.user_id,
        "username": principal.username,
        "auth_kind": principal.auth_kind,
        "token_id": principal.token_id,
    }


def emit(
    event_type: str,
    *,
    session: Session | None = None,
    outcome: str = "ok",
    principal: Principal | None = None,
    job: Any = None,
    input: Any = None,  # noqa: A002 - the name the API shows
    output: Any = None,
    reasons: list[str] | None = None,
    message: str | None = None,
    **fields: Any,
) -> None:
    """Record one event. Never raises: losing an event must not fail the operation."""
    try:
        event: dict[str, Any] = {"type": event_type, "outcome": outcome, "created_at": utcnow()}
        if job is not None:
            event.update(
                job_id=job.id, model_key=job.model_key, model_version=job.model_version,
                user_id=job.user_id, source=job.source, client_ip=job.client_ip, user_agent=job.user_agent,
            )
        event.update(principal_fields(principal))
        event.update({k: v for k, v in fields.items() if v is not None})
        if input is not None:
            event["input_summary"] = summarize(input)
        if output is not None:
            event["output_summary"] = summarize(output)
        if message:
            event["message"] = message[:2000]
        if reasons:
            event["suspicious"] = True
            event["reasons"] = list(reasons)
        context = _current.get()
        if context is not None:
            context.events.append(event)
        elif session is not None:
            event.setdefault("source", "system")
            session.add(event_row(event))
        else:
            log.debug("event %s dropped: no request and no session", event_type)
    except Exception:  # noqa: BLE001
        log.exception("could not record event %s", event_type)
