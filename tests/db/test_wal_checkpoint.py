"""A clean shutdown leaves SQLite's data in the database file itself: the app's lifespan ends
with ``PRAGMA wal_checkpoint(TRUNCATE)``, so a copy of ``mlservice.db`` alone (a file backup,
a ``sqlite3`` shell on another machine) holds everything, and an empty WAL is left behind."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlservice.app import create_app
from mlservice.auth import deps
from mlservice.auth.service import ensure_first_admin
from mlservice.db import Database
from mlservice.db.migrate import upgrade
from tests.conftest import make_settings
from tests.helpers import Accounts


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple]:
    """An app on its own SQLite file in its data directory, as `mlservice serve` runs it."""
    settings = make_settings(tmp_path)
    database = Database(settings.effective_database_url, timeout=settings.db_timeout)
    upgrade(database)
    with database.session(write=True) as session:
        ensure_first_admin(session, settings)
    try:
        yield settings, database, Path(database.url.database)
    finally:
        database.dispose()


def _wal_bytes(db_file: Path) -> int:
    wal = db_file.with_name(db_file.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def _usernames(db_file: Path, copy_dir: Path) -> set[str]:
    copy_dir.mkdir()
    shutil.copyfile(db_file, copy_dir / db_file.name)  # the main file only: no -wal, no -shm
    with sqlite3.connect(copy_dir / db_file.name) as copy:
        return {name for (name,) in copy.execute("SELECT username FROM users")}


def test_lifespan_end_checkpoints_the_wal_into_the_database_file(fresh, tmp_path: Path) -> None:
    settings, database, db_file = fresh
    with TestClient(create_app(settings, database)) as client:
        Accounts(client).create("walrus")
        assert _wal_bytes(db_file) > 0  # the new row is in the WAL while the service runs
    # The engine is still open (not disposed), so SQLite's own checkpoint-on-last-close has
    # not run: what is in the file is the lifespan's doing.
    assert _wal_bytes(db_file) == 0
    assert "walrus" in _usernames(db_file, tmp_path / "copy")


def test_a_last_used_write_still_in_flight_lands_before_the_checkpoint(
    fresh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a token's last-used time is written off the event loop after the answer; the
    lifespan waits for it before its checkpoint (CI once found its one WAL frame, 4,152 bytes,
    after a shutdown). Here the write holds back until the checkpoint starts, or 2 s: a lifespan
    that does not wait checkpoints first and the write lands after it."""
    settings, database, db_file = fresh
    checkpointing, touched = threading.Event(), threading.Event()
    checkpoint, touch = Database.checkpoint, deps._touch_now

    def announced_checkpoint(self: Database) -> None:
        checkpointing.set()
        checkpoint(self)

    def late_touch(*args, **kwargs):  # type: ignore[no-untyped-def]
        checkpointing.wait(2)
        time.sleep(0.2)  # into the checkpoint, if it did not wait for us
        touch(*args, **kwargs)  # and commit
        touched.set()

    monkeypatch.setattr(Database, "checkpoint", announced_checkpoint)
    monkeypatch.setattr(deps, "_touch_now", late_touch)
    with TestClient(create_app(settings, database)) as client:
        admin = Accounts(client).system_admin  # a new session token, never used yet
        assert client.get("/auth/user-info", headers=admin).status_code == 200
    assert touched.wait(5)  # written, before or after the lifespan's end
    assert _wal_bytes(db_file) == 0
    with sqlite3.connect(db_file) as copy:
        used = copy.execute("SELECT count(*) FROM auth_tokens WHERE last_used_at IS NOT NULL")
        assert used.fetchone() == (1,)


def test_a_reader_elsewhere_delays_shutdown_by_at_most_the_short_busy_timeout(
    fresh, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, database, db_file = fresh
    other = sqlite3.connect(db_file, isolation_level=None)  # another process's open read
    try:
        with TestClient(create_app(settings, database)) as client:
            Accounts(client).create("walrus")
            other.execute("BEGIN")
            other.execute("SELECT count(*) FROM users").fetchone()
            caplog.set_level(logging.INFO, logger="mlservice.db.engine")
            started = time.monotonic()
        assert (
            time.monotonic() - started < 5
        )  # the checkpoint waits ~1 s, not the 60 s busy timeout
        assert any("not fully checkpointed" in r.getMessage() for r in caplog.records)
        other.execute("COMMIT")
    finally:
        other.close()
    # the database still works, and the next checkpoint (the next shutdown) completes
    with database.session() as session:
        assert session.connection().exec_driver_sql("SELECT count(*) FROM users").scalar() == 2
    database.checkpoint()
    assert _wal_bytes(db_file) == 0
    assert "walrus" in _usernames(db_file, tmp_path / "copy")


def test_checkpoint_is_sqlite_only_and_never_raises(database: Database) -> None:
    database.checkpoint()  # PostgreSQL: nothing to do; SQLite (the shared test file): works
    with database.session() as session:  # and the engine's pool is as good as before
        assert session.connection().exec_driver_sql("SELECT 1").scalar() == 1


def test_a_failing_checkpoint_logs_a_warning_and_shutdown_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gone' / 'mlservice.db'}", timeout=1)
    shutil.rmtree(tmp_path / "gone")  # the data directory vanished: SQLite cannot open the file
    try:
        with caplog.at_level(logging.WARNING, logger="mlservice.db.engine"):
            database.checkpoint()
    finally:
        database.dispose()
    assert any("could not checkpoint the SQLite WAL" in r.getMessage() for r in caplog.records)
