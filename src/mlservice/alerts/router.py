from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from mlservice.alerts import service
from mlservice.alerts.models import Alert
from mlservice.auth.deps import CurrentPrincipal
from mlservice.db import SessionDep
from mlservice.db.pagination import Page
from mlservice.errors import error_responses

router = APIRouter(prefix="/health/alerts", tags=["alerts"], responses=error_responses(401, 422))


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    severity: str
    status: str
    model_key: str | None
    message: str
    link: dict[str, Any]
    details: dict[str, Any]
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None


@router.get("", response_model=Page[AlertRead])
def list_alerts(
    principal: CurrentPrincipal,
    session: SessionDep,
    status: Literal["active", "acknowledged", "resolved", "all"] = "active",
    kind: str | None = None,
    model_key: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    rows, total = service.list_alerts(
        session, principal, status=None if status == "all" else status, kind=kind, model_key=model_key,
        limit=limit, offset=offset,
    )
    return Page[AlertRead](items=[AlertRead.model_validate(a) for a in rows], total=total, limit=limit, offset=offset).as_response()


@router.post("/{alert_id}/ack", response_model=AlertRead, responses=error_responses(403, 404, 409))
def acknowledge(alert_id: int, principal: CurrentPrincipal, session: SessionDep) -> Alert:
    return service.acknowledge(session, principal, alert_id)
