"""Authorization matrix: every route of the app × every kind of caller (issue #10).

One real app on one SQLite database for the whole module. "user" owns every object named in a
path (a dataset, a trained model, a predict job, a drift report, an API token, an event); "other"
is a second plain user acting on those objects. A route added to the app without a row in
``MATRIX`` fails ``test_every_route_has_a_row``.

Cells that would consume a shared object (logout, deleting a profile, a dataset, a token or a
user) act on a fresh one made for the cell, so the cells do not depend on their order.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import routing
from fastapi.testclient import TestClient
from sqlalchemy import update
from starlette.routing import Mount
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from mlservice.alerts.models import Alert
from mlservice.app import create_app
from mlservice.auth.models import AuthToken, TokenKind, User
from mlservice.auth.passwords import hash_password
from mlservice.auth.service import ensure_first_admin, issue_token
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, _empty_tables, make_settings
from tests.helpers import FINAL, SMALL_PARAMS, adult_sample, csv_bytes, records, wait_job
from tests.live_server import live_server

# MLSERVICE_TEST_API_WORKERS=2: the matrix against a real `mlservice serve --workers 2` on the
# same database (every cell over HTTP, each connection answered by whichever process accepts it).
API_WORKERS = int(os.environ.get("MLSERVICE_TEST_API_WORKERS", "1"))
CLIENT_IP = "127.0.0.1" if API_WORKERS > 1 else "testclient"  # what the server records as the caller's

ANON, USER, OTHER, ADMIN, SYSADMIN, SYSTEM, REVOKED, EXPIRED, INACTIVE = PRINCIPALS = (
    "anonymous", "user", "other", "admin", "system_admin", "system_token", "revoked", "expired", "deactivated",
)
REJECTED = (ANON, REVOKED, EXPIRED, INACTIVE)  # no valid credentials: 401 on every protected route
ADMINS = (ADMIN, SYSADMIN, SYSTEM)


def public(status: int) -> dict[str, int]:
    """No authentication: whatever the caller sends, the answer is the same."""
    return dict.fromkeys(PRINCIPALS, status)


def signed_in(status: int, **exceptions: int) -> dict[str, int]:
    """Any valid credentials; ``exceptions`` by principal (``other=404``)."""
    table = dict.fromkeys(REJECTED, 401) | dict.fromkeys((USER, OTHER, *ADMINS), status)
    return table | exceptions


def owned(status: int) -> dict[str, int]:
    """The owner and admins; anyone else is told the object does not exist."""
    return signed_in(status, other=404)


def owner_only(status: int) -> dict[str, int]:
    """API tokens are always the caller's own: not even an admin reaches another user's."""
    return signed_in(404, user=status)


def admins(status: int) -> dict[str, int]:
    return signed_in(status, user=403, other=403)


def socket() -> dict[str, int]:
    """WS /ws: 101 = handshake accepted and ``hello`` received; 1008 = closed, policy violation."""
    return {name: (1008 if code == 401 else 101) for name, code in signed_in(101).items()}


# method, path template, expected status per principal. The class helpers above say who may;
# the number is what a successful call answers (409 where the fixture's state conflicts after
# authorization passed: the model has one version, which is active; the predict job is done).
MATRIX: list[tuple[str, str, dict[str, int]]] = [
    ("GET",    "/health",                                       public(200)),
    ("POST",   "/auth/register",                                public(201)),
    ("POST",   "/auth/login",                                   public(200)),
    ("POST",   "/auth/logout",                                  signed_in(204)),
    ("GET",    "/auth/user-info",                               signed_in(200)),
    ("GET",    "/auth/profile",                                 signed_in(200)),
    ("PUT",    "/auth/profile/password",                        signed_in(200)),
    ("PUT",    "/auth/profile/username",                        signed_in(200)),
    ("DELETE", "/auth/profile",                                 signed_in(204)),
    ("GET",    "/auth/users",                                   admins(200)),
    ("GET",    "/auth/users/{user_id}",                         admins(200)),
    ("POST",   "/auth/users",                                   admins(201)),
    ("PUT",    "/auth/users/{user_id}",                         admins(200)),
    ("DELETE", "/auth/users/{user_id}",                         admins(204)),
    ("POST",   "/auth/tokens",                                  signed_in(201)),
    ("GET",    "/auth/tokens",                                  signed_in(200)),
    ("POST",   "/auth/tokens/{token_id}/revoke",                owner_only(200)),
    ("DELETE", "/auth/tokens/{token_id}",                       owner_only(204)),
    ("POST",   "/datasets",                                     signed_in(201)),
    ("GET",    "/datasets",                                     signed_in(200)),
    ("GET",    "/datasets/{dataset_id}",                        owned(200)),
    ("DELETE", "/datasets/{dataset_id}",                        owned(204)),
    ("POST",   "/train",                                        signed_in(202)),
    # Models are the team's: every signed-in user reads and uses them; admins manage versions.
    ("GET",    "/models",                                       signed_in(200)),
    ("GET",    "/models/{model_key}",                           signed_in(200)),
    ("GET",    "/models/{model_key}/versions/{version}",        signed_in(200)),
    ("POST",   "/models/{model_key}/versions/{version}/promote", admins(409)),  # already active
    ("POST",   "/models/{model_key}/rollback",                  admins(409)),  # nothing to roll back to
    ("DELETE", "/models/{model_key}/versions/{version}",        admins(409)),  # the active version
    ("POST",   "/models/{model_key}/predict",                   signed_in(200)),
    ("POST",   "/models/{model_key}/retrain",                   admins(202)),  # may change the active version
    ("POST",   "/predict",                                      signed_in(202)),
    ("GET",    "/predict/{job_id}",                             owned(200)),
    ("GET",    "/predict/{job_id}/export",                      owned(200)),
    ("POST",   "/predict/{job_id}/feedback",                    owned(200)),
    ("GET",    "/predictions/activity",                         signed_in(200)),
    ("POST",   "/quality",                                      signed_in(202)),
    ("GET",    "/jobs",                                         signed_in(200)),
    ("GET",    "/jobs/{job_id}",                                owned(200)),
    ("POST",   "/jobs/{job_id}/cancel",                         owned(409)),  # the job has completed
    ("GET",    "/events",                                       signed_in(200)),  # filtered to one's own
    ("GET",    "/events/suspicious",                            signed_in(200)),
    ("GET",    "/events/by-ip/{ip}",                            signed_in(200)),
    ("GET",    "/events/{event_id}",                            owned(200)),
    ("POST",   "/drift/check",                                  signed_in(202)),
    ("GET",    "/drift/daily-reports",                          signed_in(200)),
    ("GET",    "/drift/reports/{report_id}",                    signed_in(200)),
    ("GET",    "/health/alerts",                                signed_in(200)),
    ("POST",   "/health/alerts/{alert_id}/ack",                 signed_in(200)),  # a drift alert: everyone's
    ("GET",    "/metrics",                                      admins(200)),  # or ML_METRICS_TOKEN
    ("GET",    "/openapi.json",                                 signed_in(200)),
    ("GET",    "/docs",                                         signed_in(200)),
    ("GET",    "/redoc",                                        signed_in(200)),
    ("WS",     "/ws",                                           socket()),
]

# Public static files: the dashboard at "/" (present once frontend/out is built) and the Swagger
# UI / ReDoc library bundles the protected /docs and /redoc pages load.
MOUNTS = {"dashboard", "docs-assets"}
SYSTEM_TOKEN = "system-token-for-the-authorization-matrix"
PASSWORD = "matrix-password-1"
MODEL_KEY = "matrix-adult"


# Setup ------------------------------------------------------------------------------------------


@dataclass
class Account:
    username: str
    password: str
    id: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    client: TestClient
    database: Any
    principals: dict[str, Account | None]
    objects: dict[str, Any]
    names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def system(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {SYSTEM_TOKEN}"}

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.names)}"

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any):
        self.client.cookies.clear()  # a login answer sets the session cookie; cells use headers only
        try:
            return self.client.request(method, path, headers=headers, **kwargs)
        finally:
            self.client.cookies.clear()

    def account(self, tier: str = "user") -> Account:
        """A new user of ``tier``, created by the system token and signed in through the API."""
        username = self.unique(f"matrix-{tier}")
        created = self.request("POST", "/auth/users", self.system,
                               json={"username": username, "password": PASSWORD, "tier": tier})
        assert created.status_code == 201, created.text
        login = self.request("POST", "/auth/login", json={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return Account(username, PASSWORD, created.json()["id"], _bearer(login.json()["token"]))

    def stored_account(self, tier: str = "user", token: str = "session") -> Account:
        """A new user holding a session or an API token, written straight to the database: no
        password hashing per account (Argon2 is slow on purpose)."""
        username = self.unique(f"stored-{tier}")
        with self.database.session(write=True) as session:
            user = User(username=username, password_hash=_password_hash(), tier=tier)
            session.add(user)
            session.flush()
            user_id = user.id
        return Account(username, PASSWORD, user_id, self.issue(user_id, token))

    def issue(self, user_id: int, kind: str = "session", lifetime: timedelta = timedelta(days=1)) -> dict[str, str]:
        """A session or API token as login and POST /auth/tokens make them."""
        with self.database.session(write=True) as session:
            secret, _ = issue_token(session, session.get(User, user_id), TokenKind(kind), lifetime)
        return _bearer(secret)

    def api_token(self, owner: Account) -> dict:
        made = self.request("POST", "/auth/tokens", owner.headers, json={"name": self.unique("token")})
        assert made.status_code == 201, made.text
        return made.json()

    def dataset(self, owner: Account, rows: int = 200) -> str:
        frame = adult_sample(rows, seed=rows)
        made = self.request("POST", "/datasets", owner.headers,
                            files={"file": ("adult.csv", csv_bytes(frame), "text/csv")})
        assert made.status_code == 201, made.text
        return made.json()["id"]

    def finish(self, job_id: str) -> dict:
        return wait_job(self.client, self.system, job_id, timeout=120)


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _rejected_because(world: World, headers: dict[str, str], reason: str) -> None:
    answer = world.request("GET", "/auth/user-info", headers)
    assert answer.status_code == 401 and reason in answer.text, answer.text


@pytest.fixture(scope="module")
def world(_migrated, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    database = _migrated("sqlite")
    settings = make_settings(
        tmp_path_factory.mktemp("auth-matrix"), database,
        admin_api_token=SYSTEM_TOKEN,
        max_workers_limit=1,  # one worker process: the jobs cells start are cancelled anyway
        auto_retrain=False,  # the drift alert below must not start a retrain of its own
        retraining_accuracy_drop_threshold=1.0,  # a manual retrain never replaces the active version
    )
    with database.session(write=True) as session:
        ensure_first_admin(session, settings)
    if API_WORKERS > 1:
        opened = _live_client(tmp_path_factory.mktemp("auth-matrix-live"), settings, database)
    else:
        opened = TestClient(create_app(settings, database))
    with opened as client:
        world = World(client, database, {}, {})
        try:
            _populate(world)
            yield world
        finally:
            _cancel_unfinished(world)
    _empty_tables(database)


class LiveClient(httpx.Client):
    """The matrix's client for a real server: what it uses of TestClient, over the network."""

    def __init__(self, url: str, app: Any) -> None:
        super().__init__(base_url=url, timeout=120)
        self.app = app  # the same app, never started: for the route table only

    @contextmanager
    def websocket_connect(self, url: str, headers: dict[str, str]) -> Iterator[LiveSocket]:
        with connect(f"{str(self.base_url).replace('http', 'ws', 1)}{url}", additional_headers=headers,
                     open_timeout=30) as websocket:
            yield LiveSocket(websocket)


