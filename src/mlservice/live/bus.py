"""The one ``publish(message)`` port and its adapters.

Every process that changes something publishes through the publisher installed in it:

- ``LocalPublisher`` — in the API process (local mode): hands the message to the hub's event
  loop (``call_soon_threadsafe``), which fans it out to the sockets.
- ``SocketForwarder`` — in a worker process of the local pool: writes the message, length
  prefixed, to the hub's Unix socket (one connection per worker, so a killed worker corrupts
  nothing but its own half-written frame).
- ``RedisPublisher`` — distributed mode, in every process (API replicas, Celery workers):
  ``PUBLISH`` to one Redis channel that every API replica subscribes to.
- ``PeerFanout`` — several API processes on one machine without Redis (``serve --workers N``):
  what one process publishes, or receives from its own pool workers, is also written to every
  other API process's hub socket in the shared run directory.

Messages are published *after the commit* of the change they describe
(``publish_after_commit``): a client that reacts by calling the REST API sees the new state,
and a rolled-back change publishes nothing. Publishing never raises: live updates are best
effort, the database stays the truth (clients resync from it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import event
from sqlalchemy.orm import Session

from mlservice.live.messages import Message

log = logging.getLogger(__name__)

FRAME_HEADER = struct.Struct(">I")
MAX_FRAME = 4 * 1024 * 1024
_PENDING = "mlservice.live.pending"


class Publisher(Protocol):
    def publish(self, message: Message) -> None: ...

    def close(self) -> None: ...


_publisher: Publisher | None = None


def install(publisher: Publisher | None) -> Publisher | None:
    """Make ``publisher`` this process's publisher; returns the previous one."""
    global _publisher
    previous, _publisher = _publisher, publisher
    return previous


def uninstall(publisher: Publisher) -> None:
    global _publisher
    if _publisher is publisher:
        _publisher = None


def active() -> bool:
    return _publisher is not None


def publish(message: Message | None) -> None:
    publisher = _publisher
    if publisher is None or message is None:
        return
    try:
        publisher.publish(message)
    except Exception:  # noqa: BLE001 - a live update must never break the change it reports
        _warn("could not publish a live update")


def publish_after_commit(session: Session, message: Message | None) -> None:
    """Queue ``message`` on the session; it goes out when the session commits."""
    if message is not None and _publisher is not None:
        session.info.setdefault(_PENDING, []).append(message)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for message in session.info.pop(_PENDING, ()):
        publish(message)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


_last_warning = 0.0


def _warn(text: str) -> None:
    """At most one warning (with traceback) every 30 s: a dead Redis must not flood the log."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 30:
        _last_warning = now
        log.warning(text, exc_info=True)


# Adapters -------------------------------------------------------------------------------------


class LocalPublisher:
    """In the API process: straight into the hub, from whatever thread publishes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Message], None]) -> None:
        self.loop = loop
        self.deliver = deliver

    def publish(self, message: Message) -> None:
        try:
            self.loop.call_soon_threadsafe(self.deliver, message)
        except RuntimeError:  # the loop is closed: the server is stopping
            pass

    def close(self) -> None:
        pass


def encode_frame(message: Message) -> bytes:
    body = orjson.dumps(message, default=str)
    return FRAME_HEADER.pack(len(body)) + body


class SocketForwarder:
    """In a local worker process: forwards to the API process's hub over a Unix socket."""

    TIMEOUT_S = 2.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def publish(self, message: Message) -> None:
        self.send_frame(encode_frame(message))

    def send_frame(self, frame: bytes) -> None:
        with self._lock:
            for _attempt in range(2):  # one reconnect, e.g. after the hub restarted its listener
                try:
                    if self._sock is None:
                        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        sock.settimeout(self.TIMEOUT_S)
                        sock.connect(self.path)
                        self._sock = sock
                    self._sock.sendall(frame)
                    return
                except OSError:
                    self._drop_socket()
        _warn(f"live update dropped: the hub at {self.path} is unreachable")

    def _drop_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None

    def close(self) -> None:
        with self._lock:
            self._drop_socket()


PEER_SOCKET = "hub-{pid}.sock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PeerFanout:
    """Forwards messages to the other API processes' hubs from one thread, so no publisher (a
    request thread, the event loop) ever waits on a peer. A full backlog (a stuck peer) drops
    messages rather than memory; clients resync from the database as after any lost update."""

    BACKLOG = 10_000
    REFRESH_S = 0.2  # how soon a newly started process (a replaced worker) gets messages

    def __init__(self, directory: Path, own_endpoint: str) -> None:
        self.directory = directory
        self.own_endpoint = own_endpoint
        self._frames: queue.Queue[bytes | None] = queue.Queue(maxsize=self.BACKLOG)
        self._peers: dict[str, SocketForwarder] = {}
        self._thread = threading.Thread(target=self._run, name="live-peers", daemon=True)
        self._thread.start()

    def forward(self, message: Message) -> None:
        try:
            self._frames.put_nowait(encode_frame(message))
        except queue.Full:
            _warn("live update dropped: the other API processes are not reading")

    def _run(self) -> None:
        refreshed = 0.0
        while (frame := self._frames.get()) is not None:
            if time.monotonic() - refreshed > self.REFRESH_S:
                self._refresh()
                refreshed = time.monotonic()
            for forwarder in self._peers.values():
                forwarder.send_frame(frame)
        for forwarder in self._peers.values():
            forwarder.close()

    def _refresh(self) -> None:
        found = set()
        for path in self.directory.glob(PEER_SOCKET.format(pid="*")):
            pid = path.stem.removeprefix("hub-")
            if str(path) == self.own_endpoint or not pid.isdigit():
                continue
            if not _alive(int(pid)):  # killed: nobody removed its socket file
                path.unlink(missing_ok=True)
                continue
            found.add(str(path))
        for gone in set(self._peers) - found:
            self._peers.pop(gone).close()
        for new in found - set(self._peers):
            self._peers[new] = SocketForwarder(new)

    def close(self) -> None:
        try:
            self._frames.put(None, timeout=1)
        except queue.Full:
            return  # a daemon thread: it ends with the process
        self._thread.join(timeout=2)


class FanoutPublisher:
    """This process's hub first, then the other API processes' (``PeerFanout``)."""

    def __init__(self, local: Publisher, fanout: PeerFanout) -> None:
        self.local = local
        self.fanout = fanout

    def publish(self, message: Message) -> None:
        self.local.publish(message)
        self.fanout.forward(message)

    def close(self) -> None:
        self.local.close()
        self.fanout.close()


class RedisPublisher:
    """Distributed mode: ``PUBLISH`` to the channel every API replica subscribes to."""

    def __init__(self, url: str, channel: str) -> None:
        import redis

        self.channel = channel
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def publish(self, message: Message) -> None:
        self.client.publish(self.channel, orjson.dumps(message, default=str))

    def close(self) -> None:
        self.client.close()


def install_worker_publisher(settings: Any, live_endpoint: str | None = None) -> Publisher | None:
    """For a worker process (local pool initializer, Celery worker start-up): Redis in
    distributed mode, else the hub's Unix socket when the pool was handed one."""
    publisher: Publisher | None
    if settings.effective_pubsub == "redis":
        publisher = RedisPublisher(settings.effective_pubsub_url, settings.pubsub_channel)
    elif live_endpoint:
        publisher = SocketForwarder(live_endpoint)
    else:
        publisher = None
    install(publisher)
    return publisher
