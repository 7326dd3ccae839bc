"""Schema fuzzing: Schemathesis drives every operation of the OpenAPI schema (issue #10).

The schema is the one the app serves to signed-in callers (``GET /openapi.json``); every operation
is called with generated valid and invalid input, as a plain user and as an admin, against a real
app on its own SQLite database, and each answer must:

* not be a server error (``not_a_server_error``),
* carry a status code the operation documents (``status_code_conformance``),
* carry a documented content type (``content_type_conformance``),
* match the documented schema for that status (``response_schema_conformance``).

A dataset, a trained model, a prediction and an API token of the plain user exist before fuzzing
starts; the path parameters naming them get examples that are sent as those real ids, so the
fuzzer reaches existing objects too, not only 404s.

Budget (the suite runs on 2 cores; this file takes about 40 s there): 10 generated examples per
operation besides its explicit ones, 2 where one example costs real work — starting a job
(training, batch predictions, drift) or hashing a password (Argon2id, 0.15-0.5 s of CPU here).

Operations that can end the caller's credentials or account (logout, profile and user changes,
token revocation) and the DELETEs of shared objects run after the others of their role (all the
plain user's cases run before the admin's), each case with a fresh API token of its role's
account; a case that lost that account (an admin deleted or deactivated it) makes the next case
use a new one.

For a deeper run: ``ML_FUZZ_SEED`` changes the (otherwise fixed) seed, ``ML_FUZZ_EXAMPLES`` the
examples per operation (10), and ``ML_FUZZ_COVERAGE=1`` adds Schemathesis' coverage phase.
"""

from __future__ import annotations

import copy
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mlservice.app import create_app
from mlservice.auth.service import ensure_first_admin
from mlservice.db import Database
from mlservice.db.migrate import upgrade
from tests.conftest import make_settings
from tests.helpers import SMALL_PARAMS, USER_PASSWORD, adult_sample, csv_bytes, records, wait_job

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ("user", "admin")
SEED = int(os.environ.get("ML_FUZZ_SEED", "20261126"))
EXAMPLES = int(os.environ.get("ML_FUZZ_EXAMPLES", "10"))
COVERAGE = os.environ.get("ML_FUZZ_COVERAGE") == "1"

# One example here starts a job in the worker pool (training, a batch prediction, a drift check).
STARTS_A_JOB = [
    "POST /train", "POST /predict", "POST /quality", "POST /drift/check",
    "POST /models/{model_key}/retrain",
]
# One example here hashes or verifies a password (Argon2id: 0.15-0.5 s of CPU on 2 cores).
HASHES_A_PASSWORD = [
    "POST /auth/login", "POST /auth/register", "POST /auth/users", "PUT /auth/profile/password",
    "DELETE /auth/profile",
]
# Can end the caller's credentials or account, or someone else's, or remove a shared object.
DESTRUCTIVE = [
    "POST /auth/logout", "DELETE /auth/profile", "PUT /auth/profile/password",
    "PUT /auth/profile/username", "POST /auth/tokens/{token_id}/revoke", "DELETE /auth/tokens/{token_id}",
    "PUT /auth/users/{user_id}", "DELETE /auth/users/{user_id}", "DELETE /datasets/{dataset_id}",
    "DELETE /models/{model_key}/versions/{version}",
]

CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": EXAMPLES, "database": "none"},
    # Coverage (boundary values of every parameter) is not bounded by max-examples and comes to
    # ~50 cases per operation: on for a deeper run only. Stateful sequences are off.
    "phases": {"coverage": {"enabled": COVERAGE}, "stateful": {"enabled": False}},
    "operations": [
        {"include-name": STARTS_A_JOB, "generation": {"max-examples": 2}},
        {"include-name": HASHES_A_PASSWORD, "generation": {"max-examples": 2}},
    ],
})