@dataclass
class LiveSocket:
    websocket: ClientConnection

    def receive_json(self) -> Any:
        try:
            return json.loads(self.websocket.recv(timeout=30))
        except ConnectionClosed as closed:
            frame = closed.rcvd
            raise WebSocketDisconnect(frame.code if frame else 1006, frame.reason if frame else "") from None


@contextmanager
def _live_client(home: Any, settings: Any, database: Any) -> Iterator[LiveClient]:
    with live_server(
        home, ML_API_WORKERS=str(API_WORKERS), ML_DATABASE_URL=settings.effective_database_url,
        ML_ADMIN_API_TOKEN=SYSTEM_TOKEN, ML_ADMIN_USERNAME=ADMIN_USERNAME, ML_ADMIN_PASSWORD=ADMIN_PASSWORD,
        ML_MAX_WORKERS_LIMIT="1", ML_AUTO_RETRAIN="false", ML_RETRAINING_ACCURACY_DROP_THRESHOLD="1.0",
    ) as server, LiveClient(server.url, create_app(settings, database)) as client:
        yield client


def _populate(world: World) -> None:
    user = world.account("user")  # through the API: POST /auth/users, then login
    other = world.stored_account("user", token="api")
    admin, sysadmin = world.stored_account("admin"), world.stored_account("system_admin")
    # Revoked: an API token revoked by its owner (an admin, so a leak would show as 200, not 403).
    stale = world.stored_account("admin")
    revoked = world.api_token(stale)
    assert world.request("POST", f"/auth/tokens/{revoked['id']}/revoke", stale.headers).status_code == 200
    # Expired: a session of the same admin whose expiry has passed (written to the database).
    expired = world.issue(stale.id, "session", lifetime=timedelta(minutes=-1))
    # Deactivated: an admin set inactive through the API. Deactivating revokes its tokens; the
    # session's revocation is undone in the database so the cells test the account check itself.
    gone = world.stored_account("admin")
    answer = world.request("PUT", f"/auth/users/{gone.id}", world.system, json={"is_active": False})
    assert answer.status_code == 200 and answer.json()["is_active"] is False, answer.text
    with world.database.session(write=True) as session:
        session.execute(update(AuthToken).where(AuthToken.user_id == gone.id).values(revoked_at=None))
    with world.database.session() as session:
        first = session.query(User).filter(User.username == ADMIN_USERNAME).one()
        bootstrap = Account(ADMIN_USERNAME, ADMIN_PASSWORD, first.id, world.system)
    world.principals = {
        ANON: None, USER: user, OTHER: other, ADMIN: admin, SYSADMIN: sysadmin, SYSTEM: bootstrap,
        REVOKED: Account(stale.username, PASSWORD, stale.id, _bearer(revoked["token"])),
        EXPIRED: Account(stale.username, PASSWORD, stale.id, expired),
        INACTIVE: gone,
    }
    _rejected_because(world, world.principals[REVOKED].headers, "revoked")
    _rejected_because(world, world.principals[EXPIRED].headers, "expired")
    _rejected_because(world, gone.headers, "deactivated")

    # The objects, all made by "user".
    dataset_id = world.dataset(user)
    trained = world.request("POST", "/train", user.headers, json={
        "model_key": MODEL_KEY, "target": "income", "dataset_id": dataset_id, "params": SMALL_PARAMS,
    })
    assert trained.status_code == 202, trained.text
    assert world.finish(trained.json()["job_id"])["status"] == "completed"
    rows = records(adult_sample(20, seed=1).drop(columns=["income"]))
    predicted = world.request("POST", "/predict", user.headers, json={"model_key": MODEL_KEY, "data": rows})
    assert predicted.status_code == 202, predicted.text
    predict_job = predicted.json()["job_id"]
    assert world.finish(predict_job)["status"] == "completed"
    # A drift check on data far from the training set: a report and a drift alert (not admin-only).
    shifted = adult_sample(150, seed=2).drop(columns=["income"]).assign(age=90, hours_per_week=99)
    checked = world.request("POST", "/drift/check", user.headers,
                            json={"model_key": MODEL_KEY, "data": records(shifted)})
    assert checked.status_code == 202, checked.text
    drift_job = world.finish(checked.json()["job_id"])
    assert drift_job["result"]["verdict"] == "drift", drift_job
    alerts = world.request("GET", "/health/alerts", user.headers, params={"kind": "drift"}).json()["items"]
    token = world.api_token(user)
    events = world.request("GET", "/events", user.headers, params={"type": "token.created"}).json()["items"]
    assert alerts and events
    world.objects = {
        "dataset_id": dataset_id, "model_key": MODEL_KEY, "version": "1.0.0", "job_id": predict_job,
        "report_id": drift_job["result"]["report_id"], "alert_id": alerts[0]["id"], "token_id": token["id"],
        "event_id": events[0]["id"], "user_id": user.id,
        "ip": CLIENT_IP,
    }


