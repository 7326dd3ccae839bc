"""Secrets: a realistic session through a real `mlservice serve` (register, log in, create and
revoke API tokens, change a password, train, predict, live updates over /ws, requests with bad
tokens, the system token ML_ADMIN_API_TOKEN), then every place a secret could end up is
searched for every password and token value used: the server's output and its log files
(ML_LOG_DIR under the data dir), every column of every table of the database (events and jobs
included), every answer the API gave (error messages, GET /events, GET /jobs) — none may hold one.

And: tokens and passwords are never returned after creation (no secret, hash or password field
in users, profiles or token listings), and the system token is compared in constant time."""

from __future__ import annotations

import inspect
import json
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from mlservice.auth import deps
from tests.helpers import adult_sample, records
from tests.live_server import ADMIN_PASSWORD, LiveServer, live_server

SYSTEM_TOKEN = "system-" + secrets.token_urlsafe(32)
# What a user type and what the server hands out; collected as the session goes.
PASSWORDS = {
    "alice": "alice-first-Passw0rd-" + secrets.token_hex(4),
    "alice_new": "alice-second-Passw0rd-" + secrets.token_hex(4),
    "alice_wrong": "alice-wrong-Passw0rd-" + secrets.token_hex(4),
    "bob": "bob-created-by-admin-" + secrets.token_hex(4),
    "too_short": "Ab1!" + secrets.token_hex(1),  # refused at registration: shorter than 8
}
FORBIDDEN_FIELD = ("password", "hash", "secret", "token")  # in any key of a user or token record
ALLOWED_TOKEN_KEYS = {"id", "name", "created_at", "expires_at", "last_used_at", "revoked_at", "is_active"}


