"""Where the suite finds the machine's PostgreSQL and Redis (`make test` needs both); the
environment overrides each."""

from __future__ import annotations

import os

POSTGRES_SERVER_URL = os.environ.get("ML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")  # a DB number of the tests' own
