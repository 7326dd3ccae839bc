"""Small SQLite files beside the database that the API processes of one machine share
(``serve --workers N`` without Redis): counters and detection windows written on hot paths,
worthless after a reboot, that must never queue behind a long write of the real data.

SQLite gives what they need with nothing to install or run: atomic read-modify-writes across
processes (one ``INSERT … ON CONFLICT … RETURNING``, or a short ``BEGIN IMMEDIATE``), and a
process killed mid-write leaves the file consistent. ``synchronous=OFF``: a power cut may lose
the last writes, which is no worse than counters kept in memory."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class SidecarFile:
    """One connection per thread (sqlite3 objects stay in theirs), opened on first use."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._local = threading.local()
        self.connection().executescript(schema)

    def connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            self._local.db = db
        return db