class Session:
    """An HTTP client that keeps every answer it got, and which of them may carry which secret
    (a login answer carries its new session token, a token creation its new API token)."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=120, headers={"User-Agent": "secrets-test/1"})
        self.answers: list[tuple[str, httpx.Response]] = []  # (request, response)
        self.issued: dict[int, str] = {}  # answer index -> the secret it hands out

    def call(self, method: str, path: str, token: str | None = None, expect: int | None = None,
             **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        self.http.cookies.clear()  # bearer headers only: the login cookie is the login's own token
        self.answers.append((f"{method} {path}", response))
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def issued_here(self, secret: str) -> None:
        self.issued[len(self.answers) - 1] = secret


def no_secret_keys(record: dict, where: str) -> None:
    leaked = [key for key in record if any(word in key.lower() for word in FORBIDDEN_FIELD)]
    assert leaked == [], f"{where} returns {leaked}: {record}"


def wait_job(session: Session, token: str, job_id: str, timeout: float = 180) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = session.call("GET", f"/jobs/{job_id}", token, expect=200).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still running")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Session, dict[str, str], Path]]:
    """The whole session, run once; the tests below search what it left behind."""
    home = tmp_path_factory.mktemp("secrets")
    with live_server(home, ML_ADMIN_API_TOKEN=SYSTEM_TOKEN, ML_LOG_DIR=str(home / "data" / "logs"),
                     ML_LOG_LEVEL="DEBUG") as server:
        s = Session(server.url)
        used: dict[str, str] = {"admin_password": ADMIN_PASSWORD, "system_token": SYSTEM_TOKEN,
                                **{f"password_{k}": v for k, v in PASSWORDS.items()}}

        response = s.call("POST", "/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}, expect=200)
        used["admin_session"] = admin = response.json()["token"]
        s.issued_here(admin)

        s.call("POST", "/auth/register", json={"username": "eve", "password": PASSWORDS["too_short"]})
        assert s.answers[-1][1].status_code in (400, 422)
        registered = s.call("POST", "/auth/register", json={"username": "alice", "password": PASSWORDS["alice"]},
                            expect=201).json()
        no_secret_keys(registered, "POST /auth/register")
        s.call("POST", "/auth/login", json={"username": "alice", "password": PASSWORDS["alice_wrong"]}, expect=401)
        response = s.call("POST", "/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]}, expect=200)
        used["alice_session_1"] = first = response.json()["token"]
        s.issued_here(first)

        tokens = []
        for name in ("ci", "notebook"):
            created = s.call("POST", "/auth/tokens", first, json={"name": name}, expect=201).json()
            assert created["token"].startswith("mls_api_")
            used[f"api_token_{name}"] = created["token"]
            s.issued_here(created["token"])
            tokens.append(created)
        ci, notebook = tokens[0]["token"], tokens[1]["token"]
        s.call("GET", "/auth/user-info", ci, expect=200)
        s.call("POST", f"/auth/tokens/{tokens[0]['id']}/revoke", first, expect=200)
        s.call("GET", "/auth/user-info", ci, expect=401)  # revoked
        used["unknown_api_token"] = unknown = "mls_api_" + secrets.token_urlsafe(32)
        used["garbage_token"] = garbage = "not-a-token-" + secrets.token_urlsafe(16)
        s.call("GET", "/jobs", unknown, expect=401)
        s.call("POST", "/predict", garbage, json={"model_key": "x", "data": [{}]}, expect=401)

        s.call("PUT", "/auth/profile/password", first, expect=400,
               json={"current_password": PASSWORDS["alice_wrong"], "new_password": PASSWORDS["alice_new"]})
        s.call("PUT", "/auth/profile/password", first, expect=200,
               json={"current_password": PASSWORDS["alice"], "new_password": PASSWORDS["alice_new"]})
        s.call("POST", "/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]}, expect=401)
        response = s.call("POST", "/auth/login", json={"username": "alice", "password": PASSWORDS["alice_new"]},
                          expect=200)
        used["alice_session_2"] = second = response.json()["token"]
        s.issued_here(second)

        frame = adult_sample(300, seed=3)
        job_id = s.call("POST", "/train", notebook, expect=202, json={
            "model_key": "secrets", "target": "income", "data": records(frame),
            "params": {"hidden_layer_sizes": [16], "max_iter": 15}}).json()["job_id"]
        assert wait_job(s, notebook, job_id)["status"] == "completed"
        rows = records(frame.drop(columns=["income"]).head(5))
        s.call("POST", "/models/secrets/predict", notebook, json={"data": rows[:1]}, expect=200)
        job_id = s.call("POST", "/predict", second, json={"model_key": "secrets", "data": rows}, expect=202).json()["job_id"]
        assert wait_job(s, second, job_id)["status"] == "completed"
        s.call("GET", f"/predict/{job_id}", second, expect=200)

        # Live updates: the token on the URL (as the README documents) and in a header.
        for url, headers in ((f"{server.url.replace('http', 'ws')}/ws?token={second}", {}),
                             (f"{server.url.replace('http', 'ws')}/ws", {"Authorization": f"Bearer {notebook}"})):
            with connect(url, additional_headers=headers, open_timeout=30) as socket:
                assert json.loads(socket.recv(timeout=30))["type"] == "hello"
        with pytest.raises(Exception):  # noqa: B017, PT011 - refused with 1008, whatever the library calls it
            with connect(f"{server.url.replace('http', 'ws')}/ws?token={unknown}", open_timeout=30) as socket:
                socket.recv(timeout=30)

        # The system token, and a wrong one of the same length.
        used["wrong_system_token"] = wrong = SYSTEM_TOKEN[:-4] + ("aaaa" if not SYSTEM_TOKEN.endswith("aaaa") else "bbbb")
        s.call("GET", "/auth/users", wrong, expect=401)
        bob = s.call("POST", "/auth/users", SYSTEM_TOKEN, expect=201,
                     json={"username": "bob", "password": PASSWORDS["bob"], "tier": "user"}).json()
        no_secret_keys(bob, "POST /auth/users")
        s.call("GET", "/jobs?limit=500", SYSTEM_TOKEN, expect=200)
        s.call("GET", "/auth/tokens", first, expect=200)
        s.call("GET", "/auth/profile", second, expect=200)
        s.call("GET", f"/auth/users/{bob['id']}", admin, expect=200)
        s.call("DELETE", "/auth/profile", second, json={"password": PASSWORDS["alice_wrong"]}, expect=400)
        s.call("POST", "/auth/logout", second, expect=204)
        s.call("GET", "/auth/user-info", second, expect=401)  # ended

        events = s.call("GET", "/events?limit=500", SYSTEM_TOKEN, expect=200).json()["items"]
        for event in events:
            s.call("GET", f"/events/{event['id']}", admin, expect=200)
        s.call("GET", "/events/suspicious?limit=500", admin, expect=200)
        yield server, s, used, home
        s.http.close()


def leaks(text: str, used: dict[str, str], allowed: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    return [name for name, value in used.items() if value in text and value not in allowed]


def test_the_session_went_as_a_user_would(run) -> None:
    _server, s, used, _home = run
    # Guards: the search below only means something if the secrets were really used.
    assert len(used) >= 14 and len(set(used.values())) == len(used)
    assert any(r.status_code == 401 for _, r in s.answers)
    assert sum(1 for index in s.issued) == 5


def test_no_answer_holds_a_secret_it_did_not_just_create(run) -> None:
    _server, s, used, _home = run
    problems = []
    for index, (request, response) in enumerate(s.answers):
        allowed = {s.issued[index]} if index in s.issued else set()
        text = response.text + json.dumps({k: v for k, v in response.headers.items() if k.lower() != "set-cookie"})
        problems += [f"{request} ({response.status_code}) holds {name}" for name in leaks(text, used, allowed)]
    assert problems == []


def test_the_server_output_and_log_files_hold_no_secret(run) -> None:
    server, _s, used, home = run
    output = "".join(server.lines)
    assert "Uvicorn running" in output
    log_files = sorted(p for p in (home / "data").rglob("*") if p.is_file() and ".log" in p.name)
    assert log_files, "ML_LOG_DIR wrote no log file"
    logged = output + "".join(p.read_text(errors="replace") for p in log_files)
    assert "WebSocket /ws" in logged  # the socket handshakes are in the log, so their lines were searched
    problems = [f"{name}: {line}" for name in leaks(logged, used)
                for line in [line for line in logged.splitlines() if used[name] in line][:3]]
    assert problems == [], "\n".join(problems)


def test_no_table_holds_a_secret(run) -> None:
    """Every column of every table: events and jobs, and users and tokens (hashes only)."""
    _server, _s, used, home = run
    connection = sqlite3.connect(home / "data" / "mlservice.db")
    try:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"events", "jobs", "users", "auth_tokens"} <= set(tables)
        counts = {}
        problems = []
        for table in tables:
            rows = connection.execute(f'SELECT * FROM "{table}"').fetchall()
            counts[table] = len(rows)
            for row in rows:
                problems += [f"{table}: {name}" for name in leaks(repr(row), used)]
    finally:
        connection.close()
    assert counts["events"] >= 15 and counts["jobs"] >= 2
    assert problems == []


def test_tokens_and_passwords_are_never_returned_after_creation(run) -> None:
    _server, s, _used, _home = run
    answers: dict[str, httpx.Response] = {}
    for request, response in s.answers:  # the first successful answer to each request
        if response.is_success:
            answers.setdefault(request, response)
    listed = answers["GET /auth/tokens"].json()["items"]
    assert len(listed) == 2 and all(set(item) == ALLOWED_TOKEN_KEYS for item in listed), listed
    users = s.call("GET", "/auth/users?include_deleted=true", SYSTEM_TOKEN, expect=200).json()["items"]
    assert {u["username"] for u in users} >= {"admin", "alice", "bob"}
    for request in ("GET /auth/profile", "GET /auth/user-info"):
        no_secret_keys(answers[request].json(), request)
    for user in users:
        no_secret_keys(user, "GET /auth/users")
    bob = next(u for u in users if u["username"] == "bob")
    no_secret_keys(answers[f"GET /auth/users/{bob['id']}"].json(), "GET /auth/users/{id}")
    no_secret_keys(answers["PUT /auth/profile/password"].json(), "PUT /auth/profile/password")
    for job in answers["GET /jobs?limit=500"].json()["items"]:
        no_secret_keys(job, "GET /jobs")


def test_the_system_token_is_compared_in_constant_time(run) -> None:
    server, s, _used, _home = run
    source = inspect.getsource(deps.principal_from_secret)
    assert "compare_digest(" in source and "system_token" in source
    assert "== system_token" not in source and "system_token ==" not in source
    assert s.call("GET", "/auth/user-info", SYSTEM_TOKEN, expect=200).json()["tier"] == "system_admin"
    for wrong in (SYSTEM_TOKEN[:-1] + ("x" if SYSTEM_TOKEN[-1] != "x" else "y"),  # same length, last char
                  ("x" if SYSTEM_TOKEN[0] != "x" else "y") + SYSTEM_TOKEN[1:],  # same length, first char
                  SYSTEM_TOKEN[:-1], SYSTEM_TOKEN + "x"):
        assert len(wrong) in (len(SYSTEM_TOKEN), len(SYSTEM_TOKEN) - 1, len(SYSTEM_TOKEN) + 1)
        response = s.call("GET", "/auth/user-info", wrong)
        assert response.status_code == 401, (wrong, response.text)
        assert SYSTEM_TOKEN not in response.text and wrong not in response.text
