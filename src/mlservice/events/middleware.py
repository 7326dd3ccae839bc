"""``RequestEvents``: pure ASGI middleware that gives every request its metadata (client IP,
User-Agent, source, method, path, status, duration, who called), applies the rate limits and
the request-level security rules, and hands the request's events to the background writer."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlservice.errors import error_response
from mlservice.events import service
from mlservice.events.security import WRITE_METHODS, fingerprint, limited_endpoint, scanner_reason
from mlservice.origin import request_origin


class RequestEvents:
    def __init__(self, app: ASGIApp, log: service.EventLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        log = self.log
        request = Request(scope)
        origin = request_origin(request)
        method, path = scope["method"], scope["path"]

        limited = limited_endpoint(method, path) if log.limiter.enabled else None
        if limited is not None:
            secret = _bearer(scope)
            key = f"token:{fingerprint(secret)}" if secret else f"ip:{origin.client_ip}"
            retry_after = await log.limiter.hit(limited, key)
            if retry_after is not None:
                if log.enabled and log.first_flag("rate_limited", key, retry_after):
                    log.submit([_request_event(
                        "request.rate_limited", origin, method, path, 429, 0.0, outcome="denied",
                        message=f"rate limit ({limited}) exceeded by {key.split(':')[0]}; "
                        f"further rejections in this window are not logged",
                    )])
                response = error_response(
                    429, "too_many_requests", f"rate limit exceeded; retry in {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )
                await response(scope, receive, send)
                return
        if not log.enabled:
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        context = service.RequestContext(
            log, scope, origin.source, origin.client_ip, origin.user_agent, method, path, started
        )
        status_holder = [500]

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                self._finish(context, message["status"], limited)
            await send(message)

        token = service._set_current(context)
        try:
            await self.app(scope, receive, send_and_record)
        except BaseException:
            if context.events is not None:
                self._finish(context, 500, limited)
            raise
        finally:
            service._reset_current(token)

    def _closing_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.log.close()
            return message

        return wrapped

    def _finish(self, context: service.RequestContext, status: int, limited: str | None) -> None:
        """At response start: stamp the request's events and apply the request-level rules."""
        events = context.events
        if events is None:  # already finished
            return
        context.events = None  # type: ignore[assignment]
        log = context.log
        duration_ms = round((time.perf_counter() - context.started) * 1000, 3)
        principal = context.principal
        ip, user_agent = context.client_ip, context.user_agent
        now = time.monotonic()

        reasons: list[str] = []
        scanner = scanner_reason(user_agent)
        if scanner:
            reasons.append(scanner)
        if not user_agent and context.method.encode() in WRITE_METHODS:
            reasons.append("write request without a User-Agent")
        if log.bursts.hit(ip, now):
            reasons.append(f"burst: {log.settings.burst_max_requests} requests from {ip} "
                           f"within {log.settings.burst_window_s} s")

        if limited == "sync_predict" and not events and not reasons:
            # The hot path: counted, summarised once a minute by the writer.
            model_key = context.path.split("/")[2]
            fields = service.principal_fields(principal)
            log.count_sync_predict(
                (fields.get("user_id"), fields.get("username"), fields.get("auth_kind"),
                 fields.get("token_id"), model_key, ip, user_agent, context.source),
                status, duration_ms,
            )
        elif not events:
            if status == 403 and principal is not None:
                events.append({"type": "access.forbidden", "outcome": "denied",
                               "message": f"forbidden: {context.method} {context.path}"})
            elif reasons and log.first_flag("request", (ip, tuple(reasons))):
                events.append({"type": "request.suspicious", "outcome": "ok" if status < 400 else "failed",
                               "message": "; ".join(reasons), "reasons": reasons, "suspicious": True})
                reasons = []

        if events:
            base = {
                "source": context.source, "client_ip": ip, "user_agent": user_agent,
                "method": context.method, "path": context.path[:300], "status_code": status,
                "duration_ms": duration_ms, **service.principal_fields(principal),
            }
            for event in events:
                for name, value in base.items():
                    event.setdefault(name, value)
                if reasons:
                    event["reasons"] = list(event.get("reasons") or []) + reasons
                    event["suspicious"] = True
            log.submit(events)
        if principal is not None and principal.auth_kind != "system" and status < 400:
            log.check_client(principal, ip, user_agent, lambda: {
                "source": context.source, "client_ip": ip, "user_agent": user_agent,
                "method": context.method, "path": context.path[:300], "status_code": status,
                "duration_ms": duration_ms, **service.principal_fields(principal),
            })


def _bearer(scope: Scope) -> str | None:
    """The presented secret (header first, then the session cookie), for per-token limits."""
    cookie_secret = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1").partition(" ")[2].strip() or None
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, cookie = part.strip().partition("=")
                if key == "ml_session" and cookie:
                    cookie_secret = cookie
    return cookie_secret


def _request_event(event_type: str, origin: Any, method: str, path: str, status: int, duration_ms: float,
                   **fields: Any) -> dict[str, Any]:
    from mlservice.db import utcnow

    return {
        "type": event_type, "created_at": utcnow(), "source": origin.source, "client_ip": origin.client_ip,
        "user_agent": origin.user_agent, "method": method, "path": path[:300], "status_code": status,
        "duration_ms": duration_ms, **fields,
    }
