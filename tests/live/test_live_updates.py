"""Live updates over a real WebSocket: a real uvicorn server (in a thread, so the fixtures'
databases work) with real worker processes, the `websockets` client, Redis pub/sub from
another process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from mlservice.alerts.service import acknowledge, raise_alert_now
from mlservice.auth.models import Tier
from mlservice.principal import Principal
from mlservice.live.hub import Client, Hub
from mlservice.live.messages import alert_message, job_message
from mlservice.training.jobs import TRAIN
from tests.backends import REDIS_URL
from tests.conftest import make_settings
from tests.helpers import Accounts, adult_sample, records

TRAIN_PARAMS = {"hidden_layer_sizes": [32], "max_iter": 25, "early_stopping": False}


@pytest.fixture
def settings(tmp_path, database):
    return make_settings(tmp_path, database, ws_revalidate_s=0.3,
                         pubsub_channel=f"mlservice-test:{uuid.uuid4().hex}")


@pytest.fixture
def server(app) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=5)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    port = instance.servers[0].sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{server}", timeout=60) as client:
        yield client


def open_ws(server: str, headers: dict | None = None, query: str = "") -> ClientConnection:
    return connect(f"ws://{server}/ws{query}", additional_headers=headers or {}, open_timeout=10)


def receive(ws: ClientConnection, timeout: float = 10) -> dict:
    """The next message that is not a heartbeat."""
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if message["type"] == "ping":
            ws.send(json.dumps({"type": "pong"}))
            continue
        return message


def hello(ws: ClientConnection) -> dict:
    message = receive(ws)
    assert message["type"] == "hello", message
    return message


def drain(ws: ClientConnection, seconds: float) -> list[dict]:
    got, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            got.append(receive(ws, timeout=left))
        except TimeoutError:
            break
    return got


def closed_with(ws: ClientConnection, timeout: float = 10) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as info:
        while time.monotonic() < deadline:
            receive(ws, timeout=deadline - time.monotonic())
    return info.value.rcvd.code, info.value.rcvd.reason


def test_training_job_streams_in_order_to_its_owner_and_admins_only(server: str, http: httpx.Client) -> None:
    accounts = Accounts(http)
    _, alice = accounts.login_as("alice_ws")
    _, bob = accounts.login_as("bob_ws")
    bob_token = bob["Authorization"].removeprefix("Bearer ")
    with open_ws(server, alice) as alice_ws, open_ws(server, query=f"?token={bob_token}") as bob_ws, \
            open_ws(server, accounts.system_admin) as admin_ws:
        assert hello(alice_ws)["data"]["user"]["username"] == "alice_ws"
        assert hello(bob_ws)["data"]["user"]["username"] == "bob_ws"
        hello(admin_ws)
        response = http.post("/train", headers=alice, json={
            "model_key": "ws_model", "target": "income", "data": records(adult_sample(1500)), "params": TRAIN_PARAMS,
        })
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]

        stream, models = [], []
        while not stream or stream[-1]["type"] not in ("job.completed", "job.failed"):
            message = receive(alice_ws, timeout=180)
            if message["type"].startswith("job.") and message["data"]["job_id"] == job_id:
                stream.append(message)
            elif message["type"].startswith("model."):
                models.append(message)
        types = [m["type"] for m in stream]
        assert types[0] == "job.created" and types[1] == "job.started" and types[-1] == "job.completed", types
        stages = [m["data"]["stage"] for m in stream if m["type"] == "job.stage"]
        assert stages == list(TRAIN.stages)
        assert "job.progress" in types
        fit = stream.index(next(m for m in stream if m["type"] == "job.stage" and m["data"]["stage"] == "fit_model"))
        evaluate = stream.index(next(m for m in stream if m["type"] == "job.stage" and m["data"]["stage"] == "evaluate"))
        assert any(m["type"] == "job.progress" for m in stream[fit:evaluate]), "progress arrives between the stages"
        progress = [m["data"]["progress"] for m in stream]
        assert progress == sorted(progress) and progress[-1] == 100.0
        seqs = [m["seq"] for m in stream]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert all(set(m) == {"type", "ts", "seq", "topics", "data"} for m in stream)
        assert f"job:{job_id}" in stream[0]["topics"]
        models += [m for m in drain(alice_ws, 0.5) if m["type"].startswith("model.")]
        assert [m["type"] for m in models] == ["model.version_created", "model.promoted"]
        assert models[0]["data"]["version"] == "1.0.0"

        admin_seen = [m for m in drain(admin_ws, 1.0) if m["type"].startswith("job.")]
        assert [m["type"] for m in admin_seen if m["data"]["job_id"] == job_id][-1] == "job.completed"
        bob_seen = drain(bob_ws, 0.5)
        assert not [m for m in bob_seen if m["type"].startswith("job.")], "bob must not see alice's job"
        assert "model.version_created" in {m["type"] for m in bob_seen}, "models are visible to every user"

        # Reconnect-and-resync: the ts of the last message seen is where the REST catch-up starts.
        missed = http.get("/jobs", params={"updated_since": stream[0]["ts"]}, headers=alice).json()
        assert job_id in {j["id"] for j in missed["items"]}


def test_authentication_revocation_subscriptions_and_heartbeat(server: str, http: httpx.Client, database) -> None:
    accounts = Accounts(http)
    user, headers = accounts.login_as("carol_ws")
    with open_ws(server) as anonymous:
        code, reason = closed_with(anonymous)
        assert code == 1008 and "authentication required" in reason
    with open_ws(server, query="?token=mls_api_not-a-real-token") as wrong:
        code, reason = closed_with(wrong)
        assert code == 1008 and "unknown token" in reason

    session_token = headers["Authorization"].removeprefix("Bearer ")
    cookie = {"Cookie": f"ml_session={session_token}"}
    with open_ws(server, {**cookie, "Origin": f"http://{server}"}) as browser:
        assert hello(browser)["data"]["user"]["id"] == user["id"]
    with open_ws(server, {**cookie, "Origin": "https://evil.example"}) as hijack:
        assert closed_with(hijack)[0] == 1008

    created = http.post("/auth/tokens", headers=headers, json={"name": "ws"}).json()
    with open_ws(server, query=f"?token={created['token']}&topics=alerts") as ws:
        assert hello(ws)["data"]["topics"] == ["alerts"]
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws)["type"] == "pong"
        ws.send("not json")
        assert receive(ws)["data"]["code"] == "bad_message"

        # Admin-only alerts never reach a user; other alerts do, on the "alerts" topic.
        raise_alert_now(database, kind="security", severity="critical", dedup_key="ws:secret",
                        message="for admins", admin_only=True)
        alert_id = raise_alert_now(database, kind="drift", severity="warning", dedup_key="ws:drift",
                                   message="drift on m", model_key="m")
        seen = receive(ws)
        assert seen["type"] == "alert.raised" and seen["data"]["alert_id"] == alert_id
        admin = Principal(1, "admin", Tier.system_admin, "session")
        with database.session(write=True) as session:
            acknowledge(session, admin, alert_id)
        assert receive(ws)["type"] == "alert.acknowledged"

        ws.send(json.dumps({"type": "unsubscribe", "topics": ["alerts"]}))
        ws.send(json.dumps({"type": "subscribe", "topics": ["model:other"]}))
        assert receive(ws)["data"]["topics"] == []
        assert receive(ws)["data"]["topics"] == ["model:other"]
        raise_alert_now(database, kind="drift", severity="warning", dedup_key="ws:m2", message="x", model_key="m")
        assert drain(ws, 0.3) == []

        revoked = http.post(f"/auth/tokens/{created['id']}/revoke", headers=headers)
        assert revoked.status_code == 200, revoked.text
        code, reason = closed_with(ws, timeout=5)
        assert code == 1008 and "revoked" in reason


def test_slow_client_is_dropped_and_told_to_resync_without_holding_others(tmp_path) -> None:
    settings = make_settings(tmp_path)
    user = Principal(7, "u", Tier.user, "session", 1)
    other = Principal(8, "v", Tier.user, "session", 2)

    async def scenario() -> None:
        hub = Hub(settings, database=None)  # type: ignore[arg-type] - fan-out needs no database
        slow, fast, stranger = Client(None, user, set(), 3), Client(None, user, set(), 100), Client(None, other, set(), 100)  # type: ignore[arg-type]
        hub.clients |= {slow, fast, stranger}
        job = type("J", (), dict(id="j1", type="train", status="running", stage="load", progress=1.0,
                                 model_key="m", model_version=None, user_id=7, error=None))
        for _ in range(10):
            hub.deliver(job_message("job.stage", job))
        assert fast.queue.qsize() == 10 and stranger.queue.qsize() == 0
        backlog = [json.loads(slow.queue.get_nowait()) for _ in range(slow.queue.qsize())]
        assert backlog[0]["type"] == "resync" and backlog[0]["data"]["reason"] == "slow_consumer"
        assert slow.dropped >= 3 and len(backlog) <= 3
        alert = type("A", (), dict(id=1, kind="k", severity="info", status="active", model_key=None,
                                   message="m", occurrences=1, link={}, admin_only=False))
        hub.deliver(alert_message("alert.raised", alert))
        assert stranger.queue.qsize() == 1

    asyncio.run(scenario())


def test_redis_adapter_delivers_what_another_process_publishes(tmp_path, database) -> None:
    channel = f"mlservice-test:{uuid.uuid4().hex}"
    url = database.url.render_as_string(hide_password=False)
    settings = make_settings(tmp_path, database, pubsub="redis", pubsub_url=REDIS_URL,
                             pubsub_channel=channel)
    from mlservice.app import create_app
    from mlservice.auth.service import ensure_first_admin

    with database.session(write=True) as session:
        ensure_first_admin(session, settings)
    app = create_app(settings, database)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=5)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    try:
        while not instance.started:
            assert thread.is_alive()
            time.sleep(0.02)
        server = f"127.0.0.1:{instance.servers[0].sockets[0].getsockname()[1]}"
        with httpx.Client(base_url=f"http://{server}") as http:
            admin = Accounts(http).system_admin
        with open_ws(server, admin) as ws:
            assert hello(ws)["data"]["mode"] == "redis"
            script = (
                "import sys\n"
                "from mlservice.settings import Settings\n"
                "from mlservice.db import Database\n"
                "from mlservice.live import install_worker_publisher\n"
                "from mlservice.alerts.service import raise_alert_now\n"
                f"s = Settings(_env_file=None, database_url={url!r}, pubsub='redis', pubsub_channel={channel!r})\n"
                "install_worker_publisher(s)\n"
                "print(raise_alert_now(Database(s.effective_database_url), kind='job_failed', severity='warning',"
                " dedup_key='redis-ws', message='from another process'))\n"
            )
            done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            message = receive(ws, timeout=10)
            assert message["type"] == "alert.raised", message
            assert message["data"]["alert_id"] == int(done.stdout.strip())
            assert message["data"]["message"] == "from another process"
    finally:
        instance.should_exit = True
        thread.join(timeout=30)
