from __future__ import annotations

import pytest

from tests.helpers import Accounts


@pytest.fixture
def service(make_client):
    """A running app whose settings each test may adjust: (client, admin headers, settings)."""

    def start(**overrides):
        client = make_client(**overrides)
        return client, Accounts(client).system_admin, client.app.state.settings

    return start
