from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from mlservice.auth.deps import CurrentPrincipal
from mlservice.auth.schemas import Page
from mlservice.db import SessionDep
from mlservice.errors import error_responses
from mlservice.events import service
from mlservice.events.schemas import EventDetail, EventRead

router = APIRouter(prefix="/events", tags=["events"], responses=error_responses(401, 422))


def flushed(request: Request) -> None:
    """Read-your-writes: events queued by earlier requests are written before we read."""
    request.app.state.events.flush()


Flushed = Depends(flushed)


async def filters(  # async: pure parsing, not worth a hop to the thread pool
    type: str | None = Query(None, description="exact type, or a prefix: 'login' matches login.*"),  # noqa: A002
    source: Literal["gui", "api", "system"] | None = None,
    user_id: int | None = Query(None, description="admins only: events of one user"),
    username: str | None = None,
    ip: str | None = None,
    model_key: str | None = None,
    job_id: str | None = None,
    suspicious: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> service.EventFilters:
    return service.EventFilters(
        type=type, source=source, user_id=user_id, username=username, client_ip=ip,
        model_key=model_key, job_id=job_id, suspicious=suspicious, since=since, until=until,
    )


Filters = Annotated[service.EventFilters, Depends(filters)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


def _page(session, principal, found: service.EventFilters, limit: int, offset: int) -> Response:  # type: ignore[no-untyped-def]
    rows, total = service.list_events(session, principal, found, limit=limit, offset=offset)
    return Page[EventRead](
        items=[EventRead(**service.event_dict(row)) for row in rows], total=total, limit=limit, offset=offset
    ).as_response()


@router.get("", response_model=Page[EventRead], dependencies=[Flushed])
def list_events(
    principal: CurrentPrincipal, session: SessionDep, found: Filters, limit: Limit = 50, offset: Offset = 0
) -> Response:
    """Admins see every event; other users their own."""
    return _page(session, principal, found, limit, offset)


@router.get("/suspicious", response_model=Page[EventRead], dependencies=[Flushed])
def suspicious_events(
    principal: CurrentPrincipal, session: SessionDep, found: Filters, limit: Limit = 50, offset: Offset = 0
) -> Response:
    found.suspicious = True
    return _page(session, principal, found, limit, offset)


@router.get("/by-ip/{ip}", response_model=Page[EventRead], dependencies=[Flushed])
def events_by_ip(
    ip: str, principal: CurrentPrincipal, session: SessionDep, found: Filters,
    limit: Limit = 50, offset: Offset = 0,
) -> Response:
    found.client_ip = ip
    return _page(session, principal, found, limit, offset)


@router.get("/{event_id}", response_model=EventDetail, dependencies=[Flushed], responses=error_responses(404))
def get_event(event_id: int, principal: CurrentPrincipal, session: SessionDep) -> EventDetail:
    return EventDetail(**service.event_dict(service.get_event(session, principal, event_id), detail=True))
