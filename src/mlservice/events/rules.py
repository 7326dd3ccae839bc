"""Detection rules: what makes an event or a request suspicious.

Request-level rules run in the middleware (scanner User-Agents, a write without a User-Agent,
bursts from one IP); row-level rules run in the writer thread, which has a session (repeated
403s, a user or token seen from a new IP or User-Agent). Each returns the reasons it found: a
row with reasons is stored with ``suspicious`` set."""

from __future__ import annotations

from collections import deque
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlservice.db import utcnow
from mlservice.events.models import Event
from mlservice.settings import Settings

# Substrings (lower case) of User-Agents sent by well-known vulnerability scanners and brute forcers.
SCANNER_AGENTS = (
    "sqlmap", "nikto", "nmap", "masscan", "zgrab", "nuclei", "dirbuster", "gobuster", "feroxbuster",
    "wpscan", "acunetix", "nessus", "openvas", "w3af", "hydra", "fimap", "arachni", "skipfish",
    "whatweb", "zmeu", "jorgee", "netsparker", "burpcollaborator", "commix", "wfuzz", "ffuf",
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def scanner_reason(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    lowered = user_agent.lower()
    for marker in SCANNER_AGENTS:
        if marker in lowered:
            return f"known scanner User-Agent ({marker})"
    return None


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


def request_reasons(method: str, ip: str | None, user_agent: str | None, bursts: BurstCounter,
                    now: float) -> list[str]:
    reasons: list[str] = []
    scanner = scanner_reason(user_agent)
    if scanner:
        reasons.append(scanner)
    if not user_agent and method in WRITE_METHODS:
        reasons.append("write request without a User-Agent")
    if bursts.hit(ip, now):
        reasons.append(f"burst: {bursts.max_requests} requests from {ip} within {bursts.window_s} s")
    return reasons


class RepeatedForbidden:
    """``ML_SUSPICIOUS_FORBIDDEN_COUNT`` 403s from one user or IP within a sliding window."""

    def __init__(self, settings: Settings) -> None:
        self.count = settings.suspicious_forbidden_count
        self.window_s = settings.suspicious_window_s
        self._hits: dict[Any, deque[float]] = {}

    def _add(self, key: Any, now: float) -> int:
        hits = self._hits.setdefault(key, deque())
        hits.append(now)
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(self._hits) > 10_000:
            self._hits = {key: hits}
        return len(hits)

    def reasons(self, event: dict[str, Any], now: float) -> list[str]:
        reasons = []
        for label, subject in (("user", event.get("user_id")), ("IP", event.get("client_ip"))):
            if subject is None:
                continue
            count = self._add((label, subject), now)
            if count >= self.count:
                reasons.append(f"{count} forbidden (403) calls from {label} {subject} within {self.window_s} s")
        return reasons


def client_reasons(session: Session, context: dict[str, Any]) -> tuple[list[str], bool]:
    """Has this user (token) been seen from this IP and User-Agent before? The reasons, and
    whether this is the first request ever seen from the user (or token)."""
    user_id, token_id = context["user_id"], context.get("token_id")
    ip, ua = context.get("client_ip"), context.get("user_agent")

    def seen(column: Any, subject: Any, **match: Any) -> tuple[bool, bool]:
        base = select(Event.id).where(column == subject)
        any_history = session.scalar(base.where(Event.client_ip.is_not(None)).limit(1)) is not None
        if not any_history:
            return False, False
        conditions = [getattr(Event, name) == value if value is not None else getattr(Event, name).is_(None)
                      for name, value in match.items()]
        return True, session.scalar(base.where(*conditions).limit(1)) is not None

    reasons = []
    subjects = [("token", Event.token_id, token_id)] if token_id is not None else []
    subjects.append(("user", Event.user_id, user_id))
    first_seen = False
    for label, column, subject in subjects:
        name = f"token #{subject}" if label == "token" else f"user {context.get('username')!r}"
        history, ip_known = seen(column, subject, client_ip=ip)
        if not history:
            first_seen = True
            continue
        if not ip_known:
            reasons.append(f"{name} used from a new IP {ip}")
        _, ua_known = seen(column, subject, user_agent=ua)
        if not ua_known:
            reasons.append(f"{name} used with a new User-Agent")
    return reasons, first_seen


def client_event(session: Session, context: dict[str, Any]) -> dict[str, Any] | None:
    """``client.new`` (flagged) or ``client.first_seen`` for a request's client, or None when
    the user (token) is already known from there."""
    reasons, first_seen = client_reasons(session, context)
    if not reasons and not first_seen:
        return None
    return dict(context, type="client.new" if reasons else "client.first_seen", created_at=utcnow(),
                outcome="ok", reasons=reasons, message="; ".join(reasons) or "first request seen from this client")
