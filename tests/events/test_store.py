"""The detection rules' store: one contract in this process's memory, in the file the API
processes of one machine share and in Redis (the machine's, a DB number of the tests' own); and
the rules on a shared store judging traffic split over two API processes as one.

Two stores opened on one file (or one Redis) stand for two processes: each has connections of
its own, as separate processes do. ``serve --workers 2`` end to end is in
tests/reliability/test_api_workers.py."""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mlservice.db import Database
from mlservice.events import writer
from mlservice.events.models import Event
from mlservice.events.rules import (
    BurstCounter,
    CredentialStuffing,
    NetworkSwitch,
    RepeatedForbidden,
)
from mlservice.events.store import DetectionStore, FileStore, MemoryStore, RedisStore
from mlservice.principal import Principal
from mlservice.settings import Settings
from tests.backends import REDIS_URL
from tests.conftest import make_settings

T0 = 1_700_000_000.0  # the rules' clock: any wall time; windows are aligned to it


@pytest.fixture(params=["memory", "file", "redis"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], DetectionStore]:
    """Opens a store; for the shared kinds, each call is another process's view of one store."""
    if request.param == "memory":
        store = MemoryStore()
        return lambda: store
    if request.param == "file":
        return lambda: FileStore(tmp_path)
    return lambda: RedisStore(REDIS_URL)


@pytest.fixture
def key() -> str:  # Redis outlives a test: each test its own keys
    return f"test:{uuid.uuid4().hex}"


def test_count_keeps_this_window_and_the_previous(opener: Callable[[], DetectionStore], key: str) -> None:
    a, b = opener(), opener()
    assert a.count(key, 1, 10, T0) == (1, 0)
    assert b.count(key, 4, 10, T0 + 9.9) == (5, 0)
    assert a.count(key, 1, 10, T0 + 10) == (1, 5)  # the next window
    assert b.count(key, 1, 10, T0 + 35) == (1, 0)  # two windows on: nothing before


def test_add_counts_distinct_members_within_a_sliding_window(opener: Callable[[], DetectionStore], key: str) -> None:
    a, b = opener(), opener()
    assert a.add(key, "alice", 60, T0) == 1
    assert b.add(key, "bob", 60, T0 + 10) == 2
    assert a.add(key, "alice", 60, T0 + 20) == 2  # again: still two members, alice now at +20
    assert b.add(key, "carol", 60, T0 + 75) == 2  # bob (+10) left the window, alice (+20) did not
    assert a.add(key, "dave", 60, T0 + 200) == 1


def test_swap_returns_the_value_before_and_when(opener: Callable[[], DetectionStore], key: str) -> None:
    a, b = opener(), opener()
    assert a.swap(key, "81.2.0.0/16 81.2.69.142", 600, T0) is None
    assert b.swap(key, "185.220.0.0/16 185.220.101.4", 600, T0 + 5) == ("81.2.0.0/16 81.2.69.142", T0)
    assert a.swap(key, "x", 600, T0 + 6) == ("185.220.0.0/16 185.220.101.4", T0 + 5)


def test_first_is_true_once_per_window_whoever_asks(opener: Callable[[], DetectionStore], key: str) -> None:
    a, b = opener(), opener()
    assert a.first(key, 60, T0) is True
    assert b.first(key, 60, T0 + 1) is False
    assert a.first(key, 60, T0 + 59) is False
    assert b.first(key, 60, T0 + 60) is True
    assert a.first(f"{key}:other", 60, T0 + 60) is True


def test_a_standing_flag_is_not_asked_about_again(tmp_path: Path) -> None:
    """A flood of flagged requests (a scanner, a client without a User-Agent) asks the shared
    store once per window, not once per request: each ask is a write every process queues for."""
    here, elsewhere = FileStore(tmp_path), FileStore(tmp_path)
    asked = []
    ask = elsewhere._first
    elsewhere._first = lambda *args: asked.append(args) or ask(*args)  # type: ignore[method-assign]
    assert here.first("scanner", 60, T0)
    assert not any(elsewhere.first("scanner", 60, T0 + 1 + n * 0.01) for n in range(1000))
    assert len(asked) == 1  # and it learnt that the flag stands until T0 + 60
    assert elsewhere.first("scanner", 60, T0 + 60) and len(asked) == 2


def test_a_store_that_fails_falls_back_to_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    down = RedisStore("redis://127.0.0.1:1/0")  # nothing listens there
    caplog.set_level(logging.WARNING, logger="mlservice.events.store")
    assert down.first("k", 60, T0) is True and down.first("k", 60, T0 + 1) is False
    assert down.count("k", 2, 10, T0) == (2, 0)
    assert "detection store (RedisStore) failed" in caplog.text

    store = FileStore(tmp_path)
    path = tmp_path / "detection.sqlite"
    path.unlink()
    path.mkdir()  # the file is gone and cannot come back: every operation fails
    store._file._local.db = None  # a fresh connection, as a new thread would open
    assert store.add("k", "m", 60, T0) == 1
    assert store.swap("k", "v", 60, T0) is None


# The rules, split over two processes ----------------------------------------------------------


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Callable[[], FileStore]]:
    yield lambda: FileStore(tmp_path)


def settings(**values: object) -> Settings:
    return make_settings(Path("."), **values)


