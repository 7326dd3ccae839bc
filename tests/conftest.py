"""Shared fixtures: real databases (a SQLite file and the machine's PostgreSQL), a real app.

Every test that takes ``database`` runs once per backend. Each backend is migrated once per
session; tables are emptied after every test so tests stay independent.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mlservice.app import create_app
from mlservice.auth.service import ensure_first_admin
from mlservice.db import Database
from mlservice.db.migrate import upgrade
from mlservice.db.migrations.metadata import metadata
from mlservice.settings import Settings
from tests.backends import POSTGRES_SERVER_URL

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"
REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Ctrl-C as at a terminal, however the suite was started: a shell that starts a command in
    the background without job control (``cmd &`` in a script, ``nohup``) makes it ignore
    SIGINT, and every server a test starts inherited that, so the tests that send it Ctrl-C
    failed. A handler (unlike "ignore") is not inherited by the programs the suite starts."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away database on the real PostgreSQL server (never skipped: CI must run it)."""
    server = make_url(POSTGRES_SERVER_URL)
    name = f"mlservice_test_{uuid.uuid4().hex[:10]}"
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_SERVER_URL} is required for these tests: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    cache: dict[str, Database] = {}

    def get(backend: str) -> Database:
        if backend not in cache:
            if backend == "sqlite":
                url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'mlservice.db'}"
            else:
                url = request.getfixturevalue("postgres_url")
            database = Database(url, timeout=10)
            upgrade(database)
            cache[backend] = database
        return cache[backend]

    yield get
    for database in cache.values():
        database.dispose()


def _empty_tables(database: Database) -> None:
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with database.engine.begin() as connection:
        if database.is_sqlite:
            for name in tables:
                connection.execute(text(f'DELETE FROM "{name}"'))
        else:
            quoted = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, _migrated) -> Iterator[Database]:
    database = _migrated(request.param)
    yield database
    _empty_tables(database)


@pytest.fixture
def sqlite_database(_migrated) -> Iterator[Database]:
    """For tests about SQLite itself (locking, pragmas)."""
    database = _migrated("sqlite")
    yield database
    _empty_tables(database)


def make_settings(tmp_path: Path, database: Database | None = None, **overrides) -> Settings:
    values = {
        "data_dir": tmp_path / "data",
        "admin_username": ADMIN_USERNAME,
        "admin_password": ADMIN_PASSWORD,
        # Two worker processes, like the 2-core machine the suite is sized for.
        "worker_cpu_per_task": 1.0,
        "max_workers_limit": 2,
    }
    if database is not None:
        values["database_url"] = database.url.render_as_string(hide_password=False)
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path: Path, database: Database) -> Settings:
    return make_settings(tmp_path, database)


@pytest.fixture
def app(settings: Settings, database: Database):
    with database.session(write=True) as session:
        ensure_first_admin(session, settings)
    return create_app(settings, database)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@contextmanager
def client_factory(tmp_path: Path, database: Database) -> Iterator[Callable[..., TestClient]]:
    """Clients on apps with per-test settings over one database; every one is closed at the end."""
    with ExitStack() as opened:
        def make(**overrides) -> TestClient:
            settings = make_settings(tmp_path, database, **overrides)
            with database.session(write=True) as session:
                ensure_first_admin(session, settings)
            return opened.enter_context(TestClient(create_app(settings, database)))

        yield make


@pytest.fixture
def make_client(tmp_path: Path, database: Database) -> Iterator[Callable[..., TestClient]]:
    """A client on an app with extra settings (``make_client(trust_proxy=True)``)."""
    with client_factory(tmp_path, database) as make:
        yield make


@pytest.fixture
def accounts(client: TestClient):
    from tests.helpers import Accounts

    return Accounts(client)
