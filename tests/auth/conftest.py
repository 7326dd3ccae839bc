from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME

USER_PASSWORD = "user-password-1"


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # tests authenticate explicitly with the bearer header
    return {"Authorization": f"Bearer {response.json()['token']}"}


class Accounts:
    """Creates users of each tier through the real API and logs them in."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.system_admin = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)

    def create(self, username: str, tier: str = "user", password: str = USER_PASSWORD) -> dict:
        response = self.client.post(
            "/auth/users",
            json={"username": username, "password": password, "tier": tier},
            headers=self.system_admin,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def login_as(self, username: str, tier: str = "user") -> tuple[dict, dict[str, str]]:
        user = self.create(username, tier)
        return user, login(self.client, username, USER_PASSWORD)


@pytest.fixture
def accounts(client: TestClient) -> Accounts:
    return Accounts(client)
