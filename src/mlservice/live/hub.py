"""The WebSocket hub of one API process: authenticated connections, per-client bounded queues,
fan-out of published messages, heartbeats, periodic token re-validation, and the inbound side
of the pub/sub adapters (the Unix socket local workers forward to; the Redis subscription; with
``serve --workers N`` and no Redis, the socket the other API processes forward to)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
from fastapi import Depends
from starlette.websockets import WebSocket

from mlservice.auth.deps import bearer_secret, principal_from_secret
from mlservice.auth.service import usable_token_tiers
from mlservice.db import Database, DatabaseBusyError, utcnow
from mlservice.errors import AppError
from mlservice.live import bus
from mlservice.live.messages import TOPIC, Message, may_see, now_iso
from mlservice.principal import Principal, Tier
from mlservice.settings import Settings

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
GOING_AWAY = 1001
TRY_AGAIN_LATER = 1013
HEARTBEAT_TIMEOUT = 4000  # application-defined: the client stopped answering pings
MISSED_HEARTBEATS = 3


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


class _Rejected(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def control(kind: str, data: dict[str, Any] | None = None) -> str:
    return orjson.dumps({"type": kind, "ts": now_iso(), "data": data or {}}).decode()


class Client:
    """One connection. Messages wait in a bounded queue that only this client's sender task
    drains, so a slow reader delays nobody else; when the queue is full its backlog is dropped
    and replaced by one ``resync`` message."""

    __slots__ = ("websocket", "principal", "topics", "queue", "seq", "last_heard", "dropped", "closing")

    def __init__(self, websocket: WebSocket, principal: Principal, topics: set[str], queue_size: int) -> None:
        self.websocket = websocket
        self.principal = principal
        self.topics = topics
        self.queue: asyncio.Queue[str | _Close] = asyncio.Queue(maxsize=queue_size)
        self.seq = 0
        self.last_heard = asyncio.get_running_loop().time()
        self.dropped = 0
        self.closing = False

    def wants(self, message: Message) -> bool:
        if not may_see(self.principal, message["audience"]):
            return False
        return not self.topics or not self.topics.isdisjoint(message["topics"])

    def offer(self, text: str) -> None:
        if self.closing:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            dropped = 0
            while not self.queue.empty():
                self.queue.get_nowait()
                dropped += 1
            self.dropped += dropped + 1
            self.queue.put_nowait(control("resync", {
                "reason": "slow_consumer", "dropped": dropped + 1,
                "hint": "fetch what changed since the ts of your last message: GET /jobs?updated_since=",
            }))

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_Close(code, reason[:120]))
        self.closing = True


def parse_topics(values: Any) -> tuple[set[str], list[str]]:
    if isinstance(values, str):
        values = [part.strip() for part in values.split(",") if part.strip()]
    if not isinstance(values, list):
        return set(), ["topics must be a list of strings"]
    good = {v for v in values if isinstance(v, str) and TOPIC.match(v)}
    bad = [str(v) for v in values if v not in good]
    return good, bad


class Hub:
    def __init__(self, settings: Settings, database: Database, peers_dir: Path | None = None) -> None:
        self.settings = settings
        self.database = database
        self.peers_dir = peers_dir  # where the API processes of `serve --workers N` meet
        self.clients: set[Client] = set()
        self.mode = settings.effective_pubsub
        self._tasks: list[asyncio.Task] = []
        self._publisher: bus.Publisher | None = None
        self._server: asyncio.AbstractServer | None = None
        self._socket_dir: str | None = None
        self.worker_endpoint: str | None = None
        self._subscribed: asyncio.Event | None = None  # created in start(), on the loop
        self._peer_server: asyncio.AbstractServer | None = None
        self._peer_endpoint: str | None = None
        self._fanout: bus.PeerFanout | None = None

    # Life cycle ---------------------------------------------------------------------------

    async def start(self, queue: Any = None) -> None:
        loop = asyncio.get_running_loop()
        if self.mode == "redis":
            self._subscribed = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._redis_loop(), name="live-redis"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), timeout=5)
            if not self._subscribed.is_set():
                log.error("live updates: Redis at %s unreachable; retrying in the background",
                          self.settings.effective_pubsub_url)
            self._publisher = bus.RedisPublisher(self.settings.effective_pubsub_url, self.settings.pubsub_channel)
        else:
            self._socket_dir = tempfile.mkdtemp(prefix="mls-live-")
            self.worker_endpoint = os.path.join(self._socket_dir, "hub.sock")
            self._server = await asyncio.start_unix_server(
                lambda r, w: self._read_frames(r, w, self._from_workers), path=self.worker_endpoint)
            self._publisher = bus.LocalPublisher(loop, self.deliver)
            if self.peers_dir is not None:
                await self._join_peers()
            if queue is not None and hasattr(queue, "live_endpoint"):
                queue.live_endpoint = self.worker_endpoint  # handed to the pool initializer
        bus.install(self._publisher)
        self._tasks.append(asyncio.create_task(self._revalidate_loop(), name="live-revalidate"))

    async def _join_peers(self) -> None:
        assert self.peers_dir is not None and self._publisher is not None
        self._peer_endpoint = str(self.peers_dir / bus.PEER_SOCKET.format(pid=os.getpid()))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._peer_endpoint)  # a dead process's, whose pid this one got
        self._peer_server = await asyncio.start_unix_server(
            lambda r, w: self._read_frames(r, w, self.deliver), path=self._peer_endpoint)
        self._fanout = bus.PeerFanout(self.peers_dir, self._peer_endpoint)
        self._publisher = bus.FanoutPublisher(self._publisher, self._fanout)

    async def stop(self) -> None:
        if self._publisher is not None:
            bus.uninstall(self._publisher)
        for client in list(self.clients):
            client.close(GOING_AWAY, "server is shutting down")
        await asyncio.sleep(0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
        if self._peer_server is not None:
            self._peer_server.close()
            self._peer_server = None
            with contextlib.suppress(OSError):
                os.unlink(self._peer_endpoint)  # type: ignore[arg-type]
            self._fanout = None  # closed with the publisher, below
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                self._publisher.close()
            self._publisher = None

    # Fan-out ------------------------------------------------------------------------------

    def deliver(self, message: Message) -> None:
        """Runs on the event loop: never awaits, so one slow client cannot hold the others."""
        text: str | None = None
        for client in self.clients:
            if client.wants(message):
                if text is None:
                    text = orjson.dumps({k: v for k, v in message.items() if k != "audience"}).decode()
                client.offer(text)

    def broadcast_resync(self, reason: str) -> None:
        text = control("resync", {"reason": reason})
        for client in self.clients:
            client.offer(text)

    # One connection -------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        # Accept first: a close before the handshake completes reaches the client as an HTTP
        # 403 without a reason, and the contract is a 1008 close with one.
        await websocket.accept()
        try:
            principal = await self._authenticate(websocket)
        except _Rejected as rejected:
            await websocket.close(code=rejected.code, reason=rejected.reason[:120])
            return
        topics, bad = parse_topics(websocket.query_params.get("topics", ""))
        client = Client(websocket, principal, topics, self.settings.ws_queue_size)
        self.clients.add(client)
        client.offer(control("hello", {
            "user": {"id": principal.user_id, "username": principal.username, "tier": principal.tier.value},
            "topics": sorted(topics), "server_time": now_iso(), "mode": self.mode,
            "heartbeat_s": self.settings.ws_heartbeat_s,
        }))
        if bad:
            client.offer(control("error", {"code": "unknown_topic", "topics": bad}))
        sender = asyncio.create_task(self._send_loop(client))
        receiver = asyncio.create_task(self._receive_loop(client))
        try:
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.clients.discard(client)
            for task in (sender, receiver):
                task.cancel()
            for task in (sender, receiver):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _authenticate(self, websocket: WebSocket) -> Principal:
        """The same secrets and checks as HTTP requests (``auth.deps``), plus ``?token=``: a
        browser cannot set headers on a WebSocket handshake."""
        try:
            secret, from_cookie = bearer_secret(websocket)
        except AppError as error:
            raise _Rejected(POLICY_VIOLATION, error.message) from None
        if websocket.query_params.get("token") and (secret is None or from_cookie):
            secret, from_cookie = websocket.query_params["token"], False
        if secret is None:
            raise _Rejected(POLICY_VIOLATION, "authentication required: a session cookie, ?token= or a Bearer header")
        if from_cookie:
            # Browsers send cookies on cross-site WebSocket handshakes too; only our own pages
            # (and the configured dashboard origins) may ride on the session cookie.
            origin = websocket.headers.get("origin")
            host = websocket.headers.get("host", "")
            allowed = {*self.settings.cors_origins, f"http://{host}", f"https://{host}"}
            if origin and origin not in allowed:
                raise _Rejected(POLICY_VIOLATION, f"origin {origin} may not use the session cookie")
        try:
            return await anyio.to_thread.run_sync(principal_from_secret, websocket.app.state, secret)
        except DatabaseBusyError:  # an AppError too: caught first
            raise _Rejected(TRY_AGAIN_LATER, "database busy; reconnect in a moment") from None
        except AppError as error:
            raise _Rejected(POLICY_VIOLATION, error.message) from None

    async def _send_loop(self, client: Client) -> None:
        websocket = client.websocket
        loop = asyncio.get_running_loop()
        heartbeat = self.settings.ws_heartbeat_s
        next_ping = loop.time() + heartbeat
        while True:
            try:
                item = client.queue.get_nowait()
            except asyncio.QueueEmpty:
                wait = next_ping - loop.time()
                if wait > 0:
                    try:
                        item = await asyncio.wait_for(client.queue.get(), wait)
                    except TimeoutError:
                        continue
                else:
                    next_ping = loop.time() + heartbeat
                    if loop.time() - client.last_heard > MISSED_HEARTBEATS * heartbeat:
                        item = _Close(HEARTBEAT_TIMEOUT, "heartbeat timeout: no pong or other message")
                    else:
                        item = control("ping")
            if isinstance(item, _Close):
                client.closing = True
                with contextlib.suppress(Exception):
                    await websocket.close(code=item.code, reason=item.reason)
                return
            client.seq += 1
            await websocket.send_text(f'{{"seq":{client.seq},{item[1:]}')

    async def _receive_loop(self, client: Client) -> None:
        websocket = client.websocket
        loop = asyncio.get_running_loop()
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            client.last_heard = loop.time()
            raw = frame.get("text")
            if raw is None:
                raw = (frame.get("bytes") or b"").decode("utf-8", "replace")
            try:
                request = orjson.loads(raw)
                kind = request.get("type")
            except (orjson.JSONDecodeError, AttributeError):
                client.offer(control("error", {"code": "bad_message", "message": "send JSON objects with a 'type'"}))
                continue
            if kind == "ping":
                client.offer(control("pong"))
            elif kind == "pong":
                pass
            elif kind in ("subscribe", "unsubscribe"):
                self._subscription(client, kind, request.get("topics"))
            else:
                client.offer(control("error", {"code": "unknown_type", "message": f"unknown message type {kind!r}"}))

    def _subscription(self, client: Client, kind: str, values: Any) -> None:
        if kind == "unsubscribe" and values is None:
            client.topics = set()
        else:
            topics, bad = parse_topics(values)
            if bad:
                client.offer(control("error", {"code": "unknown_topic", "topics": bad}))
            if kind == "subscribe":
                client.topics |= topics
            else:
                client.topics -= topics
        client.offer(control("subscribed", {"topics": sorted(client.topics)}))

    # Re-validation ------------------------------------------------------------------------

    async def _revalidate_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ws_revalidate_s)
            try:
                await self.revalidate()
            except Exception:  # noqa: BLE001 - try again next round
                log.warning("live updates: token re-validation failed", exc_info=True)

    async def revalidate(self) -> None:
        """One query for every connection: a revoked or expired token, or a deactivated user,
        closes the socket; a changed tier applies to the next message."""
        clients = [c for c in self.clients if c.principal.token_id is not None and not c.closing]
        if not clients:
            return
        ids = sorted({c.principal.token_id for c in clients})
        usable = await anyio.to_thread.run_sync(usable_token_tiers, self.database, ids, utcnow())
        for client in clients:
            tier = usable.get(client.principal.token_id)
            if tier is None:
                client.close(POLICY_VIOLATION, "token revoked or expired")
            elif tier != client.principal.tier.value:
                client.principal = replace(client.principal, tier=Tier(tier))

    # Inbound: local workers and Redis -----------------------------------------------------------

    def _from_workers(self, message: Message) -> None:
        """A message from this process's pool workers: to this hub, and to the other processes'."""
        self.deliver(message)
        if self._fanout is not None:
            self._fanout.forward(message)

    async def _read_frames(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           handle: Callable[[Message], None]) -> None:
        try:
            while True:
                header = await reader.readexactly(bus.FRAME_HEADER.size)
                (size,) = bus.FRAME_HEADER.unpack(header)
                if size > bus.MAX_FRAME:
                    log.warning("live updates: oversized frame from a worker; closing its connection")
                    return
                handle(orjson.loads(await reader.readexactly(size)))
        except (asyncio.IncompleteReadError, ConnectionError, orjson.JSONDecodeError):
            pass
        finally:
            writer.close()

    async def _redis_loop(self) -> None:
        import redis.asyncio as aioredis

        delay = 0.5
        first = True
        while True:
            client = aioredis.Redis.from_url(self.settings.effective_pubsub_url, socket_connect_timeout=3)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.settings.pubsub_channel)
                if not first:
                    # Whatever was published while we were cut off is lost: clients refetch.
                    self.broadcast_resync("pubsub_reconnected")
                first, delay = False, 0.5
                assert self._subscribed is not None
                self._subscribed.set()
                while True:
                    item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if item is not None and item.get("type") == "message":
                        try:
                            self.deliver(orjson.loads(item["data"]))
                        except (orjson.JSONDecodeError, KeyError, TypeError):
                            log.warning("live updates: ignored a malformed message on %s", self.settings.pubsub_channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis went away: retry with backoff
                log.warning("live updates: Redis subscription lost; retrying in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()


async def get_hub(websocket: WebSocket) -> Hub:
    return websocket.app.state.live_hub


HubDep = Annotated[Hub, Depends(get_hub)]
