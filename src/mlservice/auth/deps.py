"""Authentication dependencies, scoped by tier, as ``Annotated`` aliases for endpoints."""

from __future__ import annotations

import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from mlservice.auth import service
from mlservice.auth.service import TokenRejected
from mlservice.auth.tokens import token_rejected
from mlservice.db import DatabaseBusyError, utcnow
from mlservice.errors import Forbidden, Unauthorized
from mlservice.origin import CLIENT_HEADER, DASHBOARD_CLIENT
from mlservice.principal import Principal, Tier

log = logging.getLogger(__name__)

SESSION_COOKIE = "ml_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def bearer_secret(request: HTTPConnection) -> tuple[str | None, bool]:
    """The presented secret and whether it came from the session cookie (HTTP or WebSocket)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'", code="invalid_token")
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


async def authenticate_request(request: Request) -> Principal:
    """Resolve the caller in a short transaction of its own, so the request's unit of work
    (and, on SQLite, its write lock) starts only when the endpoint needs it.

    Async on purpose: on SQLite the lookup is one prepared, indexed read (~0.1 ms), cheaper than
    the hop to a worker thread a sync dependency costs; the occasional last-used write goes to a
    thread. On PostgreSQL the lookup itself runs in a thread."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    secret, from_cookie = bearer_secret(request)
    if secret is None:
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    if from_cookie and request.method in UNSAFE_METHODS:
        # The cookie is sent by the browser on its own; a custom header is not (CSRF guard).
        if request.headers.get(CLIENT_HEADER) != DASHBOARD_CLIENT:
            raise Forbidden(f"cookie-authenticated writes need the header X-ML-Client: {DASHBOARD_CLIENT}")
    app_state = request.app.state
    if app_state.database.is_sqlite:
        principal = principal_from_secret(app_state, secret, touch=app_state.token_touches)
    else:  # network round trips: off the event loop (see db_io)
        principal = await run_in_threadpool(principal_from_secret, app_state, secret)
    request.state.principal = principal
    return principal


def _touch_now(database, token_id: int, now) -> None:  # type: ignore[no-untyped-def]
    try:
        with database.session(write=True) as session:
            service.touch_token(session, token_id, now)
    except DatabaseBusyError:
        log.warning("skipped last-used update of token %s: database busy", token_id)


class TokenTouches:
    """SQLite's last-used writes, off the event loop, on one thread of the app's own: they queue
    rather than contend for the write lock, and the lifespan drains them (close) before its WAL
    checkpoint. On the loop's shared executor one could land after it, and a copy of
    ``mlservice.db`` alone then missed it."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="token-touch")

    def __call__(self, database, token_id: int, now) -> None:  # type: ignore[no-untyped-def]
        try:
            self._executor.submit(_touch_now, database, token_id, now)
        except RuntimeError:  # closed: a request still answered while the server stops
            _touch_now(database, token_id, now)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def principal_from_secret(app_state, secret: str, *, touch=_touch_now) -> Principal:  # type: ignore[no-untyped-def]
    """Who presents ``secret`` (the system token, or a usable session or API token); a rejected
    secret is flagged in the event log and answers 401. For HTTP requests and WebSockets."""
    settings = app_state.settings
    database = app_state.database
    now = utcnow()
    system_token = settings.admin_api_token
    try:
        if system_token is not None and hmac.compare_digest(
            secret.encode(), system_token.get_secret_value().encode()
        ):
            with database.session() as session:
                user = service.system_token_user(session)
                return Principal(
                    user.id, user.username, Tier(user.tier), "system", None, user.created_at, user.last_login_at
                )
        resolved = service.resolve_secret(database, secret, now)
    except TokenRejected as rejected:
        token_rejected(secret, rejected.reason, rejected.owner)
        raise Unauthorized(f"invalid token: {rejected.reason}", code="invalid_token") from None
    principal = resolved.principal
    if service.needs_touch(resolved.last_used_at, now):
        touch(database, principal.token_id, now)
    return principal


async def require_admin(principal: Annotated[Principal, Depends(authenticate_request)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("this needs an admin or system_admin account")
    return principal


async def require_system_admin(principal: Annotated[Principal, Depends(authenticate_request)]) -> Principal:
    if principal.tier is not Tier.system_admin:
        raise Forbidden("this needs a system_admin account")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate_request)]
AdminPrincipal = Annotated[Principal, Depends(require_admin)]
SystemAdminPrincipal = Annotated[Principal, Depends(require_system_admin)]
