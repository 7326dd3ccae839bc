"""Every auth endpoint and rule, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from mlservice.auth.models import AuthToken, User
from mlservice.db import Database, utcnow
from tests.helpers import USER_PASSWORD, Accounts, login, wait_for
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME


def user_count(database: Database) -> int:
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(User))


def assert_error(response, status: int, code: str | None = None, contains: str = "") -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if code:
        assert error["code"] == code
    assert contains.lower() in error["message"].lower()
    return error


# Registration -------------------------------------------------------------------------------


def test_register_creates_a_plain_user(client: TestClient, database: Database) -> None:
    response = client.post("/auth/register", json={"username": "user1", "password": "secure_password"})
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "user1" and body["tier"] == "user" and body["is_active"] is True
    assert "password" not in response.text and "hash" not in response.text


@pytest.mark.parametrize(
    ("payload", "status", "code", "message"),
    [
        ({"username": "user1", "password": "short"}, 400, "weak_password", "at least 8"),
        ({"username": "samesame", "password": "SAMESAME"}, 400, "weak_password", "same as the username"),
        ({"username": "a b", "password": "long-enough-1"}, 422, "invalid_input", "username"),
        ({"username": "x", "password": "long-enough-1"}, 422, "invalid_input", "username"),
        ({"password": "long-enough-1"}, 422, "invalid_input", "username: field required"),
    ],
)
def test_register_rejects_bad_input_and_stores_nothing(
    client: TestClient, database: Database, payload, status, code, message
) -> None:
    before = user_count(database)
    assert_error(client.post("/auth/register", json=payload), status, code, message)
    assert user_count(database) == before


def test_register_duplicate_username_conflicts(client: TestClient, database: Database) -> None:
    client.post("/auth/register", json={"username": "dupe", "password": "first-password"})
    before = user_count(database)
    response = client.post("/auth/register", json={"username": "dupe", "password": "other-password"})
    assert_error(response, 409, "username_taken", "already taken")
    assert user_count(database) == before
    assert login(client, "dupe", "first-password")


def test_registration_can_be_disabled(tmp_path, database: Database) -> None:
    from mlservice.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, database, allow_registration=False)
    with TestClient(create_app(settings, database)) as client:
        response = client.post("/auth/register", json={"username": "nope", "password": "long-enough-1"})
        assert_error(response, 403, "registration_disabled", "disabled")


def test_malformed_json_is_a_clear_422(client: TestClient) -> None:
    response = client.post(
        "/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, "invalid_input", "json")


# Login, sessions, logout --------------------------------------------------------------------


def test_login_returns_the_0_11_2_shape_and_a_safe_cookie(client: TestClient) -> None:
    response = client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["token"].startswith("mls_sess_")
    assert body["user"] == {"id": body["user"]["id"], "username": ADMIN_USERNAME, "tier": "system_admin"}
    assert body["expires_at"]
    cookie = response.headers["set-cookie"].lower()
    assert "ml_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient) -> None:
    wrong = client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": "nope-nope"})
    unknown = client.post("/auth/login", json={"username": "ghost", "password": "nope-nope"})
    assert assert_error(wrong, 401, "invalid_credentials") == assert_error(unknown, 401, "invalid_credentials")


def test_user_info_and_profile(client: TestClient, accounts: Accounts) -> None:
    user, headers = accounts.login_as("alice")
    for path in ("/auth/user-info", "/auth/profile"):
        body = client.get(path, headers=headers).json()
        assert body["id"] == user["id"] and body["username"] == "alice" and body["tier"] == "user"
        assert body["is_active"] is True and body["last_login_at"] is not None


def test_user_info_is_the_account_as_stored(client: TestClient, accounts: Accounts) -> None:
    """user-info answers from the token lookup's row: it must match the stored account exactly,
    and show a change made by an earlier request at once."""
    user, headers = accounts.login_as("gina")
    stored = client.get(f"/auth/users/{user['id']}", headers=accounts.system_admin).json()
    assert client.get("/auth/user-info", headers=headers).json() == stored
    assert client.put("/auth/profile/username", json={"username": "georgina"}, headers=headers).status_code == 200
    assert client.get("/auth/user-info", headers=headers).json() == stored | {"username": "georgina"}
    login(client, "georgina", USER_PASSWORD)  # a second login moves last_login_at on
    again = client.get("/auth/user-info", headers=headers).json()
    assert again["last_login_at"] > stored["last_login_at"]
    assert again == client.get(f"/auth/users/{user['id']}", headers=accounts.system_admin).json()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "authentication required"),
        ({"Authorization": "Basic abc"}, "bearer"),
        ({"Authorization": "Bearer not-a-token"}, "unknown token"),
    ],
)
def test_unauthenticated_requests_get_401(client: TestClient, headers, message) -> None:
    assert_error(client.get("/auth/user-info", headers=headers), 401, contains=message)


def test_logout_ends_the_session(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("bob")
    response = client.post("/auth/logout", headers=headers)
    assert response.status_code == 204
    assert_error(client.get("/auth/user-info", headers=headers), 401, contains="revoked")


def test_expired_session_is_refused(client: TestClient, accounts: Accounts, database: Database) -> None:
    _, headers = accounts.login_as("carol")
    with database.session(write=True) as session:
        session.execute(update(AuthToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert_error(client.get("/auth/user-info", headers=headers), 401, contains="expired")


def test_cookie_session_needs_the_dashboard_header_for_writes(client: TestClient, accounts: Accounts) -> None:
    accounts.create("dora")
    client.post("/auth/login", json={"username": "dora", "password": USER_PASSWORD})
    assert client.get("/auth/user-info").json()["username"] == "dora"
    forged = client.post("/auth/tokens", json={"name": "csrf"})
    assert_error(forged, 403, "forbidden", "x-ml-client")
    allowed = client.post("/auth/tokens", json={"name": "mine"}, headers={"X-ML-Client": "dashboard"})
    assert allowed.status_code == 201
    logout = client.post("/auth/logout", headers={"X-ML-Client": "dashboard"})
    assert logout.status_code == 204
    assert_error(client.get("/auth/user-info"), 401)


# Own profile --------------------------------------------------------------------------------


def test_password_change_needs_the_current_one_and_ends_other_sessions(
    client: TestClient, accounts: Accounts
) -> None:
    _, first = accounts.login_as("erin")
    second = login(client, "erin", USER_PASSWORD)
    wrong = client.put(
        "/auth/profile/password",
        json={"current_password": "wrong-one", "new_password": "brand-new-pass"},
        headers=first,
    )
    assert_error(wrong, 400, "invalid_credentials", "current password")
    weak = client.put(
        "/auth/profile/password",
        json={"current_password": USER_PASSWORD, "new_password": "short"},
        headers=first,
    )
    assert_error(weak, 400, "weak_password")
    assert client.get("/auth/user-info", headers=second).status_code == 200  # nothing changed yet

    ok = client.put(
        "/auth/profile/password",
        json={"current_password": USER_PASSWORD, "new_password": "brand-new-pass"},
        headers=first,
    )
    assert ok.status_code == 200
    assert client.get("/auth/user-info", headers=first).status_code == 200
    assert_error(client.get("/auth/user-info", headers=second), 401, contains="revoked")
    assert client.post("/auth/login", json={"username": "erin", "password": USER_PASSWORD}).status_code == 401
    assert login(client, "erin", "brand-new-pass")


def test_username_change(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("frank")
    accounts.create("taken")
    assert_error(
        client.put("/auth/profile/username", json={"username": "taken"}, headers=headers),
        409,
        "username_taken",
    )
    response = client.put("/auth/profile/username", json={"username": "franklin"}, headers=headers)
    assert response.status_code == 200 and response.json()["username"] == "franklin"
    assert login(client, "franklin", USER_PASSWORD)


def test_delete_own_profile(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("gina")
    wrong = client.request("DELETE", "/auth/profile", json={"password": "not-it"}, headers=headers)
    assert_error(wrong, 400, "invalid_credentials")
    assert client.get("/auth/user-info", headers=headers).status_code == 200
    response = client.request("DELETE", "/auth/profile", json={"password": USER_PASSWORD}, headers=headers)
    assert response.status_code == 204
    assert_error(client.get("/auth/user-info", headers=headers), 401)
    assert client.post("/auth/login", json={"username": "gina", "password": USER_PASSWORD}).status_code == 401
    # The soft-deleted account frees its username.
    again = client.post("/auth/register", json={"username": "gina", "password": "another-pass"})
    assert again.status_code == 201


def test_last_system_admin_cannot_delete_itself(client: TestClient, accounts: Accounts) -> None:
    response = client.request(
        "DELETE", "/auth/profile", json={"password": ADMIN_PASSWORD}, headers=accounts.system_admin
    )
    assert_error(response, 409, "last_system_admin")
    assert client.get("/auth/user-info", headers=accounts.system_admin).status_code == 200


# Administration -----------------------------------------------------------------------------


def test_plain_users_cannot_administer(client: TestClient, accounts: Accounts) -> None:
    target, _ = accounts.login_as("target")
    _, headers = accounts.login_as("henry")
    calls = [
        ("GET", "/auth/users", None),
        ("GET", f"/auth/users/{target['id']}", None),
        ("POST", "/auth/users", {"username": "x1x", "password": "long-enough-1"}),
        ("PUT", f"/auth/users/{target['id']}", {"is_active": False}),
        ("DELETE", f"/auth/users/{target['id']}", None),
    ]
    for method, path, body in calls:
        assert_error(client.request(method, path, json=body, headers=headers), 403, "forbidden", "admin")


def test_admin_lists_users_with_pagination(client: TestClient, accounts: Accounts) -> None:
    for name in ("u1", "u2", "u3"):
        accounts.create(name + "_x")
    _, admin = accounts.login_as("ivy", "admin")
    page = client.get("/auth/users", params={"limit": 2, "offset": 1}, headers=admin).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [u["username"] for u in page["items"]] == ["u1_x", "u2_x"]
    assert_error(client.get("/auth/users", params={"limit": 0}, headers=admin), 422)


def test_admin_tier_limits(client: TestClient, accounts: Accounts, database: Database) -> None:
    _, admin = accounts.login_as("jack", "admin")
    root = client.get("/auth/user-info", headers=accounts.system_admin).json()

    created = client.post(
        "/auth/users", json={"username": "peer", "password": "long-enough-1", "tier": "admin"}, headers=admin
    )
    assert created.status_code == 201 and created.json()["tier"] == "admin"
    before = user_count(database)
    above = client.post(
        "/auth/users",
        json={"username": "boss", "password": "long-enough-1", "tier": "system_admin"},
        headers=admin,
    )
    assert_error(above, 403, contains="above your own tier")
    assert user_count(database) == before

    plain = accounts.create("kate")
    assert_error(
        client.put(f"/auth/users/{plain['id']}", json={"tier": "system_admin"}, headers=admin),
        403,
        contains="above your own tier",
    )
    for method, body in (("PUT", {"is_active": False}), ("PUT", {"tier": "user"}), ("DELETE", None)):
        response = client.request(method, f"/auth/users/{root['id']}", json=body, headers=admin)
        assert_error(response, 403, contains="system_admin")
    assert client.get("/auth/user-info", headers=accounts.system_admin).json()["tier"] == "system_admin"

    promoted = client.put(f"/auth/users/{plain['id']}", json={"tier": "admin"}, headers=admin)
    assert promoted.status_code == 200 and promoted.json()["tier"] == "admin"


def test_last_system_admin_is_protected(client: TestClient, accounts: Accounts) -> None:
    root = client.get("/auth/user-info", headers=accounts.system_admin).json()
    second = accounts.create("root2", "system_admin")
    other = login(client, "root2", USER_PASSWORD)
    # With two system admins, one may demote the other...
    demoted = client.put(f"/auth/users/{second['id']}", json={"tier": "admin"}, headers=accounts.system_admin)
    assert demoted.status_code == 200
    # ...but the remaining one can be neither demoted, deactivated nor deleted by anyone.
    for body in ({"tier": "admin"}, {"is_active": False}):
        response = client.put(f"/auth/users/{root['id']}", json=body, headers=accounts.system_admin)
        assert_error(response, 409, "last_system_admin", "last active system_admin")
    assert_error(
        client.delete(f"/auth/users/{root['id']}", headers=other), 403, contains="system_admin"
    )
    assert client.get("/auth/user-info", headers=accounts.system_admin).json()["tier"] == "system_admin"


def test_nobody_deletes_themselves_through_the_admin_api(client: TestClient, accounts: Accounts) -> None:
    user, admin = accounts.login_as("liam", "admin")
    assert_error(client.delete(f"/auth/users/{user['id']}", headers=admin), 403, contains="/auth/profile")
    assert client.get("/auth/user-info", headers=admin).status_code == 200


def test_deactivation_ends_sessions_and_tokens_at_once(client: TestClient, accounts: Accounts) -> None:
    user, headers = accounts.login_as("mia")
    api = client.post("/auth/tokens", json={"name": "ci"}, headers=headers).json()
    api_headers = {"Authorization": f"Bearer {api['token']}"}
    response = client.put(f"/auth/users/{user['id']}", json={"is_active": False}, headers=accounts.system_admin)
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert_error(client.get("/auth/user-info", headers=headers), 401)
    assert_error(client.get("/auth/user-info", headers=api_headers), 401)
    refused = client.post("/auth/login", json={"username": "mia", "password": USER_PASSWORD})
    assert_error(refused, 403, "account_inactive")
    # Reactivation does not bring the old secrets back.
    client.put(f"/auth/users/{user['id']}", json={"is_active": True}, headers=accounts.system_admin)
    assert_error(client.get("/auth/user-info", headers=api_headers), 401)
    assert login(client, "mia", USER_PASSWORD)


def test_delete_is_soft_and_ends_access(client: TestClient, accounts: Accounts, database: Database) -> None:
    user, headers = accounts.login_as("noah")
    assert client.delete(f"/auth/users/{user['id']}", headers=accounts.system_admin).status_code == 204
    assert_error(client.get(f"/auth/users/{user['id']}", headers=accounts.system_admin), 404)
    assert_error(client.get("/auth/user-info", headers=headers), 401)
    with database.session() as session:
        row = session.get(User, user["id"])
        assert row is not None and row.deleted_at is not None
    listed = client.get("/auth/users", params={"include_deleted": True}, headers=accounts.system_admin).json()
    assert user["id"] in [u["id"] for u in listed["items"]]
    assert_error(client.delete(f"/auth/users/{user['id']}", headers=accounts.system_admin), 404)


# API tokens ---------------------------------------------------------------------------------


def test_api_token_lifecycle(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("olga")
    created = client.post("/auth/tokens", json={"name": "My API Token"}, headers=headers)
    assert created.status_code == 201
    token = created.json()
    assert set(token) == {"id", "name", "token", "created_at", "expires_at"}
    assert token["token"].startswith("mls_api_")
    bearer = {"Authorization": f"Bearer {token['token']}"}
    assert client.get("/auth/user-info", headers=bearer).json()["username"] == "olga"

    listed = client.get("/auth/tokens", headers=headers)
    assert token["token"] not in listed.text
    item = listed.json()["items"][0]
    assert item["name"] == "My API Token" and item["is_active"] is True
    # On SQLite the last-used time is written off the event loop, just after the answer.
    wait_for(lambda: client.get("/auth/tokens", headers=headers).json()["items"][0]["last_used_at"],
             "the token's last-used time", timeout=5)

    revoked = client.post(f"/auth/tokens/{token['id']}/revoke", headers=headers)
    assert revoked.status_code == 200 and revoked.json()["is_active"] is False
    assert_error(client.get("/auth/user-info", headers=bearer), 401, contains="revoked")

    assert client.delete(f"/auth/tokens/{token['id']}", headers=headers).status_code == 204
    assert client.get("/auth/tokens", headers=headers).json()["total"] == 0
    assert_error(client.post(f"/auth/tokens/{token['id']}/revoke", headers=headers), 404)


def test_token_expiry(client: TestClient, accounts: Accounts) -> None:
    _, headers = accounts.login_as("pia")
    short = client.post("/auth/tokens", json={"name": "short", "expires_in_days": 2}, headers=headers).json()
    default = client.post("/auth/tokens", json={"name": "default"}, headers=headers).json()
    from datetime import datetime

    def days(t: dict) -> float:
        delta = datetime.fromisoformat(t["expires_at"]) - datetime.fromisoformat(t["created_at"])
        return delta.total_seconds() / 86400

    assert days(short) == pytest.approx(2) and days(default) == pytest.approx(365)
    assert_error(client.post("/auth/tokens", json={"name": ""}, headers=headers), 422)
    assert_error(client.post("/auth/tokens", json={"name": "x", "expires_in_days": 0}, headers=headers), 422)


def test_tokens_are_private_to_their_owner(client: TestClient, accounts: Accounts) -> None:
    _, owner = accounts.login_as("quinn")
    _, stranger = accounts.login_as("rosa")
    token = client.post("/auth/tokens", json={"name": "mine"}, headers=owner).json()
    assert client.get("/auth/tokens", headers=stranger).json()["total"] == 0
    assert_error(client.post(f"/auth/tokens/{token['id']}/revoke", headers=stranger), 404)
    assert_error(client.delete(f"/auth/tokens/{token['id']}", headers=stranger), 404)
    assert client.get("/auth/user-info", headers={"Authorization": f"Bearer {token['token']}"}).status_code == 200


def test_secrets_are_stored_only_as_hashes(client: TestClient, accounts: Accounts, database: Database) -> None:
    _, headers = accounts.login_as("sam")
    secret = client.post("/auth/tokens", json={"name": "t"}, headers=headers).json()["token"]
    with database.session() as session:
        hashes = session.scalars(select(AuthToken.token_hash)).all()
        passwords = session.scalars(select(User.password_hash)).all()
    assert secret not in hashes and all(len(h) == 64 for h in hashes)
    assert all(p.startswith("$argon2id$") for p in passwords)
    assert USER_PASSWORD not in "".join(passwords)


def test_system_token(tmp_path, database: Database) -> None:
    from mlservice.app import create_app
    from mlservice.auth.service import ensure_first_admin
    from tests.conftest import make_settings

    system_token = "s" * 40
    settings = make_settings(tmp_path, database, admin_api_token=system_token)
    with database.session(write=True) as session:
        ensure_first_admin(session, settings)
    with TestClient(create_app(settings, database)) as client:
        me = client.get("/auth/user-info", headers={"Authorization": f"Bearer {system_token}"})
        assert me.status_code == 200 and me.json()["tier"] == "system_admin"
        stored = client.get(f"/auth/users/{me.json()['id']}", headers={"Authorization": f"Bearer {system_token}"})
        assert me.json() == stored.json()
        listed = client.get("/auth/users", headers={"Authorization": f"Bearer {system_token}"})
        assert listed.status_code == 200
        near_miss = {"Authorization": f"Bearer {system_token[:-1]}x"}
        assert_error(client.get("/auth/user-info", headers=near_miss), 401)
