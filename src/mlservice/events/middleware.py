"""``RequestEvents``: pure ASGI middleware that gives every request its metadata (client IP,
User-Agent, source, method, path, status, duration, who called), applies the request-level
detection rules, and hands the request's events to the background writer. (Rate limits are
auth's, in ``auth.ratelimit``, a middleware outside this one.)"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlservice.events.recording import RequestContext, principal_fields, reset_current, set_current
from mlservice.events.rules import request_reasons
from mlservice.events.writer import EventLog
from mlservice.origin import request_origin


class RequestEvents:
    def __init__(self, app: ASGIApp, log: EventLog) -> None:
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
        if not log.enabled:
            await self.app(scope, receive, send)
            return
        origin = request_origin(Request(scope))
        method, path = scope["method"], scope["path"]
        sync_predict = is_sync_predict(method, path)

        started = time.perf_counter()
        context = RequestContext(
            log, scope, origin.source, origin.client_ip, origin.user_agent, method, path, started
        )

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._finish(context, message["status"], sync_predict)
            await send(message)

        token = set_current(context)
        try:
            await self.app(scope, receive, send_and_record)
        except BaseException:
            if context.events is not None:
                self._finish(context, 500, sync_predict)
            raise
        finally:
            reset_current(token)

    def _closing_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.log.close()
            return message

        return wrapped

    def _finish(self, context: RequestContext, status: int, sync_predict: bool) -> None:
        """At response start: stamp the request's events and apply the request-level rules."""
        events = context.events
        if events is None:  # already finished
            return
        context.events = None  # type: ignore[assignment]
        log = context.log
        duration_ms = round((time.perf_counter() - context.started) * 1000, 3)
        principal = context.principal
        ip, user_agent = context.client_ip, context.user_agent
        now = log.clock()

        reasons = request_reasons(context.method, ip, user_agent, log.bursts, now)
        if sync_predict and not events:
            # The hot path: counted, summarised once a minute by the writer; a flagged call too
            # (a burst of predictions is still that many predictions), flagged below as well.
            model_key = context.path.split("/")[2]
            fields = principal_fields(principal)
            log.count_sync_predict(
                (fields.get("user_id"), fields.get("username"), fields.get("auth_kind"),
                 fields.get("token_id"), model_key, ip, user_agent, context.source),
                status, duration_ms,
            )
        elif not events and status == 403 and principal is not None:
            events.append({"type": "access.forbidden", "outcome": "denied",
                           "message": f"forbidden: {context.method} {context.path}"})
        if not events and reasons and log.first_flag("request", (ip, tuple(reasons))):
            events.append({"type": "request.suspicious", "outcome": "ok" if status < 400 else "failed",
                           "message": "; ".join(reasons), "reasons": reasons, "suspicious": True})
            reasons = []

        def stamp() -> dict[str, Any]:  # built only when needed: not on the hot path
            return {
                "source": context.source, "client_ip": ip, "user_agent": user_agent,
                "method": context.method, "path": context.path[:300], "status_code": status,
                "duration_ms": duration_ms, **principal_fields(principal),
            }

        if events:
            base = stamp()
            for event in events:
                for name, value in base.items():
                    event.setdefault(name, value)
                event["detected_at"] = now  # the rules' clock, for the writer's windowed rules
                if reasons:
                    event["reasons"] = list(event.get("reasons") or []) + reasons
                    event["suspicious"] = True
            log.submit(events)
        if principal is not None and principal.auth_kind != "system" and status < 400:
            log.check_client(principal, ip, user_agent, stamp, log.networks.reason(principal, ip, now))


def is_sync_predict(method: str, path: str) -> bool:
    """``POST /models/{key}/predict``: the hot path, counted rather than logged one by one."""
    return method == "POST" and path.startswith("/models/") and path.endswith("/predict") and path.count("/") == 3
