"""Where the detection rules keep their windows, so that every API process judges the same
traffic: in this process (one API process, the default), in a file the API processes of one
machine share (``serve --workers N``), or in Redis (``ML_RATE_LIMIT_STORAGE=redis://…``: every
replica). The rate limits and the login lockout are shared the same way (``auth.ratelimit``).

Per process, an attack spread over the processes went unseen (each saw a part below the
threshold), and one seen by several raised an alert in each. Four operations cover the rules:

- ``count``: hits per aligned window of a key, with the previous window's (bursts);
- ``add``: distinct members of a key within a sliding window (403s, usernames tried);
- ``swap``: a key's last value and when it was set, replaced (a token's last network);
- ``first``: true once per window for a key, whoever asks (one event per attack).

Times are the rules' clock (``EventLog.clock``: wall time, so that processes and machines
agree; a test may set its own), passed in, never read here. A shared store that fails (Redis
down, a file locked too long) logs it and falls back to this process's memory: detection gets
partial for a while, requests never fail because of it."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Protocol

from mlservice.db.sidecar import SidecarFile

log = logging.getLogger(__name__)

MEMORY_MAX = 10_000  # keys a memory store keeps per kind before it starts again
FILE_NAME = "detection.sqlite"
REDIS_PREFIX = "mlservice:detect:"
SWEEP_EVERY_S = 60.0
FAILURE_LOG_EVERY_S = 60.0


class DetectionStore(Protocol):
    shared: bool  # seen by other processes: callers batch what they can

    def count(self, key: str, amount: int, window: float, now: float) -> tuple[int, int]:
        """Add ``amount`` to the ``window``-long aligned window ``now`` falls in; returns that
        window's count and the previous window's."""
        ...

    def add(self, key: str, member: str, window: float, now: float) -> int:
        """Note ``member`` at ``now``; returns how many distinct members were noted within the
        last ``window`` seconds."""
        ...

    def swap(self, key: str, value: str, keep: float, now: float) -> tuple[str, float] | None:
        """Set ``value`` (kept ``keep`` seconds); returns the value before and when it was set."""
        ...

    def first(self, key: str, window: float, now: float) -> bool:
        """True unless ``first`` was true for ``key`` within the last ``window`` seconds."""
        ...


class MemoryStore:
    shared = False

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}  # key -> [window index, count, previous count]
        self._members: dict[str, dict[str, float]] = {}
        self._values: dict[str, tuple[str, float]] = {}
        self._flags: dict[str, float] = {}

    def count(self, key: str, amount: int, window: float, now: float) -> tuple[int, int]:
        index = int(now // window)
        entry = self._counts.get(key)
        if entry is None or entry[0] != index:
            previous = entry[1] if entry is not None and entry[0] == index - 1 else 0
            bound(self._counts)
            entry = self._counts[key] = [index, 0, previous]
        entry[1] += amount
        return entry[1], entry[2]

    def add(self, key: str, member: str, window: float, now: float) -> int:
        members = self._members.get(key)
        if members is None:
            bound(self._members)
            members = self._members[key] = {}
        members[member] = now
        for old in [name for name, at in members.items() if at <= now - window]:
            del members[old]
        return len(members)

    def swap(self, key: str, value: str, keep: float, now: float) -> tuple[str, float] | None:
        before = self._values.get(key)
        if before is None:
            bound(self._values)
        self._values[key] = (value, now)
        return before

    def first(self, key: str, window: float, now: float) -> bool:
        last = self._flags.get(key)
        if last is not None and now - last < window:
            return False
        bound(self._flags)
        self._flags[key] = now
        return True


def bound(table: dict[Any, Any]) -> None:
    """Keep a table of this process's memory under ``MEMORY_MAX`` keys: start it again."""
    if len(table) >= MEMORY_MAX:
        table.clear()