def _cancel_unfinished(world: World) -> None:
    """Jobs started by cells are cancelled as they go; this catches any left by a failed cell."""
    jobs = world.request("GET", "/jobs", world.system, params={"limit": 500}).json().get("items", [])
    unfinished = [job["id"] for job in jobs if job["status"] not in FINAL]
    for job_id in unfinished:
        world.request("POST", f"/jobs/{job_id}/cancel", world.system)
    for job_id in unfinished:  # a running job stops at its next checkpoint
        world.finish(job_id)


# How each route is called ----------------------------------------------------------------------


@dataclass
class Cell:
    """What one request needs: the acting account, path values, a body, and what to undo."""

    who: Account | None
    path_values: dict[str, Any]
    json: Any = None
    files: dict | None = None
    after: Callable[[Any], None] | None = None


def _fresh_principal(world: World, principal: str, cell: Cell) -> None:
    """Cells that end the caller's session or account act as a new account of the same kind."""
    kinds = {USER: ("user", "session"), OTHER: ("user", "api"), ADMIN: ("admin", "session"),
             SYSADMIN: ("system_admin", "session")}
    if principal in kinds:
        cell.who = world.stored_account(*kinds[principal])


def _restore_bootstrap_admin(world: World) -> Callable[[Any], None]:
    """The system token acts as the first system_admin; put that account back after deleting it."""
    def restore(_response: Any) -> None:
        with world.database.session(write=True) as session:
            session.execute(update(User).where(User.username == ADMIN_USERNAME)
                            .values(deleted_at=None, is_active=True))
    return restore


