"""Protection: login lockout per username and per IP, request rate limits on expensive
endpoints, and the request-level rules (scanner User-Agents, empty User-Agent on writes,
bursts). Counters live in a ``limits`` storage: in memory by default, Redis when
``ML_RATE_LIMIT_STORAGE=redis://…`` so every replica shares them."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from mlservice.errors import TooManyRequests
from mlservice.settings import Settings

KEY_PREFIX = "mlservice"

# Substrings (lower case) of User-Agents sent by well-known vulnerability scanners and brute forcers.
SCANNER_AGENTS = (
    "sqlmap", "nikto", "nmap", "masscan", "zgrab", "nuclei", "dirbuster", "gobuster", "feroxbuster",
    "wpscan", "acunetix", "nessus", "openvas", "w3af", "hydra", "fimap", "arachni", "skipfish",
    "whatweb", "zmeu", "jorgee", "netsparker", "burpcollaborator", "commix", "wfuzz", "ffuf",
)
WRITE_METHODS = frozenset({b"POST", b"PUT", b"PATCH", b"DELETE"})
EXPENSIVE_PATHS = frozenset({"/train", "/predict", "/quality", "/drift/check"})


def storage_uri(setting: str, *, asynchronous: bool) -> str:
    uri = "memory://" if setting.strip() in ("memory", "memory://", "") else setting.strip()
    return f"async+{uri}" if asynchronous else uri


def parse_limit(value: str) -> RateLimitItem | None:
    """``"60/minute"`` style (the ``limits`` notation), or ``off``."""
    text = value.strip().lower()
    return None if text in ("off", "none", "0", "") else parse(text)


def fingerprint(secret: str) -> str:
    """A short, one-way name for a bearer secret: enough to correlate, useless to replay."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


def scanner_reason(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    lowered = user_agent.lower()
    for marker in SCANNER_AGENTS:
        if marker in lowered:
            return f"known scanner User-Agent ({marker})"
    return None


def limited_endpoint(method: str, path: str) -> str | None:
    """Which rate limit applies to a request: 'expensive', 'sync_predict' or None."""
    if method != "POST":
        return None
    if path in EXPENSIVE_PATHS:
        return "expensive"
    if path.startswith("/models/") and path.endswith("/predict") and path.count("/") == 3:
        return "sync_predict"
    return None


# Login lockout ------------------------------------------------------------------------------


@dataclass
class LoginFailure:
    reasons: list[str]
    locked: list[str]  # what got locked by this failure: "username 'x'", "IP y"


class LoginGuard:
    """Counts failed logins per username and per IP in a window; at the limit the username
    (or IP) is locked for ``ML_LOGIN_LOCKOUT_S`` and further attempts get 429 + Retry-After."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = storage_from_string(storage_uri(settings.rate_limit_storage, asynchronous=False))

    @staticmethod
    def _subjects(username: str, ip: str | None) -> list[tuple[str, str, str]]:
        subjects = [("user", username[:64], f"username {username[:64]!r}")]
        if ip:
            subjects.append(("ip", ip, f"IP {ip}"))
        return subjects

    def check(self, username: str, ip: str | None) -> None:
        for kind, value, label in self._subjects(username, ip):
            key = f"{KEY_PREFIX}:login:lock:{kind}:{value}"
            if self.storage.get(key) > 0:
                retry = max(1, math.ceil(self.storage.get_expiry(key) - time.time()))
                raise TooManyRequests(
                    f"too many failed logins for this {label.split(' ')[0]}: try again in {retry} s",
                    code="login_locked",
                    headers={"Retry-After": str(retry)},
                )

    def failed(self, username: str, ip: str | None) -> LoginFailure:
        settings = self.settings
        window = settings.login_failure_window_s
        result = LoginFailure([], [])
        for kind, value, label in self._subjects(username, ip):
            key = f"{KEY_PREFIX}:login:fail:{kind}:{value}"
            count = self.storage.incr(key, window)
            limit = settings.login_max_failures if kind == "user" else settings.login_max_failures_per_ip
            if count >= settings.suspicious_login_failures:
                result.reasons.append(f"{count} failed logins for {label} within {window} s")
            if count >= limit:
                self.storage.incr(f"{KEY_PREFIX}:login:lock:{kind}:{value}", settings.login_lockout_s)
                self.storage.clear(key)
                result.locked.append(label)
        return result

    def succeeded(self, username: str) -> None:
        self.storage.clear(f"{KEY_PREFIX}:login:fail:user:{username[:64]}")


# Request rate limits --------------------------------------------------------------------------


class RequestLimiter:
    """Per-token (or per-IP without a token) limits on the expensive endpoints; async, so a
    Redis round trip never blocks the event loop."""

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


class BurstCounter:
    """Requests per IP in a fixed window, in this process; reports the request that crosses
    ``ML_BURST_MAX_REQUESTS`` (once per window). A dict update per request: cheap enough for
    the sync predict hot path."""

    def __init__(self, max_requests: int, window_s: float) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self._counts: dict[str | None, list[float]] = {}

    def hit(self, ip: str | None, now: float) -> bool:
        entry = self._counts.get(ip)
        if entry is None or now - entry[0] >= self.window_s:
            if len(self._counts) > 50_000:
                self._counts.clear()
            self._counts[ip] = [now, 1]
            return self.max_requests <= 1
        entry[1] += 1
        return entry[1] == self.max_requests
