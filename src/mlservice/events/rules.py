"""Detection rules: what makes an event or a request suspicious.

A flagged event (one with reasons) raises a security alert, so a rule flags only what means
risk on its own or together: a scanner, a burst, repeated failed logins for one username,
failed logins across many usernames from one IP (credential stuffing), a lockout, repeated
403s, a token used from a new IP *and* a new client, or from two distant networks within
minutes. What is merely new (a new IP alone, a second browser, a browser update) is recorded
as an informational event.

Request-level rules run in the middleware (scanner User-Agents, a write without a User-Agent,
bursts from one IP, network switches); row-level rules run in the writer thread, which has a
session (repeated 403s, credential stuffing, a token or user seen from a new IP or client).
Windows are measured on ``EventLog.clock`` and kept in a ``events.store``, which the API
processes share when there are several."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlservice.db import utcnow
from mlservice.events.clients import client_kind, network
from mlservice.events.models import Event
from mlservice.events.store import DetectionStore, MemoryStore, bound
from mlservice.principal import Principal
from mlservice.settings import Settings

# How many distinct User-Agents of a token (user) are compared when a new one shows up.
HISTORY_AGENTS = 200

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
    """Requests per IP within ``window_s``, across the API processes; reports the request that
    takes an IP past ``ML_BURST_MAX_REQUESTS`` (once per window). The count over the last
    window is estimated from two aligned ones (this one, and the previous weighted by how much
    of it still falls in the last ``window_s``), so a burst astride their boundary counts whole.

    A dict update per request in memory (the sync predict hot path); with a shared store a
    process adds its hits in batches of 1 % of the limit, so the store sees one write per
    batch, and up to a batch per process fewer hits (under 1 % each)."""

    def __init__(self, max_requests: int, window_s: float, store: DetectionStore) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self.store = store
        self.batch = max(1, max_requests // 100) if store.shared else 1
        self._pending: dict[str | None, list[float]] = {}  # ip -> [hits not yet added, first at]

    def hit(self, ip: str | None, now: float) -> bool:
        amount = 1
        if self.batch > 1:
            pending = self._pending.get(ip)
            if pending is None or now - pending[1] >= self.window_s:
                bound(self._pending)
                pending = self._pending[ip] = [0, now]
            pending[0] += 1
            if pending[0] < self.batch:
                return False
            amount, pending[0] = int(pending[0]), 0
        current, previous = self.store.count(f"burst:{ip}", amount, self.window_s, now)
        weight = 1.0 - (now % self.window_s) / self.window_s
        if current + previous * weight < self.max_requests:
            return False
        return self.store.first(f"burst:{ip}", self.window_s, now)


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

    def __init__(self, settings: Settings, store: DetectionStore) -> None:
        self.count = settings.suspicious_forbidden_count
        self.window_s = settings.suspicious_window_s
        self.store = store

    def reasons(self, event: dict[str, Any], now: float) -> list[str]:
        reasons = []
        hit = secrets.token_hex(8)  # every 403 counts: a member of its own
        for label, subject in (("user", event.get("user_id")), ("IP", event.get("client_ip"))):
            if subject is None:
                continue
            count = self.store.add(f"forbidden:{label}:{subject}", hit, self.window_s, now)
            if count >= self.count:
                reasons.append(f"{count} forbidden (403) calls from {label} {subject} within {self.window_s} s")
        return reasons


class CredentialStuffing:
    """Failed logins for ``ML_SUSPICIOUS_LOGIN_USERNAMES`` distinct usernames from one IP within
    ``ML_LOGIN_FAILURE_WINDOW_S``: someone trying a list of credentials. (Many failures for one
    username are the brute-force rule's, in ``auth.lockout``.)"""

    def __init__(self, settings: Settings, store: DetectionStore) -> None:
        self.usernames = settings.suspicious_login_usernames
        self.window_s = settings.login_failure_window_s
        self.store = store

    def reason(self, event: dict[str, Any], now: float) -> str | None:
        ip, username = event.get("client_ip"), event.get("username")
        if event.get("type") != "login.failed" or ip is None or username is None:
            return None
        tried = self.store.add(f"stuffing:{ip}", str(username), self.window_s, now)
        if tried < self.usernames:
            return None
        return f"failed logins for {tried} usernames from IP {ip} within {self.window_s} s"


class NetworkSwitch:
    """A token used from two distant networks (another /16, or /48 for IPv6) within
    ``ML_SUSPICIOUS_NETWORK_SWITCH_S``: one token in two places at once. IPv4 and IPv6
    addresses are compared only with their own kind: a dual-stack client alternates between
    the two. Checked on every signed-in request: a dict lookup in memory; with a shared store a
    process writes a token's network when it changes or ``REFRESH_S`` after its last write,
    and compares with what any process wrote last, so a switch across processes shows within
    ``REFRESH_S``."""

    REFRESH_S = 30.0

    def __init__(self, settings: Settings, store: DetectionStore | None = None) -> None:
        self.window_s = settings.suspicious_network_switch_s
        self.store = store or MemoryStore()
        self._written: dict[str, tuple[str | None, float]] = {}  # shared store: key -> this process's last write

    def reason(self, principal: Principal, ip: str | None, now: float) -> str | None:
        here = network(ip)
        subject = f"token:{principal.token_id}" if principal.token_id is not None else f"user:{principal.user_id}"
        key = f"network:{subject}:{'v6' if here is not None and ':' in here else 'v4'}"
        if self.store.shared:
            written = self._written.get(key)
            if written is not None and written[0] == here and now - written[1] < self.REFRESH_S:
                return None
            bound(self._written)
            self._written[key] = (here, now)
        last = self.store.swap(key, f"{here} {ip}", self.window_s, now)
        if last is None or here is None:
            return None
        (last_network, _, last_ip), at = last[0].partition(" "), last[1]
        if last_network in (here, "None") or now - at > self.window_s:
            return None
        name = f"token #{principal.token_id}" if principal.token_id is not None else f"user {principal.username!r}"
        return (f"{name} used from {last_ip} and {ip} (distant networks) within "
                f"{max(0, round(now - at))} s")


@dataclass
class ClientFindings:
    """What is new about a request's client for its token (or user): ``reasons`` together mean
    risk (a security alert), ``notes`` alone are informational."""

    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_seen: bool = False


def client_findings(session: Session, context: dict[str, Any], *, by_user: bool = False) -> ClientFindings:
    """Compare a request's IP and client (User-Agent family and OS) with its token's history,
    or the user's (``by_user``: a login, whose session token is brand new).

    A new IP alone (home, office, a phone network) or a new client alone (a second browser, the
    CLI next to the dashboard) is a note; a new IP *and* a new client is a reason. The first
    use of a token has nothing to compare with: it is where the token lives from then on."""
    token_id = context.get("token_id")
    if by_user or token_id is None:
        column, subject, name = Event.user_id, context["user_id"], f"user {context.get('username')!r}"
    else:
        column, subject, name = Event.token_id, token_id, f"token #{token_id}"
    ip, user_agent = context.get("client_ip"), context.get("user_agent")
    history = select(Event.id).where(column == subject, Event.client_ip.is_not(None))
    if session.scalar(history.limit(1)) is None:
        return ClientFindings(first_seen=True)

    def known(*conditions: Any) -> bool:
        return session.scalar(history.where(*conditions).limit(1)) is not None

    ip_known = known(Event.client_ip == ip) if ip is not None else True
    kind = client_kind(user_agent)
    client_known = known(Event.user_agent == user_agent) if user_agent else known(Event.user_agent.is_(None))
    if not client_known:
        agents = session.scalars(
            select(Event.user_agent).where(column == subject, Event.client_ip.is_not(None))
            .distinct().limit(HISTORY_AGENTS)
        )
        client_known = any(client_kind(agent) == kind for agent in agents)
    findings = ClientFindings()
    if not ip_known and not client_known:
        findings.reasons.append(f"{name} used from a new IP {ip} with a new client ({kind})")
    elif not ip_known:
        findings.notes.append(f"{name} used from a new IP {ip}")
    elif not client_known:
        findings.notes.append(f"{name} used with a new client ({kind})")
    return findings


def client_event(session: Session, context: dict[str, Any]) -> dict[str, Any] | None:
    """The event for a request's new client, or None when its token is known from there:
    ``client.new`` (flagged when the IP and the client are both new, informational otherwise),
    ``client.network_switch`` (flagged: see ``NetworkSwitch``), or ``client.first_seen``."""
    found = client_findings(session, context)
    reasons = found.reasons + list(context.get("reasons") or [])
    if found.reasons or found.notes:
        kind = "client.new"
    elif reasons:
        kind = "client.network_switch"
    elif found.first_seen:
        kind = "client.first_seen"
    else:
        return None
    message = "; ".join(reasons + found.notes) or "first request seen from this client"
    return dict(context, type=kind, created_at=utcnow(), outcome="ok", reasons=reasons, message=message)
