"""The command line, run as a user would: real processes, a real server on a free port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlservice.db.migrate import head_revision
from mlservice.settings import Settings


def run_cli(*args: str, env: dict[str, str], stdin: str | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "mlservice", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ML_DATA_DIR": str(tmp_path / "data"),
    }


def test_init_env_writes_fresh_secrets_and_refuses_to_overwrite(tmp_path: Path, cli_env) -> None:
    target = tmp_path / ".env"
    assert run_cli("init-env", "--path", str(target), env=cli_env).returncode == 0
    first = target.read_text()
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    settings = Settings(_env_file=target)
    assert len(settings.admin_api_token.get_secret_value()) >= 32
    again = run_cli("init-env", "--path", str(target), env=cli_env)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert target.read_text() == first
    assert run_cli("init-env", "--path", str(target), "--force", env=cli_env).returncode == 0
    assert target.read_text() != first


def test_config_masks_secrets(cli_env) -> None:
    env = cli_env | {"ML_ADMIN_API_TOKEN": "z" * 40, "ML_ADMIN_PASSWORD": "very-secret-pw"}
    result = run_cli("config", env=env)
    assert result.returncode == 0
    assert "ML_ADMIN_API_TOKEN = ********" in result.stdout
    assert "z" * 40 not in result.stdout and "very-secret-pw" not in result.stdout
    assert "ML_SERVICE_PORT = 8085" in result.stdout


def test_admin_commands(cli_env) -> None:
    created = run_cli(
        "admin", "create-user", "--username", "ops", "--tier", "admin", "--password-stdin",
        env=cli_env, stdin="ops-password-1\n",
    )
    assert created.returncode == 0, created.stderr
    assert "created user 'ops'" in created.stdout and "tier admin" in created.stdout
    duplicate = run_cli(
        "admin", "create-user", "--username", "ops", "--password-stdin", env=cli_env, stdin="x" * 12 + "\n"
    )
    assert duplicate.returncode == 2 and "already taken" in duplicate.stderr
    reset = run_cli("admin", "reset-password", "--username", "ops", env=cli_env, stdin="")
    assert reset.returncode == 0
    generated = re.search(r"generated password \(shown once\): (\S+)", reset.stdout).group(1)
    missing = run_cli("admin", "reset-password", "--username", "ghost", "--password-stdin", env=cli_env, stdin="long-enough-1\n")
    assert missing.returncode == 2 and "does not exist" in missing.stderr

    from mlservice.auth.passwords import verify_password
    from mlservice.db import Database

    database = Database(f"sqlite:///{cli_env['ML_DATA_DIR']}/mlservice.db")
    from sqlalchemy import select

    from mlservice.auth.models import User

    with database.session() as session:
        user = session.scalars(select(User).where(User.username == "ops")).one()
        assert verify_password(user.password_hash, generated)


@pytest.fixture
def server(cli_env) -> Iterator[tuple[str, subprocess.Popen, list[str]]]:
    port = free_port()
    env = cli_env | {"ML_SERVICE_PORT": str(port), "ML_SERVICE_HOST": "127.0.0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mlservice", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Uvicorn running" in line or process.poll() is not None:
            break
    assert process.poll() is None, "".join(lines)
    yield base, process, lines
    process.terminate()
    process.wait(timeout=20)


def test_serve_first_start_prints_a_generated_admin_password_once(server, cli_env) -> None:
    base, _process, lines = server
    output = "".join(lines)
    match = re.search(r"generated password:\s+(\S+)", output)
    assert match, output
    response = httpx.post(f"{base}/auth/login", json={"username": "admin", "password": match.group(1)})
    assert response.status_code == 200 and response.json()["user"]["tier"] == "system_admin"
    assert httpx.post(f"{base}/auth/login", json={"username": "admin", "password": "admin"}).status_code == 401


def test_0_11_2_curl_examples_work_as_written(server) -> None:
    """The README's (and 0.11.2's) curl examples, run through curl itself."""
    base = server[0]

    def curl(*args: str) -> str:
        result = subprocess.run(["curl", "-s", *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout

    import json

    registered = json.loads(curl(
        "-X", "POST", f"{base}/auth/register", "-H", "Content-Type: application/json",
        "-d", '{\n    "username": "user1",\n    "password": "secure_password"\n  }',
    ))
    assert registered["username"] == "user1"
    logged_in = json.loads(curl(
        "-X", "POST", f"{base}/auth/login", "-H", "Content-Type: application/json",
        "-d", '{\n    "username": "user1",\n    "password": "secure_password"\n  }',
    ))
    token = logged_in["token"]
    info = json.loads(curl("-X", "GET", f"{base}/auth/user-info", "-H", f"Authorization: Bearer {token}"))
    assert info["username"] == "user1" and info["tier"] == "user"
    created = json.loads(curl(
        "-X", "POST", f"{base}/auth/tokens", "-H", f"Authorization: Bearer {token}",
        "-H", "Content-Type: application/json", "-d", '{\n    "name": "My API Token"\n  }',
    ))
    assert created["name"] == "My API Token" and created["token"]
    again = json.loads(curl(f"{base}/auth/user-info", "-H", f"Authorization: Bearer {created['token']}"))
    assert again["username"] == "user1"


def test_restart_keeps_data_and_does_not_recreate_the_admin(cli_env, tmp_path: Path) -> None:
    first = run_cli("migrate", env=cli_env)
    assert first.returncode == 0 and "generated password" in first.stderr
    second = run_cli("migrate", env=cli_env)
    assert second.returncode == 0 and "generated password" not in second.stderr
    assert f"database at revision {head_revision()}" in second.stdout