def test_a_burst_spread_over_two_processes_is_one_burst(shared: Callable[[], FileStore]) -> None:
    first, second = BurstCounter(1000, 10, shared()), BurstCounter(1000, 10, shared())
    assert first.batch == second.batch == 10  # the store sees a write per ten requests
    flagged = [counter.hit("198.51.100.7", T0 + n * 0.005) for n in range(600) for counter in (first, second)]
    assert flagged.count(True) == 1  # 1,200 requests in 6 s: each process saw 600
    assert 1000 <= flagged.index(True) + 1 <= 1000 + 2 * first.batch
    # Another IP, and the same IP again after the window, count on their own.
    assert not any(first.hit("203.0.113.9", T0 + 7) for _ in range(100))
    assert any(second.hit("198.51.100.7", T0 + 30 + n * 0.005) for n in range(1000))


def test_a_burst_astride_two_aligned_windows_counts_whole() -> None:
    counter = BurstCounter(100, 10, MemoryStore())
    # 120 requests in 1.2 s, 60 on each side of an aligned boundary: each window alone has 60.
    flagged = [counter.hit("198.51.100.7", T0 + 9.4 + n * 0.01) for n in range(120)]
    assert flagged.count(True) == 1 and 100 <= flagged.index(True) + 1 <= 105
    slow = BurstCounter(100, 10, MemoryStore())  # 50 per window, for a minute: never a burst
    assert not any(slow.hit("198.51.100.8", T0 + n * 0.2) for n in range(300))


def test_forbidden_calls_and_usernames_tried_count_across_processes(shared: Callable[[], FileStore]) -> None:
    config = settings(suspicious_forbidden_count=4, suspicious_login_usernames=4)
    forbidden = [RepeatedForbidden(config, shared()) for _ in range(2)]
    reasons = [forbidden[n % 2].reasons({"user_id": 7, "client_ip": "81.2.69.142"}, T0 + n) for n in range(4)]
    assert reasons[:3] == [[], [], []]
    assert reasons[3] == ["4 forbidden (403) calls from user 7 within 600 s",
                          "4 forbidden (403) calls from IP 81.2.69.142 within 600 s"]

    stuffing = [CredentialStuffing(config, shared()) for _ in range(2)]
    tried = [stuffing[n % 2].reason({"type": "login.failed", "client_ip": "203.0.113.5", "username": name}, T0 + n)
             for n, name in enumerate(["ann", "ben", "ann", "cat", "dan"])]
    assert tried == [None, None, None, None, f"failed logins for 4 usernames from IP 203.0.113.5 within {config.login_failure_window_s} s"]


def test_a_token_switching_networks_across_processes(shared: Callable[[], FileStore]) -> None:
    config = settings(suspicious_network_switch_s=600)
    home, away = NetworkSwitch(config, shared()), NetworkSwitch(config, shared())
    token = Principal(user_id=1, username="erin", tier="user", auth_kind="api", token_id=7)
    assert home.reason(token, "81.2.69.142", T0) is None
    assert away.reason(token, "81.2.10.1", T0 + 1) is None  # the same /16, through the other process
    assert away.reason(token, "185.220.101.4", T0 + 2) == (
        "token #7 used from 81.2.10.1 and 185.220.101.4 (distant networks) within 1 s"
    )
    # Each process has now written its network; the next switch shows at a refresh at the latest.
    assert home.reason(token, "81.2.69.142", T0 + 3) is None  # home wrote this network 3 s ago
    assert home.reason(token, "81.2.69.142", T0 + 2 + NetworkSwitch.REFRESH_S) == (
        f"token #7 used from 185.220.101.4 and 81.2.69.142 (distant networks) within {NetworkSwitch.REFRESH_S:.0f} s"
    )


def test_a_new_client_met_by_two_processes_at_once_is_one_event(
    tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both processes miss it in memory and, judging it in the same instant, find no history in
    the database (on PostgreSQL; SQLite's write lock already serialises them): the shared store
    lets one of them judge it. The barrier holds each judgement until the other's has begun."""
    judging = threading.Barrier(2, timeout=1)
    judge = writer.client_event

    def together(*args, **kwargs):  # type: ignore[no-untyped-def]
        with contextlib.suppress(threading.BrokenBarrierError):  # the other never came
            judging.wait()
        return judge(*args, **kwargs)

    monkeypatch.setattr(writer, "client_event", together)
    shared_dir = tmp_path / "run"
    shared_dir.mkdir()
    logs = [writer.EventLog(make_settings(tmp_path, database), database, shared_dir) for _ in range(2)]
    token = Principal(user_id=1, username="erin", tier="user", auth_kind="api", token_id=7)
    request = {"source": "api", "client_ip": "81.2.69.142", "user_agent": "curl/8.5.0", "method": "GET",
               "path": "/models", "status_code": 200, "user_id": 1, "username": "erin",
               "auth_kind": "api", "token_id": 7}
    try:
        for log in logs:
            log.check_client(token, "81.2.69.142", "curl/8.5.0", lambda: dict(request))
        for log in logs:
            assert log.flush()
    finally:
        for log in logs:
            log.close()
    with database.session() as session:
        written = session.scalars(select(Event.type).where(Event.token_id == 7)).all()
    assert written == ["client.first_seen"]
