from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mlservice.errors import DatabaseBusyError

log = logging.getLogger(__name__)

WRITE_OPTION = "mlservice_write"
LOCK_RETRIES = 5
# How long a shutdown checkpoint waits for other connections (other API processes, workers):
# long enough for a short write to finish, short enough not to hold up a stop or restart.
CHECKPOINT_BUSY_MS = 1000


def is_lock_error(error: BaseException) -> bool:
    message = str(getattr(error, "orig", error)).lower()
    return "database is locked" in message or "database is busy" in message


class PreparedRead:
    """A one-row read for the hottest path (every authenticated request): compiled once for the
    engine's dialect and run on a DBAPI connection (kept per thread on SQLite, from the pool
    otherwise), with the columns' own result processors. SQLAlchemy's execution layer (events,
    BEGIN/ROLLBACK, result objects) costs ~20x the query itself here: ~250 us against ~11 us for
    an indexed lookup on SQLite.
    Parameters go to the driver as given: plain strings and numbers only."""

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self._engine = engine
        self._sql = str(compiled)
        self._order = compiled.positiontup if compiled.positional else None
        self._processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        # SQLite: each thread (in practice the event loop's) keeps its connection between reads
        # instead of a pool checkout and return (~8 us, more than the lookup). The connection is
        # in autocommit mode, so a read holds no transaction once its statement is done.
        self._kept: threading.local | None = threading.local() if dialect.name == "sqlite" else None
        self._opened: list[Any] = []
        self._opened_lock = threading.Lock()

    def first(self, **params: Any) -> tuple[Any, ...] | None:
        arguments: Any = params if self._order is None else tuple(params[name] for name in self._order)
        if self._kept is not None:
            row = self._first_on_kept(arguments)
        else:
            connection = self._engine.raw_connection()
            try:
                row = self._fetch(connection, arguments)
            finally:
                connection.close()  # back to the pool, which ends the driver's transaction
        if row is None:
            return None
        return tuple(value if process is None else process(value) for value, process in zip(row, self._processors))

    def _fetch(self, connection: Any, arguments: Any) -> Any:
        cursor = connection.cursor()
        try:
            cursor.execute(self._sql, arguments)
            return cursor.fetchone()
        finally:
            cursor.close()

    def _first_on_kept(self, arguments: Any) -> Any:
        kept = self._kept
        assert kept is not None
        connection = getattr(kept, "connection", None)
        if connection is None:
            pooled = self._engine.raw_connection()  # configured by the engine's connect hook
            pooled.detach()  # ours now: the pool neither resets nor closes it
            connection = pooled.dbapi_connection
            with self._opened_lock:
                self._opened.append(connection)
            kept.connection = connection
        try:
            return self._fetch(connection, arguments)
        except Exception:
            kept.connection = None  # a connection in doubt is not used again
            self._close(connection)
            raise

    def _close(self, connection: Any) -> None:
        with self._opened_lock:
            if connection in self._opened:
                self._opened.remove(connection)
        try:
            connection.close()
        except Exception:
            log.debug("could not close a kept connection", exc_info=True)

    def close(self) -> None:
        """Close the kept connections (every thread's); the next read opens a new one."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
            if self._kept is not None:
                self._kept = threading.local()
        for connection in opened:
            try:
                connection.close()
            except Exception:
                log.debug("could not close a kept connection", exc_info=True)


class Database:
    """One engine and its session factories.

    SQLite (the embedded default) runs in WAL mode with foreign keys on. A transaction that will
    write starts with ``BEGIN IMMEDIATE``: it waits for the write lock up front (busy timeout,
    then retries with exponential backoff) instead of failing half-way when a read transaction
    tries to upgrade — the "database is locked" errors 0.11.2 suffered from.
    """

    def __init__(self, url: str, *, timeout: float = 60.0, pool_size: int = 10) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = self._create_engine(url, timeout, pool_size)
        self._read_sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(
            bind=self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )
        self._prepared: dict[Select[Any], PreparedRead] = {}  # statements compare by identity

    def prepared(self, statement: Select[Any]) -> PreparedRead:
        """The statement (a module-level constant) as a :class:`PreparedRead` for this engine."""
        prepared = self._prepared.get(statement)
        if prepared is None:
            prepared = self._prepared[statement] = PreparedRead(self.engine, statement)
        return prepared

    @property
    def backend(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    def _create_engine(self, url: str, timeout: float, pool_size: int) -> Engine:
        if not self.is_sqlite:
            # The cap must exceed the request thread pool (40): a read's connection is taken in a
            # worker thread and given back on the event loop, and the loop takes one itself for
            # the bearer lookup; a smaller cap could leave the loop waiting on a pool only it frees.
            return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=50)
        database = self.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": timeout, "check_same_thread": False},
            pool_size=pool_size,
            # No cap: a SQLite connection is a file handle, and a capped pool turns 30+ concurrent
            # requests into 30-second stalls (the event loop itself checks connections out).
            max_overflow=-1,
        )
        busy_ms = int(timeout * 1000)

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN so we choose DEFERRED or IMMEDIATE.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            if connection.get_execution_options().get(WRITE_OPTION, False):
                # May time out waiting for the lock: SQLAlchemy wraps that error for the retries.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                # Cannot wait or fail on a lock, and every read request begins here: straight to
                # the driver, as SQLAlchemy's execution layer costs ~20x the statement itself.
                connection.connection.driver_connection.execute("BEGIN")

        return engine

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        session = (self._write_sessions if write else self._read_sessions)()
        try:
            if write and self.is_sqlite:
                self._acquire_write_lock(session)
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def _acquire_write_lock(self, session: Session) -> None:
        delay = 0.05
        for attempt in range(LOCK_RETRIES):
            try:
                session.connection()
                return
            except OperationalError as exc:
                if not is_lock_error(exc):
                    raise
                session.rollback()
                if attempt == LOCK_RETRIES - 1:
                    break
                log.warning("database locked, retrying in %.2fs", delay)
                time.sleep(delay * (1 + random.random()))
                delay *= 2
        raise DatabaseBusyError("the database stayed locked; try again in a moment")

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:
            log.exception("database ping failed")
            return False

    def checkpoint(self) -> None:
        """SQLite: copy the WAL into the database file and truncate the WAL, at a clean shutdown.
        SQLite does this itself only when the last connection to the file closes, which a
        process that exits without disposing every engine (``serve``, its job workers) never
        does; until then recent data lives only in ``mlservice.db-wal``, and a copy of the main
        file alone misses it. Another process still using the database (``serve --workers N``)
        can keep the WAL from being truncated: that is harmless, so this waits briefly and
        moves on. Never raises: a failed checkpoint loses nothing, the WAL is replayed on open."""
        if not self.is_sqlite:
            return
        try:
            connection = self.engine.raw_connection()
        except Exception as exc:  # noqa: BLE001 - shutdown goes on whatever happens here
            log.warning("could not checkpoint the SQLite WAL at shutdown: %s", exc)
            return
        try:
            cursor = connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
            busy, wal_pages, copied = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            cursor.close()
            if busy:
                log.info("the SQLite WAL was not fully checkpointed at shutdown (%s of %s pages "
                         "copied): another process is using the database and will finish it",
                         copied, wal_pages)
        except Exception as exc:  # noqa: BLE001 - as above
            log.warning("could not checkpoint the SQLite WAL at shutdown: %s", exc)
        finally:
            # Dropped, not returned to the pool: it carries the short busy timeout.
            try:
                connection.invalidate()
            except Exception:
                log.debug("could not close the checkpoint connection", exc_info=True)

    def dispose(self) -> None:
        for prepared in list(self._prepared.values()):
            prepared.close()
        self.engine.dispose()
