from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from mlservice.db.engine import Database

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")
# Threads that may wait for SQLite's write lock at once; more writers queue on the event loop.
# In the shared thread pool, waiting writers could take every thread, and the writer holding
# the lock would then wait for a thread to finish and commit: a stall of ML_DB_TIMEOUT.
WRITE_WAITERS = 4
_write_waiters: RunVar[CapacityLimiter] = RunVar("mlservice_write_waiters")  # one per event loop


def _write_limiter() -> CapacityLimiter:
    try:
        return _write_waiters.get()
    except LookupError:
        _write_waiters.set(limiter := CapacityLimiter(WRITE_WAITERS))
        return limiter


async def db_io(database: Database, call: Callable[..., T], *args: Any) -> T:
    """A short blocking database call made from async code: inline on SQLite (an in-process
    call of ~0.1 ms, cheaper than a hop to a thread), in a worker thread on PostgreSQL (network
    round trips, which under load take milliseconds and would stall every other request)."""
    if database.is_sqlite:
        return call(*args)
    return await run_in_threadpool(call, *args)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work; write requests take the write lock (SQLite) on first use.

    Async so that a read costs no hop to a worker thread: opening a session does no I/O, and
    ending a read transaction is cheap (see :func:`db_io`). A write may wait for SQLite's write
    lock or for a durable commit, so it starts and commits in a worker thread; a failed unit of
    work rolls back here, at once, even when the request is being cancelled."""
    database = request.app.state.database
    write = request.method not in SAFE_METHODS
    unit = database.session(write=write)
    if write:
        session = await to_thread.run_sync(unit.__enter__, limiter=_write_limiter())
    else:
        session = unit.__enter__()
    try:
        yield session
    except BaseException as exc:
        if not unit.__exit__(type(exc), exc, exc.__traceback__):
            raise
        return
    if write:
        await run_in_threadpool(unit.__exit__, None, None, None)
    else:
        await db_io(database, unit.__exit__, None, None, None)


# scope="function": commit before the response is sent. With the default ("request") FastAPI
# runs the exit code after sending, so a fast client could use what it was just told about
# (a login token, a revoked token) before the commit.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_database(request: Request) -> Database:
    return request.app.state.database


DatabaseDep = Annotated["Database", Depends(get_database)]
