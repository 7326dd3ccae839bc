"""Database snapshots and their restore.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the live file in one step
under a read transaction, so the copy is one consistent moment while the service keeps writing.
PostgreSQL: ``pg_dump`` in custom format, run on a snapshot exported from a REPEATABLE READ
transaction; the same transaction reads the artifact references and row counts, so all three
describe one moment. Restore uses ``pg_restore``. Both tools come with the PostgreSQL client
(Debian/Ubuntu: postgresql-client) and must be on PATH, of the server's major version or newer."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, create_engine, func, inspect, select, table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from mlservice.backup.manifest import BackupError
from mlservice.backup.references import Reference, artifact_references

SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"


@dataclass
class Snapshot:
    kind: str
    file: str
    revision: str | None
    tables: dict[str, int]
    references: list[Reference]


def kind_of(url: str) -> str:
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url} is not a SQLite file")
    return Path(database).resolve()


def describe(connection: Connection) -> tuple[str | None, dict[str, int], list[Reference]]:
    """The snapshot's migration revision, row count of every table, and artifact references."""
    names = sorted(inspect(connection).get_table_names())
    if "alembic_version" not in names:
        raise BackupError(
            "the database has no alembic_version table: it was never migrated by ML Service"
        )
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    counts = {
        name: connection.execute(select(func.count()).select_from(table(name))).scalar_one()
        for name in names
    }
    return revision, counts, artifact_references(connection)


@contextmanager
def read_only_sqlite(path: Path) -> Iterator[Connection]:
    """A connection that cannot change the file (nor switch it to WAL, as the service's engine would)."""
    engine = create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True),
        poolclass=NullPool,
    )
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def snapshot_sqlite(url: str, directory: Path, timeout: float) -> Snapshot:
    source_path = sqlite_path(url)
    if not source_path.is_file():
        raise BackupError(
            f"there is no database at {source_path}: nothing to back up (check ML_DATA_DIR / ML_DATABASE_URL)"
        )
    target = directory / SQLITE_FILE
    source = sqlite3.connect(source_path, timeout=timeout)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # all pages in one step: one read transaction, one moment
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            copy.close()
    finally:
        source.close()
    with read_only_sqlite(target) as connection:
        revision, counts, references = describe(connection)
    return Snapshot("sqlite", SQLITE_FILE, revision, counts, references)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not on PATH: backups of a PostgreSQL database use the PostgreSQL client tools "
            f"(Debian/Ubuntu: apt install postgresql-client, of the server's major version or newer)"
        )
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq takes it, and the environment that carries its password (not the
    command line, which other users of the machine can read)."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(drivername="postgresql", password=None).render_as_string(
        hide_password=False
    ), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(
            f"{what} failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )


def snapshot_postgres(url: str, directory: Path) -> Snapshot:
    pg_dump = _tool("pg_dump")
    target = directory / POSTGRES_FILE
    uri, env = _libpq(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with (
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection,
            connection.begin(),
        ):
            exported = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            # The dump sees exactly this transaction's snapshot while the service keeps writing.
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={exported}",
                    "--file",
                    str(target),
                    "--dbname",
                    uri,
                ],
                env,
                "pg_dump",
            )
            revision, counts, references = describe(connection)
    finally:
        engine.dispose()
    return Snapshot("postgresql", POSTGRES_FILE, revision, counts, references)


def postgres_tables(url: str) -> list[str]:
    """Tables in the target database's own schemas; raises a clear error if it is unreachable."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    text(
                        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
                    )
                ).scalars()
            )
    except Exception as exc:  # noqa: BLE001 - any failure to connect gets one actionable message
        shown = make_url(url).render_as_string(hide_password=True)
        raise BackupError(
            f"cannot open the target database {shown}: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}. Create it empty first "
            "(createdb), and check ML_DATABASE_URL"
        ) from None
    finally:
        engine.dispose()


def restore_postgres(url: str, dump: Path) -> dict[str, int]:
    """pg_restore into the (checked empty) database in one transaction; returns its row counts."""
    pg_restore = _tool("pg_restore")
    uri, env = _libpq(url)
    _run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            uri,
            str(dump),
        ],
        env,
        "pg_restore",
    )
    return row_counts(url)


def row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            names = sorted(inspect(connection).get_table_names())
            return {
                name: connection.execute(select(func.count()).select_from(table(name))).scalar_one()
                for name in names
            }
    finally:
        engine.dispose()


def empty_postgres(url: str) -> None:
    """Undo a restore that failed after pg_restore: drop what it created (the database was
    checked empty before, so everything in it is ours)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for name in connection.execute(
                text(
                    "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
                )
            ).scalars():
                connection.execute(text(f"DROP TABLE IF EXISTS {name} CASCADE"))
    finally:
        engine.dispose()