def _cancel_job(world: World, *, wait: bool = False) -> Callable[[Any], None]:
    def cancel(response: Any) -> None:
        if response.status_code == 202:
            job_id = response.json()["job_id"]
            world.request("POST", f"/jobs/{job_id}/cancel", world.system)
            if wait:  # a second retrain of the model is refused while one is queued or running
                world.finish(job_id)
    return cancel


def _reactivate_alert(world: World, alert_id: int) -> Callable[[Any], None]:
    def reactivate(_response: Any) -> None:
        with world.database.session(write=True) as session:
            session.execute(update(Alert).where(Alert.id == alert_id)
                            .values(status="active", acknowledged_at=None, acknowledged_by=None))
    return reactivate


def _features(rows: int) -> list[dict]:
    return records(adult_sample(rows, seed=3).drop(columns=["income"]))


def prepare(world: World, method: str, path: str, principal: str) -> Cell:
    cell = Cell(world.principals[principal], dict(world.objects))
    user: Account = world.principals[USER]  # type: ignore[assignment]
    route = (method, path)
    if route in {("POST", "/auth/logout"), ("PUT", "/auth/profile/password"), ("DELETE", "/auth/profile")}:
        _fresh_principal(world, principal, cell)
    who = cell.who or Account("nobody", PASSWORD, 0)
    if route == ("POST", "/auth/register"):
        cell.json = {"username": world.unique("registered"), "password": PASSWORD}
    elif route == ("POST", "/auth/login"):
        cell.json = {"username": user.username, "password": user.password}
    elif route == ("PUT", "/auth/profile/password"):
        cell.json = {"current_password": who.password, "new_password": who.password}
    elif route == ("PUT", "/auth/profile/username"):
        cell.json = {"username": who.username}  # unchanged: the call is harmless when it succeeds
    elif route == ("DELETE", "/auth/profile"):
        cell.json = {"password": who.password}
        if principal == SYSTEM:
            cell.after = _restore_bootstrap_admin(world)
    elif route == ("POST", "/auth/users"):
        cell.json = {"username": world.unique("created"), "password": PASSWORD, "tier": "user"}
    elif route == ("PUT", "/auth/users/{user_id}"):
        cell.json = {"is_active": True}
    elif route == ("DELETE", "/auth/users/{user_id}"):
        cell.path_values["user_id"] = world.stored_account("user").id
    elif route == ("POST", "/auth/tokens"):
        cell.json = {"name": world.unique("token")}
    elif route == ("DELETE", "/auth/tokens/{token_id}"):
        cell.path_values["token_id"] = world.api_token(user)["id"]
    elif route == ("POST", "/datasets"):
        cell.files = {"file": ("small.csv", csv_bytes(adult_sample(5, seed=4)), "text/csv")}
    elif route == ("DELETE", "/datasets/{dataset_id}"):
        cell.path_values["dataset_id"] = world.dataset(user, rows=5)
    elif route == ("POST", "/train"):
        data = records(adult_sample(60, seed=5))
        cell.json = {"model_key": "matrix-train", "target": "income", "data": data,
                     "params": {"hidden_layer_sizes": [4], "max_iter": 1}}
        cell.after = _cancel_job(world)
    elif route == ("POST", "/models/{model_key}/predict"):
        cell.json = {"data": _features(5)}
    elif route == ("POST", "/predict"):
        cell.json = {"model_key": MODEL_KEY, "data": _features(5)}
        cell.after = _cancel_job(world)
    elif route == ("POST", "/quality"):
        cell.json = {"model_key": MODEL_KEY, "target": "income", "data": records(adult_sample(5, seed=3))}
        cell.after = _cancel_job(world)
    elif route == ("POST", "/drift/check"):
        cell.json = {"model_key": MODEL_KEY}
        cell.after = _cancel_job(world)
    elif route == ("POST", "/models/{model_key}/retrain"):
        cell.after = _cancel_job(world, wait=True)
    elif route == ("POST", "/predict/{job_id}/feedback"):
        cell.json = {"labels": [{"row": 0, "label": ">50K"}]}
    elif route == ("POST", "/health/alerts/{alert_id}/ack"):
        cell.after = _reactivate_alert(world, world.objects["alert_id"])
    return cell


