from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work; write requests take the write lock (SQLite) on first use."""
    database = request.app.state.database
    with database.session(write=request.method not in SAFE_METHODS) as session:
        yield session


# scope="function": commit before the response is sent. With the default ("request") FastAPI
# runs the exit code after sending, so a fast client could use what it was just told about
# (a login token, a revoked token) before the commit.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
