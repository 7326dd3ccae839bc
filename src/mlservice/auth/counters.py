"""Fixed-window counters shared by the API processes of one machine (``serve --workers N``
without Redis): the rate limits and the login lockout count across processes.

A ``db.sidecar`` file, not the service's database (why: see there). The methods are the subset
of ``limits``' storage that ``auth.lockout`` uses, so either can back it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from mlservice.db.sidecar import SidecarFile

SCHEMA = "CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL)"
FILE_NAME = "counters.sqlite"


class SharedCounters:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self._file = SidecarFile(self.path, SCHEMA)

    def _db(self) -> sqlite3.Connection:
        return self._file.connection()

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` in the window of ``key``, starting a new ``expiry``-second window when
        the last one ended; returns the count in the window."""
        now = time.time()
        row = (
            self._db()
            .execute(
                "INSERT INTO counters (key, count, expires) VALUES (?1, ?2, ?3 + ?4) "
                "ON CONFLICT (key) DO UPDATE SET "
                "count = CASE WHEN expires <= ?3 THEN ?2 ELSE count + ?2 END, "
                "expires = CASE WHEN expires <= ?3 THEN ?3 + ?4 ELSE expires END "
                "RETURNING count",
                (key, amount, now, expiry),
            )
            .fetchone()
        )
        return int(row[0])

    def get(self, key: str) -> int:
        row = (
            self._db()
            .execute("SELECT count FROM counters WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._db().execute("SELECT expires FROM counters WHERE key = ?", (key,)).fetchone()
        return float(row[0]) if row else time.time()

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM counters WHERE key = ?", (key,))

    def sweep(self) -> None:
        """Drop ended windows (keys of one-off IPs and tokens would otherwise pile up)."""
        self._db().execute("DELETE FROM counters WHERE expires <= ?", (time.time(),))