class _Guarded:
    """A shared store's operations, each falling back to process memory when it fails."""

    shared = True

    def __init__(self) -> None:
        self._fallback = MemoryStore()
        self._failed_at = 0.0
        self._quiet: dict[str, float] = {}  # key -> when its standing flag ends, as last seen

    def first(self, key: str, window: float, now: float) -> bool:
        # A flag known to stand (set here or, as the store said, elsewhere) is not asked about
        # again before it ends: a flood of flagged requests (a scanner, a burst) costs no store
        # write each, which on the file store would queue every request behind the others.
        if self._quiet.get(key, -math.inf) > now:
            return False
        standing = self._first(key, window, now)
        bound(self._quiet)
        self._quiet[key] = (now if standing is None else standing) + window
        return standing is None

    def _first(self, key: str, window: float, now: float) -> float | None:
        """Set the flag unless one stands (set within ``window``): None, or when that was."""
        raise NotImplementedError

    def _failed(self, operation: str, error: Exception) -> MemoryStore:
        if time.monotonic() - self._failed_at > FAILURE_LOG_EVERY_S:
            self._failed_at = time.monotonic()
            log.warning("detection store (%s) failed in %s, judging in this process for now: %s",
                        type(self).__name__, operation, error)
        return self._fallback


SCHEMA = """
CREATE TABLE IF NOT EXISTS counts (key TEXT, idx INTEGER, count INTEGER NOT NULL, expires REAL NOT NULL,
                                   PRIMARY KEY (key, idx));
CREATE TABLE IF NOT EXISTS members (key TEXT, member TEXT, at REAL NOT NULL, expires REAL NOT NULL,
                                    PRIMARY KEY (key, member));
CREATE TABLE IF NOT EXISTS vals (key TEXT PRIMARY KEY, value TEXT NOT NULL, at REAL NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS flags (key TEXT PRIMARY KEY, at REAL NOT NULL, expires REAL NOT NULL);
"""


