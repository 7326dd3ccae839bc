"""The event log: recording (``emit``), the background writer, detection rules, queries.

How an event travels:
- inside an HTTP request, ``emit`` appends to the request's context (a context variable set by
  ``RequestEvents``); when the response starts, the middleware stamps status and duration and
  hands the batch to the ``EventLog`` writer thread, which inserts in batches in a transaction
  of its own — so a failed login is kept although the request's unit of work rolls back, and
  requests never wait for an insert;
- outside a request (worker processes, the scheduler), ``emit(..., session=s)`` adds the row to
  that session, so a job's end and its event commit together.

Sync predictions (``POST /models/{key}/predict``) are the hot path: they never write one event
per call; the middleware counts them and the writer emits one ``predict.sync`` summary per
token, model and client per minute.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from mlservice.auth.service import Principal
from mlservice.db import Database, utcnow
from mlservice.db.pagination import paginate
from mlservice.errors import NotFound
from mlservice.events.models import Event
from mlservice.events.security import BurstCounter, LoginGuard, RequestLimiter, fingerprint
from mlservice.events.summary import summarize
from mlservice.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 500
AGGREGATE_WINDOW_S = 60.0
SEEN_CACHE_MAX = 20_000

EVENT_COLUMNS = frozenset(column.name for column in Event.__table__.columns)
Listener = Callable[[dict[str, Any]], None]


@dataclass
class RequestContext:
    """What the middleware knows about the current request; events emitted during it inherit it."""

    log: EventLog
    scope: dict[str, Any]
    source: str
    client_ip: str | None
    user_agent: str | None
    method: str
    path: str
    started: float
    events: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def principal(self) -> Principal | None:
        return self.scope.get("state", {}).get("principal")


_current: ContextVar[RequestContext | None] = ContextVar("mlservice_request_events", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


def _set_current(context: RequestContext | None) -> Any:
    return _current.set(context)


def _reset_current(token: Any) -> None:
    _current.reset(token)


def principal_fields(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {}
    return {
        "user_id": principal.user_id,
        "username": principal.username,
        "auth_kind": principal.auth_kind,
        "token_id": principal.token_id,
    }


def emit(
    event_type: str,
    *,
    session: Session | None = None,
    outcome: str = "ok",
    principal: Principal | None = None,
    job: Any = None,
    input: Any = None,  # noqa: A002 - the name the API shows
    output: Any = None,
    reasons: list[str] | None = None,
    message: str | None = None,
    **fields: Any,
) -> None:
    """Record one event. Never raises: losing an event must not fail the operation."""
    try:
        event: dict[str, Any] = {"type": event_type, "outcome": outcome, "created_at": utcnow()}
        if job is not None:
            event.update(
                job_id=job.id, model_key=job.model_key, model_version=job.model_version,
                user_id=job.user_id, source=job.source, client_ip=job.client_ip, user_agent=job.user_agent,
            )
        event.update(principal_fields(principal))
        event.update({k: v for k, v in fields.items() if v is not None})
        if input is not None:
            event["input_summary"] = summarize(input)
        if output is not None:
            event["output_summary"] = summarize(output)
        if message:
            event["message"] = message[:2000]
        if reasons:
            event["suspicious"] = True
            event["reasons"] = list(reasons)
        context = _current.get()
        if context is not None:
            context.events.append(event)
        elif session is not None:
            event.setdefault("source", "system")
            session.add(Event(**{k: v for k, v in event.items() if k in EVENT_COLUMNS}))
        else:
            log.debug("event %s dropped: no request and no session", event_type)
    except Exception:  # noqa: BLE001
        log.exception("could not record event %s", event_type)


def token_rejected(secret: str, reason: str) -> None:
    """A request presented an unknown, expired or revoked bearer secret (flagged)."""
    from mlservice.auth.tokens import hash_secret

    context = _current.get()
    if context is not None and not context.log.first_flag("token_rejected", (context.client_ip, fingerprint(secret))):
        return  # the same bad token from the same IP: flagged once a minute, not per request
    emit(
        "auth.token_rejected", outcome="denied", reasons=[f"request with an invalid token: {reason}"],
        input={"token_fingerprint": fingerprint(secret)}, message=reason, _token_hash=hash_secret(secret),
    )


# Login ----------------------------------------------------------------------------------------


class LoginAttempt:
    """Wraps the login endpoint: lockout check before, the outcome recorded after."""

    def __init__(self, guard: LoginGuard, username: str) -> None:
        context = _current.get()
        self.guard = guard
        self.username = username
        self.ip = context.client_ip if context else None
        self._check_or_record_blocked()

    def _check_or_record_blocked(self) -> None:
        from mlservice.errors import TooManyRequests

        try:
            self.guard.check(self.username, self.ip)
        except TooManyRequests as exc:
            emit("login.blocked", outcome="denied", username=self.username[:64],
                 input={"username": self.username}, message=exc.message,
                 reasons=["login attempt during a lockout"])
            raise

    def __enter__(self) -> LoginAttempt:
        return self

    def __exit__(self, exc_type: Any, exc: Any, _tb: Any) -> None:
        from mlservice.errors import AppError

        if exc is None or not isinstance(exc, AppError):
            return
        if exc.code == "invalid_credentials":
            failure = self.guard.failed(self.username, self.ip)
            emit("login.failed", outcome="failed", username=self.username[:64],
                 input={"username": self.username}, message="wrong username or password",
                 reasons=failure.reasons)
            for label in failure.locked:
                emit("login.locked", outcome="denied", username=self.username[:64],
                     input={"username": self.username}, message=f"{label} locked for "
                     f"{self.guard.settings.login_lockout_s} s after repeated failed logins",
                     reasons=[f"{label} locked out after repeated failed logins"])
        else:
            emit("login.failed", outcome="failed", username=self.username[:64],
                 input={"username": self.username}, message=exc.message)

    def succeeded(self, user: Any, token: Any) -> None:
        self.guard.succeeded(self.username)
        emit("login.ok", user_id=user.id, username=user.username, auth_kind="session",
             token_id=token.id, input={"username": self.username},
             output={"session_token_id": token.id, "expires_at": token.expires_at})


# The writer -----------------------------------------------------------------------------------


class _Window:
    """Timestamps per key within a sliding window (for the repeated-403 rule)."""

    def __init__(self) -> None:
        self._hits: dict[Any, deque[float]] = {}

    def add(self, key: Any, now: float, window: float) -> int:
        hits = self._hits.setdefault(key, deque())
        hits.append(now)
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(self._hits) > 10_000:
            self._hits = {key: hits}
        return len(hits)


class EventLog:
    """One per app: the background writer, the detection state, the protection counters."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.enabled = settings.events_enabled
        self.login_guard = LoginGuard(settings)
        self.limiter = RequestLimiter(settings)
        self.bursts = BurstCounter(settings.burst_max_requests, settings.burst_window_s)
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._seen: set[tuple[Any, ...]] = set()
        self._flagged_recently: dict[tuple[str, Any], float] = {}
        self._forbidden = _Window()
        self._predict_lock = threading.Lock()
        self._predict: dict[tuple[Any, ...], list[Any]] = {}
        self._predict_since = time.monotonic()

    # For other domains (the WebSocket hub): called from the writer thread after each commit
    # with every written event as a dict (see ``event_dict``); hand off to your loop with
    # ``loop.call_soon_threadsafe``. Filter on ``event["suspicious"]`` for security events.
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # Producers (any thread) ---------------------------------------------------------------

    def submit(self, events: list[dict[str, Any]]) -> None:
        if events:
            self._ensure_thread()
            self._queue.put(("events", events))

    def check_client(self, principal: Principal, ip: str | None, user_agent: str | None,
                     context: Callable[[], dict[str, Any]]) -> None:
        """New IP / User-Agent rule: cheap in-memory check here, the database check in the writer."""
        key = (principal.user_id, principal.token_id, ip, user_agent)
        if key in self._seen:
            return
        if len(self._seen) > SEEN_CACHE_MAX:
            self._seen.clear()
        self._seen.add(key)
        self._ensure_thread()
        self._queue.put(("seen", context()))

    def first_flag(self, rule: str, subject: Any, window: float = 60.0) -> bool:
        """True the first time a rule fires for a subject within ``window`` (no event floods)."""
        now = time.monotonic()
        key = (rule, subject)
        last = self._flagged_recently.get(key)
        if last is not None and now - last < window:
            return False
        if len(self._flagged_recently) > 10_000:
            self._flagged_recently.clear()
        self._flagged_recently[key] = now
        return True

    def count_sync_predict(self, key: tuple[Any, ...], status: int, duration_ms: float) -> None:
        with self._predict_lock:
            entry = self._predict.get(key)
            if entry is None:
                entry = self._predict[key] = [0, 0, 0.0, 0.0, {}, utcnow()]
            entry[0] += 1
            if status >= 400:
                entry[1] += 1
                entry[4][status] = entry[4].get(status, 0) + 1
            entry[2] += duration_ms
            entry[3] = max(entry[3], duration_ms)

    def flush(self, timeout: float = 10.0, *, aggregates: bool = False) -> bool:
        """Wait until everything submitted so far is written (read-your-writes for GET /events)."""
        if self._thread is None and self._queue.empty() and not (aggregates and self._predict):
            return True
        done = threading.Event()
        self._ensure_thread()
        self._queue.put(("flush", (done, aggregates)))
        return done.wait(timeout)

    def close(self) -> None:
        with self._thread_lock:
            thread = self._thread
            if thread is None:
                return
            self._queue.put(("stop", None))
        thread.join(timeout=10)
        with self._thread_lock:
            self._thread = None

    # The writer thread ----------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                item = None
            batch = [item] if item is not None else []
            while len(batch) < BATCH_SIZE:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            waiters = [payload for kind, payload in batch if kind == "flush"]
            stop = any(kind == "stop" for kind, _ in batch)
            aggregates_due = time.monotonic() - self._predict_since >= AGGREGATE_WINDOW_S
            force = stop or any(aggregate for _, aggregate in waiters)
            work = [entry for entry in batch if entry[0] in ("events", "seen")]
            if aggregates_due or force:
                summaries = self._take_predict_summaries()
                if summaries:
                    work.append(("events", summaries))
            if work:
                try:
                    self._write(work)
                except Exception:  # noqa: BLE001 - the writer must survive a bad batch
                    log.exception("could not write %d event batch(es)", len(work))
            for done, _aggregate in waiters:
                done.set()

    def _take_predict_summaries(self) -> list[dict[str, Any]]:
        with self._predict_lock:
            counts, self._predict = self._predict, {}
            self._predict_since = time.monotonic()
        now = utcnow()
        events = []
        for (user_id, username, auth_kind, token_id, model_key, ip, ua, source), entry in counts.items():
            calls, errors, total_ms, max_ms, statuses, since = entry
            events.append({
                "type": "predict.sync", "outcome": "ok" if errors < calls else "failed",
                "created_at": now, "user_id": user_id, "username": username, "auth_kind": auth_kind,
                "token_id": token_id, "model_key": model_key, "client_ip": ip, "user_agent": ua,
                "source": source, "method": "POST", "path": f"/models/{model_key}/predict",
                "duration_ms": round(total_ms / calls, 3),
                "message": f"{calls} sync prediction call(s) since {since.isoformat()}",
                "input_summary": {"calls": calls, "since": since.isoformat(), "until": now.isoformat()},
                "output_summary": {"errors": errors, "status_codes": {str(k): v for k, v in statuses.items()},
                                   "mean_ms": round(total_ms / calls, 3), "max_ms": round(max_ms, 3)},
            })
        return events

    def _write(self, work: list[tuple[str, Any]]) -> None:
        from mlservice.alerts.service import raise_alert

        written: list[Event] = []
        with self.database.session(write=True) as session:
            for kind, payload in work:
                if kind == "events":
                    for event in payload:
                        if event["type"] == "login.ok":  # a login from a new IP is flagged itself
                            session.flush()
                            reasons, _ = self._client_reasons(session, event)
                            event["reasons"] = list(event.get("reasons") or []) + reasons
                        row = self._row(session, event)
                        session.add(row)
                        written.append(row)
                elif kind == "seen":
                    session.flush()
                    row = self._client_check(session, payload)
                    if row is not None:
                        session.add(row)
                        written.append(row)
            session.flush()
            for row in written:
                if row.suspicious:
                    raise_alert(
                        session, kind="security", severity="warning",
                        dedup_key=f"security:{row.type}:{row.username or row.user_id or row.client_ip}",
                        message=f"{row.type} from {row.client_ip or 'unknown IP'}: {'; '.join(row.reasons)}",
                        link={"type": "event", "id": row.id}, admin_only=True,
                        details={"event_id": row.id, "client_ip": row.client_ip, "user_id": row.user_id},
                    )
        if self._listeners:
            for row in written:
                payload = event_dict(row, detail=True)
                for listener in list(self._listeners):
                    try:
                        listener(payload)
                    except Exception:  # noqa: BLE001
                        log.exception("event listener failed")

    def _row(self, session: Session, event: dict[str, Any]) -> Event:
        reasons = list(event.get("reasons") or [])
        token_hash = event.get("_token_hash")
        if token_hash and event.get("user_id") is None:
            from mlservice.auth.models import AuthToken, User

            found = session.execute(
                select(AuthToken.id, AuthToken.kind, User.id, User.username)
                .join(User, AuthToken.user_id == User.id)
                .where(AuthToken.token_hash == token_hash)
            ).first()
            if found is not None:
                event.update(token_id=found[0], auth_kind=found[1], user_id=found[2], username=found[3])
        if event["type"] == "access.forbidden":
            settings = self.settings
            now = time.monotonic()
            for label, subject in (("user", event.get("user_id")), ("IP", event.get("client_ip"))):
                if subject is None:
                    continue
                count = self._forbidden.add((label, subject), now, settings.suspicious_window_s)
                if count >= settings.suspicious_forbidden_count:
                    reasons.append(f"{count} forbidden (403) calls from {label} {subject} "
                                   f"within {settings.suspicious_window_s} s")
        event["reasons"] = reasons
        event["suspicious"] = bool(reasons)
        return Event(**{k: v for k, v in event.items() if k in EVENT_COLUMNS})

    def _client_check(self, session: Session, context: dict[str, Any]) -> Event | None:
        """Has this user (token) been seen from this IP and User-Agent before?"""
        reasons, first_seen = self._client_reasons(session, context)
        if not reasons and not first_seen:
            return None
        event = dict(context, type="client.new" if reasons else "client.first_seen",
                     created_at=utcnow(), outcome="ok", reasons=reasons,
                     message="; ".join(reasons) or "first request seen from this client")
        event["suspicious"] = bool(reasons)
        return Event(**{k: v for k, v in event.items() if k in EVENT_COLUMNS})

    @staticmethod
    def _client_reasons(session: Session, context: dict[str, Any]) -> tuple[list[str], bool]:
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