@dataclass
class Fuzzed:
    """The app under test and the principals the cases run as."""

    app: Any
    client: asgi.ASGIClient
    system: dict[str, str]  # the system admin's API token (settings), never touched by the cases
    seeded: dict[str, Any]
    masters: dict[str, dict[str, str]] = field(default_factory=dict)  # role -> session headers
    calls: Counter = field(default_factory=Counter)  # operation -> cases sent
    seeded_hits: Counter = field(default_factory=Counter)  # path parameter -> cases sent with a real id

    def new_account(self, role: str) -> dict[str, str]:
        username = f"fuzz_{role}_{secrets.token_hex(4)}"
        created = self.client.post(
            "/auth/users", headers=self.system,
            json={"username": username, "password": USER_PASSWORD, "tier": role},
        )
        assert created.status_code == 201, created.text
        login = self.client.post("/auth/login", json={"username": username, "password": USER_PASSWORD})
        assert login.status_code == 200, login.text
        self.client.cookies.clear()
        self.masters[role] = {"Authorization": f"Bearer {login.json()['token']}"}
        return self.masters[role]

    def headers(self, role: str) -> dict[str, str]:
        return self.masters.get(role) or self.new_account(role)

    def fresh_token(self, role: str) -> dict[str, str]:
        """A new API token of the role's account: whatever the case does to it stays with the case."""
        answer = self.client.post("/auth/tokens", headers=self.headers(role), json={"name": "fuzz case"})
        if answer.status_code == 401:  # an earlier case deleted or deactivated the account
            answer = self.client.post("/auth/tokens", headers=self.new_account(role), json={"name": "fuzz case"})
        assert answer.status_code == 201, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def check_accounts(self) -> None:
        """After a destructive case: every role's account still works and still has its tier."""
        for role, headers in list(self.masters.items()):
            info = self.client.get("/auth/user-info", headers=headers)
            if info.status_code != 200 or info.json()["tier"] != role:
                self.new_account(role)


def _seed(client: asgi.ASGIClient, fuzzed: Fuzzed) -> dict[str, Any]:
    """Real objects for the path parameters: owned by the plain user, visible to the admin."""
    user = fuzzed.headers("user")
    frame = adult_sample(200, seed=7)
    upload = client.post("/datasets", headers=user, files={"file": ("adult.csv", csv_bytes(frame), "text/csv")})
    assert upload.status_code == 201, upload.text
    dataset_id = upload.json()["id"]
    started = client.post("/train", headers=user, json={
        "model_key": "fuzz-adult", "target": "income", "dataset_id": dataset_id, "params": SMALL_PARAMS,
    })
    assert started.status_code == 202, started.text
    trained = wait_job(client, user, started.json()["job_id"])
    assert trained["status"] == "completed", trained
    model = client.get("/models/fuzz-adult", headers=user).json()
    rows = records(frame.drop(columns=["income"]).head(5))
    predicted = client.post("/predict", headers=user, json={"model_key": "fuzz-adult", "data": rows})
    assert predicted.status_code == 202, predicted.text
    prediction = wait_job(client, user, predicted.json()["job_id"])
    assert prediction["status"] == "completed", prediction
    token = client.post("/auth/tokens", headers=user, json={"name": "seeded"}).json()
    me = client.get("/auth/user-info", headers=user).json()
    return {
        "dataset_id": dataset_id, "model_key": "fuzz-adult", "version": model["active_version"],
        "job_id": prediction["id"], "token_id": token["id"], "user_id": me["id"],
    }


def _stop_jobs(client: asgi.ASGIClient, headers: dict[str, str]) -> None:
    """Cancel what the fuzzer started and wait for it, so the app stops with no job in flight."""
    cancelled: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        live = [
            job["id"] for status in ("queued", "running")
            for job in client.get("/jobs", headers=headers, params={"status": status, "limit": 500}).json()["items"]
        ]
        if not live:
            return
        for job_id in set(live) - cancelled:
            client.post(f"/jobs/{job_id}/cancel", headers=headers)
            cancelled.add(job_id)
        time.sleep(0.2)
    raise AssertionError(f"jobs still running after cancellation: {live}")


