from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from mlservice.auth.deps import CurrentPrincipal
from mlservice.db import SessionDep
from mlservice.db.pagination import Page, PageDep, PageParams
from mlservice.errors import error_responses
from mlservice.events import queries
from mlservice.events.schemas import EventDetail, EventRead
from mlservice.events.writer import EventLogDep

router = APIRouter(prefix="/events", tags=["events"], responses=error_responses(401, 422))


def flushed(log: EventLogDep) -> None:
    """Read-your-writes: events queued by earlier requests are written before we read."""
    log.flush()


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
) -> queries.EventFilters:
    return queries.EventFilters(
        type=type, source=source, user_id=user_id, username=username, client_ip=ip,
        model_key=model_key, job_id=job_id, suspicious=suspicious, since=since, until=until,
    )


Filters = Annotated[queries.EventFilters, Depends(filters)]


def _page(session, principal, found: queries.EventFilters, page: PageParams) -> Response:  # type: ignore[no-untyped-def]
    rows, total = queries.list_events(session, principal, found, limit=page.limit, offset=page.offset)
    return Page[EventRead].of([EventRead(**queries.event_dict(row)) for row in rows], total, page).as_response()


@router.get("", response_model=Page[EventRead], dependencies=[Flushed])
def list_events(principal: CurrentPrincipal, session: SessionDep, found: Filters, page: PageDep) -> Response:
    """Admins see every event; other users their own."""
    return _page(session, principal, found, page)


@router.get("/suspicious", response_model=Page[EventRead], dependencies=[Flushed])
def suspicious_events(principal: CurrentPrincipal, session: SessionDep, found: Filters, page: PageDep) -> Response:
    found.suspicious = True
    return _page(session, principal, found, page)


@router.get("/by-ip/{ip}", response_model=Page[EventRead], dependencies=[Flushed])
def events_by_ip(ip: str, principal: CurrentPrincipal, session: SessionDep, found: Filters, page: PageDep) -> Response:
    found.client_ip = ip
    return _page(session, principal, found, page)


@router.get("/{event_id}", response_model=EventDetail, dependencies=[Flushed], responses=error_responses(404))
def get_event(event_id: int, principal: CurrentPrincipal, session: SessionDep) -> EventDetail:
    return EventDetail(**queries.event_dict(queries.get_event(session, principal, event_id), detail=True))