def call(world: World, method: str, path: str, cell: Cell) -> tuple[int, str]:
    url = path.format(**cell.path_values)
    headers = cell.who.headers if cell.who else {}
    if method == "WS":
        world.client.cookies.clear()
        with world.client.websocket_connect(url, headers=headers) as websocket:
            try:
                message = websocket.receive_json()
            except WebSocketDisconnect as closed:
                return closed.code, closed.reason
            assert message["type"] == "hello", message
            return 101, str(message)
    response = world.request(method, url, headers, json=cell.json, files=cell.files)
    try:
        return response.status_code, response.text[:300]
    finally:
        if cell.after is not None:
            cell.after(response)


# The tests -------------------------------------------------------------------------------------

CELLS = [(method, path, principal) for method, path, _ in MATRIX for principal in PRINCIPALS]
EXPECTED = {(method, path): expected for method, path, expected in MATRIX}


def test_the_table_is_complete() -> None:
    assert len({(method, path) for method, path, _ in MATRIX}) == len(MATRIX), "a route has two rows"
    for method, path, expected in MATRIX:
        assert set(expected) == set(PRINCIPALS), f"{method} {path}: {sorted(set(PRINCIPALS) ^ set(expected))}"


def _app_routes(app: Any) -> list[tuple[Any, str, set[str]]]:
    """Every route with its full path. Newer FastAPI keeps an included router as one entry of
    ``app.routes`` and lists its routes through ``iter_route_contexts``; older ones flatten."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:
        return [(route, route.path, getattr(route, "methods", None) or set()) for route in app.routes]
    return [(c.original_route, c.path, c.methods or set()) for c in contexts(app.routes)]


def test_every_route_has_a_row(world: World) -> None:
    app = world.client.app
    found, unexpected = set(), []
    for original, path, methods in _app_routes(app):
        if isinstance(original, routing.APIRoute):
            found |= {(method, path) for method in methods}
        elif isinstance(original, routing.APIWebSocketRoute):
            found.add(("WS", path))
        elif isinstance(original, Mount) and original.name in MOUNTS:
            continue
        else:
            unexpected.append(f"{type(original).__name__} {path!r}")
    assert not unexpected, f"routes of an unknown kind: {unexpected}"
    missing = sorted(found - set(EXPECTED))
    assert not missing, "routes without a row in MATRIX: " + ", ".join(f"{m} {p}" for m, p in missing)
    stale = sorted(set(EXPECTED) - found)
    assert not stale, "rows in MATRIX for routes the app no longer has: " + ", ".join(f"{m} {p}" for m, p in stale)


def _depends_on(dependant: Any, call: Callable) -> bool:
    return dependant.call is call or any(_depends_on(sub, call) for sub in dependant.dependencies)


def test_every_admin_only_route_uses_the_one_admin_dependency(world: World) -> None:
    """A route that refuses plain users (403) gets that answer from ``require_admin`` (the
    ``AdminPrincipal`` alias) or ``require_system_admin``, not from a check of its own."""
    from mlservice.auth.deps import require_admin, require_system_admin

    # GET /metrics also takes ML_METRICS_TOKEN, which is no user: it calls require_admin itself
    # once that token is not what was sent.
    admin_only = {(m, p) for m, p, expected in MATRIX
                  if expected[USER] == 403 and expected[OTHER] == 403 and p != "/metrics"}
    assert admin_only, "the matrix names no admin-only route"
    checked, own_checks = set(), []
    for original, path, methods in _app_routes(world.client.app):
        for method in methods:
            if (method, path) in admin_only:
                checked.add((method, path))
                if not any(_depends_on(original.dependant, c) for c in (require_admin, require_system_admin)):
                    own_checks.append(f"{method} {path}")
    assert checked == admin_only
    assert not own_checks, f"admin-only routes without AdminPrincipal: {own_checks}"


@pytest.mark.parametrize(("method", "path", "principal"), CELLS, ids=[f"{m} {p} {who}" for m, p, who in CELLS])
def test_cell(world: World, method: str, path: str, principal: str) -> None:
    cell = prepare(world, method, path, principal)
    status, answer = call(world, method, path, cell)
    assert status == EXPECTED[(method, path)][principal], answer


# Authentication comes before the body ----------------------------------------------------------

PROTECTED_WRITES = [(m, p) for m, p, expected in MATRIX if m in {"POST", "PUT", "DELETE"} and expected[ANON] == 401]
UNREADABLE_BODIES = {
    "an empty JSON object": {"json": {}},
    "text/plain": {"content": b"x", "headers": {"Content-Type": "text/plain"}},
    "a form without its file": {"files": {"other": ("x.txt", b"x", "text/plain")}, "data": {"model_key": "m"}},
}
ANONYMOUS_BODY_CASES = [(m, p, kind) for m, p in PROTECTED_WRITES for kind in UNREADABLE_BODIES]


@pytest.mark.parametrize(("method", "path", "body"), ANONYMOUS_BODY_CASES,
                         ids=[f"{m} {p} {kind}" for m, p, kind in ANONYMOUS_BODY_CASES])
def test_anonymous_callers_get_401_whatever_the_body(world: World, method: str, path: str, body: str) -> None:
    """An unauthenticated caller learns nothing about the body's rules (and an upload is not read).

    Not covered: a body that is not JSON at all under ``Content-Type: application/json`` gets
    FastAPI's 422 on routes with a model-typed body, since FastAPI parses JSON before it runs
    any dependency."""
    url = path.format(**world.objects)
    response = world.request(method, url, **UNREADABLE_BODIES[body])
    assert response.status_code == 401, response.text


# Objects named in a body -----------------------------------------------------------------------

BODY_REFERENCES = [  # a job that reads "user"'s dataset: started for its owner, 404 for "other"
    ("/train", {"model_key": "matrix-train", "target": "income", "params": {"hidden_layer_sizes": [4], "max_iter": 1}}),
    ("/predict", {"model_key": MODEL_KEY}),
    ("/quality", {"model_key": MODEL_KEY, "target": "income"}),
    ("/drift/check", {"model_key": MODEL_KEY}),
]


@pytest.mark.parametrize(("path", "body"), BODY_REFERENCES, ids=[path for path, _ in BODY_REFERENCES])
@pytest.mark.parametrize(("principal", "expected"), [(USER, 202), (OTHER, 404), (ADMIN, 202)])
def test_a_dataset_named_in_a_body_is_checked_like_one_in_a_path(
    world: World, path: str, body: dict, principal: str, expected: int
) -> None:
    who = world.principals[principal]
    assert who is not None
    response = world.request("POST", path, who.headers, json={**body, "dataset_id": world.objects["dataset_id"]})
    _cancel_job(world)(response)
    assert response.status_code == expected, response.text


# Admin-only alerts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("principal", "expected"), [(USER, 404), (OTHER, 404), (ADMIN, 200), (SYSTEM, 200)])
def test_an_admin_only_alert_is_hidden_from_users(world: World, principal: str, expected: int) -> None:
    """The setup's requests with a revoked and an expired token raised a security alert."""
    world.request("GET", "/events", world.system)  # the event writer has flushed: the alert exists
    found = world.request("GET", "/health/alerts", world.system, params={"kind": "security", "status": "all"})
    alert_id = found.json()["items"][0]["id"]
    who = world.principals[principal]
    assert who is not None
    listed = world.request("GET", "/health/alerts", who.headers, params={"kind": "security", "status": "all"})
    assert (alert_id in [a["id"] for a in listed.json()["items"]]) is (expected == 200)
    response = world.request("POST", f"/health/alerts/{alert_id}/ack", who.headers)
    _reactivate_alert(world, alert_id)(response)
    assert response.status_code == expected, response.text