def _openapi_document() -> dict[str, Any]:
    """What ``mlservice openapi`` prints; the fixture checks the app serves the same document."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(make_settings(Path(tmp)))
        try:
            return app.openapi()
        finally:
            app.state.prediction_log.close()


# The seeded objects exist only once the fixture ran, after collection built the tests: their path
# parameters get these stand-ins as examples, and a case carrying one is sent with the real id.
SEEDED_STAND_INS = {
    "dataset_id": "seeded-dataset", "job_id": "seeded-job", "model_key": "seeded-model",
    "version": "seeded-version", "token_id": 987_654_301, "user_id": 987_654_302,
}


def _with_seeded_examples(document: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in SEEDED_STAND_INS:
                    parameter["example"] = SEEDED_STAND_INS[parameter["name"]]
    return document


DOCUMENT = _openapi_document()
OPERATIONS = [f"{method.upper()} {path}" for path, methods in DOCUMENT["paths"].items() for method in methods]
schema = schemathesis.openapi.from_dict(_with_seeded_examples(DOCUMENT), config=CONFIG)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    database = Database(f"sqlite:///{root / 'mlservice.db'}", timeout=10)
    upgrade(database)
    system_token = secrets.token_urlsafe(32)
    settings = make_settings(
        root, database,
        admin_api_token=system_token,
        # The fuzzer sends many failed logins from one address; the per-IP lockout (tested on its
        # own) would otherwise refuse the logins of the fresh accounts later cases need.
        login_max_failures_per_ip=100_000,
    )
    with database.session(write=True) as session:
        ensure_first_admin(session, settings)
    app = create_app(settings, database)
    try:
        with asgi.get_client(app) as client:  # runs the app's lifespan until shutdown_lifespans()
            fuzzed = Fuzzed(app, client, {"Authorization": f"Bearer {system_token}"}, {})
            for role in ROLES:
                fuzzed.headers(role)
            served = client.get("/openapi.json", headers=fuzzed.headers("user"))
            assert served.status_code == 200, served.text
            assert served.json() == DOCUMENT  # the schema fuzzed is the one the app serves
            fuzzed.seeded = _seed(client, fuzzed)
            yield fuzzed
            _stop_jobs(client, fuzzed.system)
    finally:
        asgi.shutdown_lifespans()
        database.dispose()


@pytest.fixture(scope="module", params=ROLES)
def role(request: pytest.FixtureRequest) -> str:
    return request.param


def _send(case, fuzzed: Fuzzed, headers: dict[str, str]) -> None:
    fuzzed.calls[case.operation.label] += 1
    for name, value in list(case.path_parameters.items()):
        if SEEDED_STAND_INS.get(name) == value:
            case.path_parameters[name] = fuzzed.seeded[name]
            fuzzed.seeded_hits[name] += 1
    case.call_and_validate(headers=headers, checks=CHECKS, app=fuzzed.app)


@schema.exclude(name=DESTRUCTIVE).parametrize()
def test_operations_keep_their_contract(case, fuzzed: Fuzzed, role: str) -> None:
    _send(case, fuzzed, fuzzed.headers(role))


# (``include`` would not do: with per-operation settings in the config it matches every operation)
@schema.exclude(name=[name for name in OPERATIONS if name not in DESTRUCTIVE]).parametrize()
def test_destructive_operations_keep_their_contract(case, fuzzed: Fuzzed, role: str) -> None:
    try:
        _send(case, fuzzed, fuzzed.fresh_token(role))
    finally:
        fuzzed.check_accounts()


def test_every_operation_was_fuzzed(fuzzed: Fuzzed) -> None:
    # Run alone (or after a schema change that left nothing to generate) this fails rather than
    # skips: a coverage check that passes on zero cases proves nothing.
    assert fuzzed.calls, "no case was generated: run this check with the fuzzing tests of this file"
    assert [name for name in OPERATIONS if fuzzed.calls[name] == 0] == []
    assert [name for name in SEEDED_STAND_INS if fuzzed.seeded_hits[name] == 0] == []
    print(f"\nfuzzed {len(OPERATIONS)} operations as {len(ROLES)} roles: {sum(fuzzed.calls.values())} cases, "
          f"{sum(fuzzed.seeded_hits.values())} of them on seeded objects")
