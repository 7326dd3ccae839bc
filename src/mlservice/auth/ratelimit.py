"""Request rate limits on the expensive endpoints, per token (or per IP without one), as a pure
ASGI middleware in front of everything else. Counters live in a ``limits`` storage: in memory by
default, Redis when ``ML_RATE_LIMIT_STORAGE=redis://…`` so every replica shares them (the login
lockout in ``auth.lockout`` uses the same storage)."""

from __future__ import annotations

import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mlservice.auth.deps import bearer_secret
from mlservice.auth.tokens import fingerprint
from mlservice.db import utcnow
from mlservice.errors import AppError, error_response
from mlservice.events.middleware import is_sync_predict
from mlservice.events.writer import EventLog
from mlservice.origin import Origin, request_origin
from mlservice.settings import Settings

KEY_PREFIX = "mlservice"
EXPENSIVE_PATHS = frozenset({"/train", "/predict", "/quality", "/drift/check"})


def storage_uri(setting: str, *, asynchronous: bool) -> str:
    uri = "memory://" if setting.strip() in ("memory", "memory://", "") else setting.strip()
    return f"async+{uri}" if asynchronous else uri


def parse_limit(value: str) -> RateLimitItem | None:
    """``"60/minute"`` style (the ``limits`` notation), or ``off``."""
    text = value.strip().lower()
    return None if text in ("off", "none", "0", "") else parse(text)


def limited_endpoint(method: str, path: str) -> str | None:
    """Which rate limit applies to a request: 'expensive', 'sync_predict' or None."""
    if method != "POST":
        return None
    if path in EXPENSIVE_PATHS:
        return "expensive"
    return "sync_predict" if is_sync_predict(method, path) else None


class RequestLimiter:
    """Fixed-window counters per category and key; async, so a Redis round trip never blocks
    the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.items = {
            "expensive": parse_limit(settings.rate_limit_expensive),
            "sync_predict": parse_limit(settings.rate_limit_sync_predict),
        }
        self.enabled = any(self.items.values())
        self._strategy: FixedWindowRateLimiter | None = None
        self._uri = storage_uri(settings.rate_limit_storage, asynchronous=True)
        self._options = {"implementation": "redispy"} if "redis" in self._uri else {}

    def _limiter(self) -> FixedWindowRateLimiter:
        if self._strategy is None:  # created on the serving loop (the async Redis client binds to it)
            self._strategy = FixedWindowRateLimiter(storage_from_string(self._uri, **self._options))
        return self._strategy

    async def hit(self, category: str, key: str) -> int | None:
        """None when allowed, else the seconds until the window resets."""
        item = self.items.get(category)
        if item is None:
            return None
        limiter = self._limiter()
        if await limiter.hit(item, KEY_PREFIX, category, key):
            return None
        stats = await limiter.get_window_stats(item, KEY_PREFIX, category, key)
        return max(1, math.ceil(stats.reset_time - time.time()))


class RateLimits:
    """Answers 429 + Retry-After past a limit, and records the first rejection per key and
    window (``request.rate_limited``) straight to the event log."""

    def __init__(self, app: ASGIApp, limiter: RequestLimiter, log: EventLog) -> None:
        self.app = app
        self.limiter = limiter
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        category = limited_endpoint(method, path)
        if category is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        origin = request_origin(request)
        secret = _presented_secret(request)
        key = f"token:{fingerprint(secret)}" if secret else f"ip:{origin.client_ip}"
        retry_after = await self.limiter.hit(category, key)
        if retry_after is None:
            await self.app(scope, receive, send)
            return
        log = self.log
        if log.enabled and log.first_flag("rate_limited", key, retry_after):
            log.submit([_rejection_event(
                origin, method, path, message=f"rate limit ({category}) exceeded by {key.split(':')[0]}; "
                f"further rejections in this window are not logged",
            )])
        response = error_response(
            429, "too_many_requests", f"rate limit exceeded; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)


def _presented_secret(request: Request) -> str | None:
    """The secret the caller presents (header, then session cookie), whether valid or not."""
    try:
        return bearer_secret(request)[0]
    except AppError:  # a malformed Authorization header: limited by IP, refused later
        return None


def _rejection_event(origin: Origin, method: str, path: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "request.rate_limited", "outcome": "denied", "created_at": utcnow(), "source": origin.source,
        "client_ip": origin.client_ip, "user_agent": origin.user_agent, "method": method, "path": path[:300],
        "status_code": 429, "duration_ms": 0.0, **fields,
    }
