from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from mlservice.app import create_app
from mlservice.auth.service import ensure_first_admin
from tests.conftest import make_settings
from tests.helpers import Accounts


@pytest.fixture
def service(tmp_path, database):
    """A running app whose settings each test may adjust."""
    opened = []

    def start(**overrides):
        settings = make_settings(tmp_path, database, **overrides)
        with database.session(write=True) as session:
            ensure_first_admin(session, settings)
        client = TestClient(create_app(settings, database))
        client.__enter__()
        opened.append(client)
        return client, Accounts(client).system_admin, settings

    yield start
    for client in opened:
        client.__exit__(None, None, None)
