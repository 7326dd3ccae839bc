"""Database access: one engine per process, one session dependency, Alembic migrations."""

from mlservice.db.base import Base, UTCDateTime, utcnow
from mlservice.db.engine import Database, DatabaseBusyError
from mlservice.db.session import DatabaseDep, SessionDep, db_io, get_session

__all__ = [
    "Base",
    "Database",
    "DatabaseBusyError",
    "DatabaseDep",
    "SessionDep",
    "UTCDateTime",
    "db_io",
    "get_session",
    "utcnow",
]