# Reading --------------------------------------------------------------------------------------

LIST_FIELDS = (
    "id", "created_at", "type", "outcome", "source", "user_id", "username", "auth_kind", "token_id",
    "client_ip", "user_agent", "method", "path", "status_code", "duration_ms", "job_id", "model_key",
    "model_version", "message", "suspicious", "reasons",
)


def event_dict(event: Event, *, detail: bool = False) -> dict[str, Any]:
    data = {name: getattr(event, name) for name in LIST_FIELDS}
    data["reasons"] = list(data["reasons"] or [])
    if detail:
        data["input"] = event.input_summary
        data["output"] = event.output_summary
    return data


@dataclass
class EventFilters:
    type: str | None = None
    source: str | None = None
    user_id: int | None = None
    username: str | None = None
    client_ip: str | None = None
    model_key: str | None = None
    job_id: str | None = None
    suspicious: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_events(
    session: Session, principal: Principal, filters: EventFilters, *, limit: int, offset: int
) -> tuple[list[Event], int]:
    """Admins see every event; everyone else only their own."""
    query = select(Event)
    if not principal.is_admin:
        query = query.where(Event.user_id == principal.user_id)
    elif filters.user_id is not None:
        query = query.where(Event.user_id == filters.user_id)
    if filters.type:
        # "login" matches login.ok, login.failed, …; "login.failed" matches itself.
        query = query.where(or_(Event.type == filters.type, Event.type.like(f"{filters.type}.%")))
    if filters.source:
        query = query.where(Event.source == filters.source)
    if filters.username:
        query = query.where(Event.username == filters.username)
    if filters.client_ip:
        query = query.where(Event.client_ip == filters.client_ip)
    if filters.model_key:
        query = query.where(Event.model_key == filters.model_key)
    if filters.job_id:
        query = query.where(Event.job_id == filters.job_id)
    if filters.suspicious is not None:
        query = query.where(Event.suspicious.is_(filters.suspicious))
    if filters.since:
        query = query.where(Event.created_at >= filters.since)
    if filters.until:
        query = query.where(Event.created_at < filters.until)
    return paginate(session, query, Event.created_at.desc(), Event.id.desc(), limit=limit, offset=offset)


def get_event(session: Session, principal: Principal, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None or (not principal.is_admin and event.user_id != principal.user_id):
        raise NotFound(f"event {event_id} does not exist")
    return event


def delete_older_than(session: Session, days: int) -> int:
    result = session.execute(delete(Event).where(Event.created_at < utcnow() - timedelta(days=days)))
    return result.rowcount or 0


def apply_retention(database: Database, settings: Settings) -> int:
    """The daily clean-up job (``ML_EVENT_RETENTION_DAYS``)."""
    with database.session(write=True) as session:
        removed = delete_older_than(session, settings.event_retention_days)
    if removed:
        log.info("event retention removed %d event(s)", removed)
    return removed
