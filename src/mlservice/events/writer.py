"""``EventLog``: one per app. The background thread that writes events in batches, the
listeners told of every written row, and the per-minute summary of sync predictions.

Sync predictions (``POST /models/{key}/predict``) are the hot path: they never write one event
per call; the middleware counts them and the writer emits one ``predict.sync`` summary per
token, model and client per minute.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from mlservice.db import Database, utcnow
from mlservice.events.models import Event
from mlservice.events.queries import event_dict
from mlservice.events.recording import event_row
from mlservice.events.rules import (
    BurstCounter,
    CredentialStuffing,
    NetworkSwitch,
    RepeatedForbidden,
    client_event,
    client_findings,
)
from mlservice.events.store import detection_store
from mlservice.principal import Principal
from mlservice.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 500
AGGREGATE_WINDOW_S = 60.0
SEEN_CACHE_MAX = 20_000

Listener = Callable[[dict[str, Any]], None]
# (user_id, username, auth_kind, token_id, model_key, client_ip, user_agent, source)
SyncPredictKey = tuple[Any, ...]


@dataclass
class SyncPredictCount:
    """The sync prediction calls of one token, model and client since ``since``."""

    since: datetime = field(default_factory=utcnow)
    calls: int = 0
    errors: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)  # error status code -> calls

    def add(self, status: int, duration_ms: float) -> None:
        self.calls += 1
        if status >= 400:
            self.errors += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1
        self.total_ms += duration_ms
        self.max_ms = max(self.max_ms, duration_ms)

    def summary(self, key: SyncPredictKey, now: datetime) -> dict[str, Any]:
        """The ``predict.sync`` event."""
        user_id, username, auth_kind, token_id, model_key, ip, ua, source = key
        mean_ms = round(self.total_ms / self.calls, 3)
        return {
            "type": "predict.sync", "outcome": "ok" if self.errors < self.calls else "failed",
            "created_at": now, "user_id": user_id, "username": username, "auth_kind": auth_kind,
            "token_id": token_id, "model_key": model_key, "client_ip": ip, "user_agent": ua,
            "source": source, "method": "POST", "path": f"/models/{model_key}/predict",
            "duration_ms": mean_ms,
            "message": f"{self.calls} sync prediction call(s) since {self.since.isoformat()}",
            "input_summary": {"calls": self.calls, "since": self.since.isoformat(), "until": now.isoformat()},
            "output_summary": {"errors": self.errors, "status_codes": {str(k): v for k, v in self.statuses.items()},
                               "mean_ms": mean_ms, "max_ms": round(self.max_ms, 3)},
        }


class EventLog:
    """One per app: the background writer and the detection state."""

    def __init__(self, settings: Settings, database: Database, shared_dir: Path | None = None) -> None:
        self.settings = settings
        self.database = database
        self.enabled = settings.events_enabled
        # The detection rules' windows run on this clock (seconds); wall time, which every
        # process and machine sharing the store agrees on. A replay test sets its own.
        self.clock: Callable[[], float] = time.time
        self.store = detection_store(settings.rate_limit_storage, shared_dir)
        self.bursts = BurstCounter(settings.burst_max_requests, settings.burst_window_s, self.store)
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._seen: set[tuple[Any, ...]] = set()
        self._forbidden = RepeatedForbidden(settings, self.store)
        self._stuffing = CredentialStuffing(settings, self.store)
        self.networks = NetworkSwitch(settings, self.store)
        self._predict_lock = threading.Lock()
        self._predict: dict[SyncPredictKey, SyncPredictCount] = {}
        self._predict_since = time.monotonic()

    # How other domains react to events (wired in app.py: live updates, security alerts,
    # metrics): called from the writer thread after each commit with every written event as a
    # dict (see ``event_dict``); hand off to your loop with ``loop.call_soon_threadsafe``.
    # Filter on ``event["suspicious"]`` for security events.
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
                     context: Callable[[], dict[str, Any]], network_switch: str | None = None) -> None:
        """New IP / client rule: cheap in-memory check here, the database check in the writer.
        ``network_switch`` (``NetworkSwitch``'s reason) joins the new-client check when there is
        one, so a stolen token used from afar with a new client is one event, one alert."""
        key = (principal.user_id, principal.token_id, ip, user_agent)
        if key in self._seen:
            if network_switch and self.first_flag("network", principal.token_id, self.networks.window_s):
                self.submit([dict(context(), type="client.network_switch", created_at=utcnow(), outcome="ok",
                                  reasons=[network_switch], message=network_switch)])
            return
        if len(self._seen) > SEEN_CACHE_MAX:
            self._seen.clear()
        self._seen.add(key)
        payload = context()
        if network_switch:
            self.first_flag("network", principal.token_id, self.networks.window_s)
            payload["reasons"] = [network_switch]
        self._ensure_thread()
        self._queue.put(("seen", payload))

    def first_flag(self, rule: str, subject: Any, window: float = 60.0) -> bool:
        """True the first time a rule fires for a subject within ``window``, in any process
        sharing the store (no event floods: one event per attack)."""
        return self.store.first(f"flag:{rule}:{subject}", window, self.clock())

    def count_sync_predict(self, key: SyncPredictKey, status: int, duration_ms: float) -> None:
        with self._predict_lock:
            count = self._predict.get(key)
            if count is None:
                count = self._predict[key] = SyncPredictCount()
            count.add(status, duration_ms)

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
        return [count.summary(key, now) for key, count in counts.items()]

    def _write(self, work: list[tuple[str, Any]]) -> None:
        written: list[Event] = []
        with self.database.session(write=True) as session:
            for kind, payload in work:
                if kind == "events":
                    for event in payload:
                        if event["type"] == "login.ok":  # judged against the user's history
                            session.flush()
                            found = client_findings(session, event, by_user=True)
                            event["reasons"] = list(event.get("reasons") or []) + found.reasons
                            if found.notes:
                                event["message"] = "; ".join(found.notes)
                        written.append(self._row(session, event))
                        stuffing = self._stuffing_event(event)
                        if stuffing is not None:
                            written.append(self._row(session, stuffing))
                elif kind == "seen":
                    if not self._judged_here(payload):
                        continue
                    session.flush()
                    event = client_event(session, payload)
                    if event is not None:
                        written.append(self._row(session, event))
            session.flush()
            payloads = [event_dict(row, detail=True) for row in written] if self._listeners else []
        for payload in payloads:
            for listener in list(self._listeners):
                try:
                    listener(payload)
                except Exception:  # noqa: BLE001
                    log.exception("event listener failed")

    def _judged_here(self, payload: dict[str, Any]) -> bool:
        """Whether this process judges a client new for its token: two API processes meeting it
        in the same instant both found no history and wrote ``client.new`` (and raised an alert)
        twice. Within a minute the first one's event is in the database for the others."""
        client = (payload.get("user_id"), payload.get("token_id"), payload.get("client_ip"),
                  payload.get("user_agent"))
        return not self.store.shared or self.first_flag("client", client)

    def _stuffing_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """``login.stuffing`` (flagged) once per window and IP, apart from the failed logins
        themselves: one alert for the attack, not one per username tried."""
        reason = self._stuffing.reason(event, event.get("detected_at", self.clock()))
        if reason is None or not self.first_flag("stuffing", event["client_ip"], self._stuffing.window_s):
            return None
        fields = ("source", "client_ip", "user_agent", "method", "path", "status_code")
        return {**{name: event.get(name) for name in fields}, "type": "login.stuffing", "outcome": "failed",
                "created_at": utcnow(), "reasons": [reason], "message": reason}

    def _row(self, session: Session, event: dict[str, Any]) -> Event:
        reasons = list(event.get("reasons") or [])
        if event["type"] == "access.forbidden":
            reasons += self._forbidden.reasons(event, event.get("detected_at", self.clock()))
        event["reasons"] = reasons
        event["suspicious"] = bool(reasons)
        row = event_row(event)
        session.add(row)
        return row


async def get_event_log(request: Request) -> EventLog:
    return request.app.state.events


EventLogDep = Annotated[EventLog, Depends(get_event_log)]