class FileStore(_Guarded):
    """A ``db.sidecar`` file in the run directory of ``serve --workers N``."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self._file = SidecarFile(directory / FILE_NAME, SCHEMA)
        self._swept = -math.inf

    def _sweep(self, now: float) -> None:
        """Drop what expired (the keys of one-off IPs and tokens would otherwise pile up)."""
        if now - self._swept < SWEEP_EVERY_S:
            return
        self._swept = now
        db = self._file.connection()
        for table in ("counts", "members", "vals", "flags"):
            db.execute(f"DELETE FROM {table} WHERE expires <= ?", (now,))  # the four names above, never input

    def count(self, key: str, amount: int, window: float, now: float) -> tuple[int, int]:
        index = int(now // window)
        try:
            db = self._file.connection()
            (current,) = db.execute(
                "INSERT INTO counts (key, idx, count, expires) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key, idx) DO UPDATE SET count = count + excluded.count RETURNING count",
                (key, index, amount, (index + 2) * window),
            ).fetchone()
            row = db.execute("SELECT count FROM counts WHERE key = ? AND idx = ?", (key, index - 1)).fetchone()
            self._sweep(now)
        except Exception as exc:  # noqa: BLE001 - see _Guarded
            return self._failed("count", exc).count(key, amount, window, now)
        return int(current), int(row[0]) if row else 0

    def add(self, key: str, member: str, window: float, now: float) -> int:
        try:
            db = self._file.connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT OR REPLACE INTO members (key, member, at, expires) VALUES (?, ?, ?, ?)",
                           (key, member, now, now + window))
                db.execute("DELETE FROM members WHERE key = ? AND at <= ?", (key, now - window))
                (found,) = db.execute("SELECT count(*) FROM members WHERE key = ?", (key,)).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._sweep(now)
        except Exception as exc:  # noqa: BLE001 - see _Guarded
            return self._failed("add", exc).add(key, member, window, now)
        return int(found)

    def swap(self, key: str, value: str, keep: float, now: float) -> tuple[str, float] | None:
        try:
            db = self._file.connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.execute("SELECT value, at FROM vals WHERE key = ? AND expires > ?", (key, now)).fetchone()
                db.execute("INSERT OR REPLACE INTO vals (key, value, at, expires) VALUES (?, ?, ?, ?)",
                           (key, value, now, now + keep))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except Exception as exc:  # noqa: BLE001 - see _Guarded
            return self._failed("swap", exc).swap(key, value, keep, now)
        return (str(before[0]), float(before[1])) if before else None

    def _first(self, key: str, window: float, now: float) -> float | None:
        try:
            db = self._file.connection()
            # The upsert's WHERE leaves a flag set within the window untouched, and RETURNING
            # then yields no row: one statement decides for every process.
            row = db.execute(
                "INSERT INTO flags (key, at, expires) VALUES (?1, ?2, ?2 + ?3) "
                "ON CONFLICT (key) DO UPDATE SET at = ?2, expires = ?2 + ?3 WHERE flags.at <= ?2 - ?3 "
                "RETURNING 1",
                (key, now, window),
            ).fetchone()
            if row is not None:
                return None
            standing = db.execute("SELECT at FROM flags WHERE key = ?", (key,)).fetchone()
        except Exception as exc:  # noqa: BLE001 - see _Guarded
            return None if self._failed("first", exc).first(key, window, now) else now
        return float(standing[0]) if standing else now


# Redis: one round trip per operation (a transaction or a script), keys expiring on their own.
FIRST_SCRIPT = """
local at = redis.call('GET', KEYS[1])
if at and tonumber(at) > tonumber(ARGV[1]) - tonumber(ARGV[2]) then return at end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return false
"""
SWAP_SCRIPT = """
local before = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return before
"""


class RedisStore(_Guarded):
    def __init__(self, url: str) -> None:
        import redis  # the distributed extra

        super().__init__()
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._first_script = self._redis.register_script(FIRST_SCRIPT)
        self._swap = self._redis.register_script(SWAP_SCRIPT)

    def count(self, key: str, amount: int, window: float, now: float) -> tuple[int, int]:
        index = int(now // window)
        name = f"{REDIS_PREFIX}count:{key}:"
        try:
            pipe = self._redis.pipeline()
            pipe.incrby(f"{name}{index}", amount)
            pipe.expire(f"{name}{index}", _seconds(2 * window))
            pipe.get(f"{name}{index - 1}")
            current, _, previous = pipe.execute()
        except Exception as exc:  # noqa: BLE001 - see _Guarded
            return self._failed("count", exc).count(key, amount, window, now)
        return int(current), int(previous or 0)

    def add(self, key: str, member: str, window: float, now: float) -> int:
        name = f"{REDIS_PREFIX}members:{key}"
        try:
            pipe = self._redis.pipeline()
            pipe.zadd(name, {member: now})
            pipe.zremrangebyscore(name, "-inf", now - window)
            pipe.zcard(name)
            pipe.expire(name, _seconds(window))
            _, _, found, _ = pipe.execute()
        except Exception as exc:  # noqa: BLE001 - see _Guarded
            return self._failed("add", exc).add(key, member, window, now)
        return int(found)

    def swap(self, key: str, value: str, keep: float, now: float) -> tuple[str, float] | None:
        try:
            before = self._swap(keys=[f"{REDIS_PREFIX}value:{key}"], args=[f"{now!r} {value}", _seconds(keep)])
        except Exception as exc:  # noqa: BLE001 - see _Guarded
            return self._failed("swap", exc).swap(key, value, keep, now)
        if before is None:
            return None
        at, _, stored = before.decode().partition(" ")
        return stored, float(at)

    def _first(self, key: str, window: float, now: float) -> float | None:
        try:
            standing = self._first_script(keys=[f"{REDIS_PREFIX}flag:{key}"],
                                          args=[repr(now), window, _seconds(window)])
        except Exception as exc:  # noqa: BLE001 - see _Guarded
            return None if self._failed("first", exc).first(key, window, now) else now
        return None if standing is None else float(standing)


def _seconds(window: float) -> int:
    return max(1, math.ceil(window)) + 1


def detection_store(rate_limit_storage: str, shared_dir: Path | None) -> DetectionStore:
    """Redis when the rate limits are there (every replica), the run directory's file when
    several API processes serve without it, else this process's memory."""
    if rate_limit_storage.startswith(("redis://", "rediss://")):
        return RedisStore(rate_limit_storage)
    if shared_dir is not None:
        return FileStore(shared_dir)
    return MemoryStore()
