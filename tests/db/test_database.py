"""The database layer on both real backends: migrations, pragmas, locking under concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, select, text

from mlservice.auth.models import User
from mlservice.db import Database
from mlservice.db.migrate import current_revision, head_revision, upgrade


def test_migrated_to_head(database: Database) -> None:
    assert current_revision(database) == head_revision()
    upgrade(database)  # idempotent
    assert current_revision(database) == head_revision()


def test_timestamps_round_trip_as_aware_utc(database: Database) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with database.session(write=True) as session:
        user = User(username="clock", password_hash="x", tier="user", created_at=moment)
        session.add(user)
        session.flush()
        user_id = user.id
    with database.session() as session:
        assert session.get(User, user_id).created_at == moment


def test_sqlite_pragmas(sqlite_database: Database) -> None:
    with sqlite_database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10_000


def test_concurrent_read_then_write_units_never_see_database_locked(database: Database) -> None:
    """The seed's "database is locked" failure: many threads each read, then write."""
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for round_ in range(10):
                with database.session(write=True) as session:
                    session.scalar(select(func.count()).select_from(User))
                    session.add(User(username=f"w{index}_{round_}", password_hash="x", tier="user"))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 80


def test_failed_unit_of_work_changes_nothing(database: Database) -> None:
    try:
        with database.session(write=True) as session:
            session.add(User(username="ghost", password_hash="x", tier="user"))
            session.flush()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0


def test_prepared_read_after_dispose_opens_a_new_connection(sqlite_database: Database) -> None:
    """On SQLite the prepared read keeps a connection per thread; disposing the database closes
    them, and the next read opens another."""
    statement = select(User.id).where(User.username == bindparam("name"))
    prepared = sqlite_database.prepared(statement)
    with sqlite_database.session(write=True) as session:
        session.add(User(username="kept", password_hash="x", tier="user"))
    assert prepared.first(name="kept") is not None
    sqlite_database.dispose()
    assert prepared.first(name="kept") is not None
    assert prepared.first(name="nobody") is None
