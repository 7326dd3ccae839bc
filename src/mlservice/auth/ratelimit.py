"""Request rate limits on the expensive endpoints, per token (or per IP without one), as a pure
ASGI middleware in front of everything else. Counters live in a ``limits`` storage: in memory by
default, Redis when ``ML_RATE_LIMIT_STORAGE=redis://…`` so every replica shares them (the login
lockout in ``auth.lockout`` uses the same storage). With several API processes on one machine
and no Redis (``serve --workers N``), the in-memory default becomes ``auth.counters``, a file
the processes share."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mlservice.auth.counters import SharedCounters
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


def shared_counters(setting: str, shared_dir: Path | None) -> SharedCounters | None:
    """The counters file when several processes serve without Redis, else None (use ``limits``)."""
    if shared_dir is None or storage_uri(setting, asynchronous=False) != "memory://":
        return None
    return SharedCounters(shared_dir)


SWEEP_EVERY_S = 600.0
LEASE_SHARE = 100
MAX_LEASES = 10_000


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

    def __init__(self, settings: Settings, shared_dir: Path | None = None) -> None:
        self.items = {
            "expensive": parse_limit(settings.rate_limit_expensive),
            "sync_predict": parse_limit(settings.rate_limit_sync_predict),
        }
        self.enabled = any(self.items.values())
        self._strategy: FixedWindowRateLimiter | None = None
        self._uri = storage_uri(settings.rate_limit_storage, asynchronous=True)
        self._options = {"implementation": "redispy"} if "redis" in self._uri else {}
        self._shared = shared_counters(settings.rate_limit_storage, shared_dir)
        self._leases: dict[str, tuple[float, int]] = {}  # counter -> (window end, requests left)
        self._swept = time.time()

    def _limiter(self) -> FixedWindowRateLimiter:
        if self._strategy is None:  # created on the serving loop (the async Redis client binds to it)
            self._strategy = FixedWindowRateLimiter(storage_from_string(self._uri, **self._options))
        return self._strategy

    async def hit(self, category: str, key: str) -> int | None:
        """None when allowed, else the seconds until the window resets."""
        item = self.items.get(category)
        if item is None:
            return None
        if self._shared is not None:
            return self._hit_shared(item, category, key)
        limiter = self._limiter()
        if await limiter.hit(item, KEY_PREFIX, category, key):
            return None
        stats = await limiter.get_window_stats(item, KEY_PREFIX, category, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _hit_shared(self, item: RateLimitItem, category: str, key: str) -> int | None:
        """The same fixed window as ``limits``' strategy, with the quota handed out in leases: a
        process claims a share of the limit (1/``LEASE_SHARE`` of it, at least one request) from
        the shared counter and spends it locally, so a high limit such as the sync-predict one
        costs one SQLite write per few hundred requests instead of one each (~90 us). No more
        than the limit is ever admitted; a lease left unspent when its window ends is lost, so
        with N processes up to N leases fewer may be admitted (exact for low limits: a lease
        of one)."""
        shared = self._shared
        assert shared is not None
        counter = item.key_for(KEY_PREFIX, category, key)
        now = time.time()
        ends, left = self._leases.get(counter, (0.0, 0))
        if ends > now and left > 0:
            self._leases[counter] = (ends, left - 1)
            return None
        if len(self._leases) > MAX_LEASES or now - self._swept > SWEEP_EVERY_S:
            self._swept = now
            self._leases = {k: lease for k, lease in self._leases.items() if lease[0] > now}
            shared.sweep()
        share = max(1, item.amount // LEASE_SHARE)
        claimed = shared.incr(counter, item.get_expiry(), amount=share)
        granted = min(share, item.amount - (claimed - share))
        ends = shared.get_expiry(counter)
        if granted <= 0:
            return max(1, math.ceil(ends - now))
        self._leases[counter] = (ends, granted - 1)
        return None


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
        secret = _presented_secret(request)
        # The origin only when it is needed (no token, or a rejection): this runs on every
        # sync prediction, and the events middleware works it out again anyway.
        key = f"token:{fingerprint(secret)}" if secret else f"ip:{request_origin(request).client_ip}"
        retry_after = await self.limiter.hit(category, key)
        if retry_after is None:
            await self.app(scope, receive, send)
            return
        origin = request_origin(request)
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
