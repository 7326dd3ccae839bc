"""The event log and security monitoring, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import timedelta

import redis
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from mlservice.alerts.models import Alert
from mlservice.db import Database, utcnow
from mlservice.events.models import Event
from mlservice.events.queries import delete_expired_events
from mlservice.events.summary import summarize
from tests.backends import REDIS_URL
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME
from tests.helpers import SMALL_PARAMS, USER_PASSWORD, Accounts, adult_sample, login, records, train

UA = {"User-Agent": "events-test/1.0"}


def events(client: TestClient, headers: dict, path: str = "/events", **params) -> dict:
    response = client.get(path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def types(page: dict) -> list[str]:
    return [item["type"] for item in page["items"]]


def test_ip_user_agent_and_request_metadata_are_recorded(client: TestClient, accounts: Accounts) -> None:
    admin = accounts.system_admin
    response = client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
                           headers={"User-Agent": "Mozilla/5.0 events-test", "X-ML-Client": "dashboard"})
    assert response.status_code == 200
    client.cookies.clear()
    page = events(client, admin, type="login.ok", source="gui")
    assert page["total"] == 1
    event = page["items"][0]
    assert event["client_ip"] == "testclient" and event["user_agent"] == "Mozilla/5.0 events-test"
    assert event["method"] == "POST" and event["path"] == "/auth/login" and event["status_code"] == 200
    assert event["duration_ms"] > 0 and event["username"] == ADMIN_USERNAME and event["auth_kind"] == "session"
    # The first login (the fixture's) came with the test client's User-Agent: a new client from a
    # known IP is noted, not flagged (a second browser, the CLI next to the dashboard).
    assert event["suspicious"] is False and event["reasons"] == []
    assert event["message"] == "user 'admin' used with a new client (Mozilla)"
    detail = client.get(f"/events/{event['id']}", headers=admin).json()
    assert detail["input"] == {"username": ADMIN_USERNAME} and "session_token_id" in detail["output"]

    created = client.post("/auth/tokens", json={"name": "ci"}, headers=admin | UA)
    page = events(client, admin, type="token")
    assert types(page) == ["token.created"]
    item = page["items"][0]
    assert item["user_agent"] == "events-test/1.0" and item["source"] == "api" and item["auth_kind"] == "session"
    assert client.get(f"/events/{item['id']}", headers=admin).json()["output"]["api_token_id"] == created.json()["id"]


def test_forged_forwarded_for_is_ignored_unless_the_proxy_is_trusted(make_client) -> None:
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
    for trusted, expected in ((False, "testclient"), (True, "203.0.113.9")):
        client = make_client(trust_proxy=trusted, trusted_proxies=["testclient"])
        client.post("/auth/login", json={"username": "ghost", "password": "whatever-1"}, headers=forged)
        admin = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
        failed = events(client, admin, type="login.failed")["items"]
        assert [e["client_ip"] for e in failed] == [expected]
        assert events(client, admin, "/events/by-ip/203.0.113.9")["total"] == (1 if trusted else 0)
        client.post("/auth/logout", headers=admin)
        with client.app.state.database.engine.begin() as connection:
            connection.execute(text("DELETE FROM events"))


def test_failed_logins_are_flagged_then_locked_out_then_allowed_again(make_client, database: Database) -> None:
    client = make_client(login_lockout_s=1)
    Accounts(client).create("victim")
    for _ in range(10):
        response = client.post("/auth/login", json={"username": "victim", "password": "guess-guess"})
        assert response.status_code == 401
    locked = client.post("/auth/login", json={"username": "victim", "password": USER_PASSWORD})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "login_locked"
    assert locked.headers["Retry-After"] == "1"  # the whole 1 s lockout, rounded up

    admin = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
    failed = events(client, admin, type="login.failed", username="victim", limit=20)["items"]
    assert len(failed) == 10
    flagged = [e for e in failed if e["suspicious"]]
    assert len(flagged) == 6  # from the 5th failure (ML_SUSPICIOUS_LOGIN_FAILURES) on
    assert any("failed logins for username 'victim'" in reason for reason in flagged[0]["reasons"])
    assert types(events(client, admin, "/events/suspicious", type="login.locked")) == ["login.locked"]
    assert events(client, admin, type="login.blocked")["items"][0]["status_code"] == 429
    with database.session() as session:
        alerts = session.scalars(select(Alert).where(Alert.kind == "security")).all()
        assert alerts and all(a.admin_only for a in alerts)
        assert any(a.link["type"] == "event" for a in alerts)

    time.sleep(1.2)
    assert login(client, "victim", USER_PASSWORD)


def test_lockout_per_ip_across_usernames(make_client) -> None:
    client = make_client(login_max_failures_per_ip=3, login_lockout_s=1)
    for name in ("anna", "boris", "clara"):
        assert client.post("/auth/login", json={"username": name, "password": "guess-guess"}).status_code == 401
    response = client.post("/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert response.status_code == 429 and "Retry-After" in response.headers
    time.sleep(1.2)
    assert login(client, ADMIN_USERNAME, ADMIN_PASSWORD)


def test_revoked_token_use_is_flagged(client: TestClient, accounts: Accounts) -> None:
    user, headers = accounts.login_as("alice")
    token = client.post("/auth/tokens", json={"name": "robot"}, headers=headers).json()
    client.post(f"/auth/tokens/{token['id']}/revoke", headers=headers)
    response = client.get("/auth/user-info", headers={"Authorization": f"Bearer {token['token']}"})
    assert response.status_code == 401
    client.get("/auth/user-info", headers={"Authorization": "Bearer mls_api_made-up"})

    page = events(client, accounts.system_admin, "/events/suspicious", type="auth.token_rejected")
    assert page["total"] == 2
    revoked = next(e for e in page["items"] if e["user_id"] is not None)
    assert revoked["user_id"] == user["id"] and revoked["token_id"] == token["id"]
    assert "revoked" in revoked["reasons"][0] and revoked["status_code"] == 401
    # The owner sees the misuse of their token among their own events.
    assert "auth.token_rejected" in types(events(client, headers, suspicious=True))


def test_every_endpoint_filters_and_paginates(client: TestClient, accounts: Accounts) -> None:
    admin = accounts.system_admin
    user, headers = accounts.login_as("bob")
    for _ in range(3):
        client.post("/auth/login", json={"username": "bob", "password": "wrong-wrong"})
    client.post("/auth/login", json={"username": "bob", "password": USER_PASSWORD})

    everything = events(client, admin, limit=500)
    total = everything["total"]
    first = events(client, admin, limit=2, offset=0)
    second = events(client, admin, limit=2, offset=2)
    assert first["total"] == total and first["limit"] == 2 and second["offset"] == 2
    assert [e["id"] for e in first["items"] + second["items"]] == [e["id"] for e in everything["items"][:4]]

    assert events(client, admin, type="login")["total"] == 6  # admin + bob + 3 failed + bob again
    assert events(client, admin, type="login.failed")["total"] == 3
    assert events(client, admin, user_id=user["id"], type="login.ok")["total"] == 2
    assert events(client, admin, username="bob")["total"] >= 5
    assert events(client, admin, source="gui")["total"] == 0
    assert events(client, admin, ip="testclient")["total"] == total
    assert events(client, admin, model_key="nope")["total"] == 0
    assert events(client, admin, suspicious=False)["total"] == total
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    assert events(client, admin, since=later)["total"] == 0
    assert events(client, admin, until=later)["total"] == total

    by_ip = events(client, admin, "/events/by-ip/testclient", type="login.failed", limit=1, offset=1)
    assert by_ip["total"] == 3 and len(by_ip["items"]) == 1
    assert events(client, admin, "/events/by-ip/198.51.100.7")["total"] == 0
    for _ in range(5):
        client.get("/auth/users", headers=headers)  # 403 each: the 5th is flagged
    suspicious = events(client, admin, "/events/suspicious", limit=1)
    assert suspicious["total"] == 1 and len(suspicious["items"]) == 1
    assert suspicious["items"][0]["type"] == "access.forbidden"
    assert "forbidden (403)" in suspicious["items"][0]["reasons"][0]
    assert events(client, admin, "/events/suspicious", type="login")["total"] == 0
    assert client.get("/events/999999", headers=admin).status_code == 404
    assert client.get("/events", headers=admin, params={"limit": 0}).status_code == 422
    client.cookies.clear()
    assert client.get("/events").status_code == 401


def test_a_user_cannot_read_another_users_events(client: TestClient, accounts: Accounts) -> None:
    admin = accounts.system_admin
    alice, alice_headers = accounts.login_as("alice")
    _, bob_headers = accounts.login_as("bob")
    client.post("/auth/tokens", json={"name": "bob's"}, headers=bob_headers)
    bob_event = events(client, admin, type="token.created")["items"][0]

    own = events(client, alice_headers, limit=500)
    assert own["total"] >= 1 and {e["user_id"] for e in own["items"]} == {alice["id"]}
    assert events(client, alice_headers, user_id=bob_event["user_id"])["total"] == own["total"]
    assert events(client, alice_headers, type="token.created")["total"] == 0
    assert events(client, alice_headers, "/events/by-ip/testclient")["total"] == own["total"]
    assert client.get(f"/events/{bob_event['id']}", headers=alice_headers).status_code == 404
    assert client.get(f"/events/{bob_event['id']}", headers=bob_headers).status_code == 200


def test_secrets_never_appear_in_events(client: TestClient, accounts: Accounts, database: Database) -> None:
    new_password = "brand-new-password-42"
    client.post("/auth/register", json={"username": "carol", "password": USER_PASSWORD})
    client.post("/auth/login", json={"username": "carol", "password": "not-her-password-7"})
    headers = login(client, "carol", USER_PASSWORD)
    created = client.post("/auth/tokens", json={"name": "secret-holder"}, headers=headers).json()
    api = {"Authorization": f"Bearer {created['token']}"}
    client.get("/auth/user-info", headers=api)
    client.put("/auth/profile/password", headers=headers,
               json={"current_password": USER_PASSWORD, "new_password": new_password})
    client.post(f"/auth/tokens/{created['id']}/revoke", headers=headers)
    client.get("/auth/user-info", headers=api)  # revoked: flagged, with a fingerprint only
    client.post("/auth/users", headers=accounts.system_admin,
                json={"username": "dave", "password": "daves-password-99", "tier": "user"})
    client.post("/auth/logout", headers=headers)
    session_secret = headers["Authorization"].removeprefix("Bearer ")
    admin_secret = accounts.system_admin["Authorization"].removeprefix("Bearer ")
    assert events(client, accounts.system_admin)["total"] >= 8

    with database.engine.connect() as connection:
        rows = connection.execute(select(Event.__table__)).all()
    dump = "\n".join(repr(tuple(row)) for row in rows)
    for secret in (USER_PASSWORD, new_password, "not-her-password-7", "daves-password-99", ADMIN_PASSWORD,
                   created["token"], session_secret, admin_secret):
        assert secret not in dump
    assert "mls_api_" not in dump and "mls_sess_" not in dump


def test_a_new_ip_alone_is_noted_a_new_ip_with_a_new_client_is_flagged(make_client) -> None:
    client = make_client(trust_proxy=True, trusted_proxies=["testclient"])
    Accounts(client).create("erin")
    chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.0.0 Safari/537.36"
    home = {"X-Forwarded-For": "81.2.69.142", "User-Agent": chrome.format(130)}
    response = client.post("/auth/login", json={"username": "erin", "password": USER_PASSWORD}, headers=home)
    client.cookies.clear()
    erin = {"Authorization": f"Bearer {response.json()['token']}"}
    assert client.get("/auth/user-info", headers=erin | home).status_code == 200
    # The office, with a browser that has updated meanwhile: a new IP, the same client.
    office = {"X-Forwarded-For": "81.2.69.200", "User-Agent": chrome.format(131)}
    assert client.get("/auth/user-info", headers=erin | office).status_code == 200
    # Somewhere else with curl: a new IP and a new client for this session token.
    elsewhere = {"X-Forwarded-For": "192.0.2.50", "User-Agent": "curl/8.5.0"}
    assert client.get("/auth/user-info", headers=erin | elsewhere).status_code == 200

    admin = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
    noted = [e for e in events(client, admin, type="client.new", username="erin")["items"] if not e["suspicious"]]
    assert [e["client_ip"] for e in noted] == ["81.2.69.200"] and "new IP 81.2.69.200" in noted[0]["message"]
    flagged = events(client, admin, "/events/suspicious", username="erin")["items"]
    assert [e["type"] for e in flagged] == ["client.new"]
    assert flagged[0]["client_ip"] == "192.0.2.50"
    token = f"token #{flagged[0]['token_id']}"
    assert flagged[0]["reasons"] == [  # one event (one alert) for both signals
        f"{token} used from a new IP 192.0.2.50 with a new client (curl)",
        f"{token} used from 81.2.69.200 and 192.0.2.50 (distant networks) within 0 s",
    ]


def test_scanner_and_anonymous_writes_are_flagged(client: TestClient, accounts: Accounts) -> None:
    client.get("/health", headers={"User-Agent": "sqlmap/1.7.2#stable"})
    client.post("/auth/register", json={"username": "anon1", "password": "long-enough-1"},
                headers={"User-Agent": ""})
    page = events(client, accounts.system_admin, "/events/suspicious")
    reasons = [reason for item in page["items"] for reason in item["reasons"]]
    assert any("scanner" in reason and "sqlmap" in reason for reason in reasons)
    assert any("without a User-Agent" in reason for reason in reasons)
    registered = events(client, accounts.system_admin, type="user.registered")["items"][0]
    assert registered["suspicious"] is True


def test_expensive_endpoints_are_rate_limited(make_client, accounts: Accounts) -> None:
    client = make_client(rate_limit_expensive="2/minute")
    headers = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
    statuses = [client.post("/predict", json={}, headers=headers).status_code for _ in range(3)]
    assert statuses == [422, 422, 429]
    blocked = client.post("/train", json={}, headers=headers)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert blocked.json()["error"]["code"] == "too_many_requests"
    other = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)  # per token: another token has its own budget
    assert client.post("/predict", json={}, headers=other).status_code == 422
    # the sync predict limit is separate and generous by default
    assert client.post("/models/none/predict", json={"data": [{}]}, headers=headers).status_code != 429
    assert types(events(client, headers, type="request.rate_limited")) == ["request.rate_limited"]


def test_limits_and_lockout_shared_through_redis(make_client) -> None:
    url = REDIS_URL
    connection = redis.Redis.from_url(url)
    for key in connection.scan_iter("LIMITS*mlservice*"):
        connection.delete(key)
    client = make_client(rate_limit_storage=url, rate_limit_expensive="1/minute", login_max_failures=2,
                         login_lockout_s=1)
    headers = login(client, ADMIN_USERNAME, ADMIN_PASSWORD)
    assert [client.post("/quality", json={}, headers=headers).status_code for _ in range(2)] == [422, 429]
    for _ in range(2):
        client.post("/auth/login", json={"username": "redis-user", "password": "guess-guess"})
    assert client.post("/auth/login", json={"username": "redis-user", "password": "x" * 8}).status_code == 429
    assert any(b"mlservice:login:lock:user:redis-user" in key for key in connection.scan_iter("LIMITS*"))


def test_jobs_models_and_sync_predictions_are_logged(client: TestClient, accounts: Accounts) -> None:
    admin = accounts.system_admin
    frame = adult_sample(300)
    job = train(client, admin, "events_model", frame, params=SMALL_PARAMS)
    page = events(client, admin, model_key="events_model", type="train")
    assert types(page) == ["train.completed", "train.requested"]
    completed, requested = page["items"]
    assert completed["job_id"] == requested["job_id"] == job["id"]
    assert completed["source"] == "api" and completed["user_id"] == requested["user_id"]
    assert requested["client_ip"] == completed["client_ip"] == "testclient"
    assert "accuracy" in str(client.get(f"/events/{completed['id']}", headers=admin).json()["output"])
    assert events(client, admin, model_key="events_model", type="model.promoted")["total"] == 1

    rows = records(frame.drop(columns=["income"]).head(2))
    for _ in range(3):
        assert client.post("/models/events_model/predict", json={"data": rows}, headers=admin).status_code == 200
    assert events(client, admin, type="predict.sync")["total"] == 0  # not one event per call
    client.app.state.events.flush(aggregates=True)
    summary = events(client, admin, type="predict.sync")["items"]
    assert len(summary) == 1 and summary[0]["model_key"] == "events_model"
    detail = client.get(f"/events/{summary[0]['id']}", headers=admin).json()
    assert detail["input"]["calls"] == 3 and detail["output"]["errors"] == 0

    # Flagged calls (here without a User-Agent) are counted too, and flagged once.
    for _ in range(4):
        answer = client.post("/models/events_model/predict", json={"data": rows},
                             headers=admin | {"User-Agent": ""})
        assert answer.status_code == 200
    client.app.state.events.flush(aggregates=True)
    calls = {e["user_agent"]: client.get(f"/events/{e['id']}", headers=admin).json()["input"]["calls"]
             for e in events(client, admin, type="predict.sync")["items"]}
    assert calls == {"testclient": 3, None: 4}
    suspicious = events(client, admin, type="request.suspicious")["items"]
    assert [e["message"] for e in suspicious] == ["write request without a User-Agent"]


def test_retention_removes_old_events(settings, database: Database) -> None:
    with database.session(write=True) as session:
        session.add_all([
            Event(type="login.ok", created_at=utcnow() - timedelta(days=settings.event_retention_days + 1)),
            Event(type="login.ok", created_at=utcnow()),
        ])
    assert delete_expired_events(database, settings) == 1
    with database.session() as session:
        assert len(session.scalars(select(Event)).all()) == 1


def test_summaries_are_bounded_and_redacted() -> None:
    summary = summarize({"password": "p", "nested": {"api_token": "t", "text": "x" * 5000},
                         "note": "my token is mls_api_abcdef123", "rows": list(range(1000))})
    assert summary["password"] == "[redacted]" and summary["nested"]["api_token"] == "[redacted]"
    assert len(summary["nested"]["text"]) < 300 and "mls_api_abcdef" not in summary["note"]
    assert len(summary["rows"]) == 21
    huge = summarize({f"k{i}": "v" * 190 for i in range(19)}, max_chars=1000)
    assert huge["truncated"] is True and len(huge["preview"]) <= 1000