# Lists -----------------------------------------------------------------------------------------

LISTS = [  # path, the object of "user" it would show, whether "user" sees it there
    ("/datasets", "dataset_id", True),
    ("/jobs", "job_id", True),
    ("/auth/tokens", "token_id", True),
    ("/events", "event_id", True),
    (f"/events/by-ip/{CLIENT_IP}", "event_id", True),
    ("/events/suspicious", "event_id", False),
]


@pytest.mark.parametrize(("path", "key", "listed_for_owner"), LISTS, ids=[path for path, _, _ in LISTS])
def test_lists_show_another_user_nothing_of_the_first(world: World, path: str, key: str, listed_for_owner: bool) -> None:
    """200 for everyone in the matrix; here what the 200 holds. ``user_id=`` (an admins' filter)
    must not widen a plain user's view."""
    user, other = world.principals[USER], world.principals[OTHER]
    assert user is not None and other is not None
    params = {"limit": 500, "user_id": user.id}
    mine = world.request("GET", path, user.headers, params=params).json()["items"]
    assert (world.objects[key] in [item["id"] for item in mine]) is listed_for_owner
    theirs = world.request("GET", path, other.headers, params=params).json()["items"]
    assert world.objects[key] not in [item["id"] for item in theirs]
    assert {item.get("user_id", other.id) for item in theirs} <= {other.id}, theirs
