"""HTTPS and WSS with a certificate from `mlservice gen-cert`, and clear start-up failures."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mlservice.client import Client
from tests.live_server import base_env, free_port, live_server


def mlservice(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlservice", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_gen_cert_then_https_and_wss_round_trip(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    made = mlservice("gen-cert", env=env, cwd=tmp_path)  # default paths: ./ssl/cert.pem, ./ssl/key.pem
    assert made.returncode == 0, made.stderr
    cert, key = tmp_path / "ssl/cert.pem", tmp_path / "ssl/key.pem"
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    again = mlservice("gen-cert", env=env, cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr

    with live_server(tmp_path, scheme="https", ML_USE_HTTPS="true") as server:
        assert "https://" in "".join(server.lines)
        trusted = ssl.create_default_context(cafile=str(cert))
        response = httpx.get(f"{server.url}/health", verify=trusted)
        assert response.status_code == 200 and response.json()["status"] == "ok"
        assert response.headers["x-request-id"]
        with pytest.raises(httpx.ConnectError):  # not trusted without the CA
            httpx.get(f"{server.url}/health")
        plain = server.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{plain}/health")

        token = server.admin_token(verify=trusted)
        with Client(server.url, token, verify=str(cert)) as client:
            assert client.user_info()["username"] == "admin"

        async def hello() -> dict:
            import websockets

            wss = server.url.replace("https://", "wss://") + f"/ws?token={token}"
            async with websockets.connect(wss, ssl=trusted) as socket:
                return json.loads(await asyncio.wait_for(socket.recv(), 10))

        assert asyncio.run(hello())["type"] == "hello"

        status = mlservice("status", "--url", server.url, "--ca-file", str(cert), env=env, cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        # On the server's machine `status` finds the port, the scheme and the CA in the settings.
        local = mlservice("status", env=server.env, cwd=tmp_path)
        assert local.returncode == 0, local.stdout + local.stderr


@pytest.mark.parametrize("problem", ["missing", "unreadable", "mismatched", "garbage"])
def test_bad_certificate_stops_start_up_with_a_clear_message(tmp_path: Path, problem: str) -> None:
    env = base_env(tmp_path)
    assert mlservice("gen-cert", "--cert", "a/cert.pem", "--key", "a/key.pem", env=env, cwd=tmp_path).returncode == 0
    assert mlservice("gen-cert", "--cert", "b/cert.pem", "--key", "b/key.pem", env=env, cwd=tmp_path).returncode == 0
    cert, key = tmp_path / "a/cert.pem", tmp_path / "a/key.pem"
    if problem == "missing":
        cert = tmp_path / "nowhere.pem"
        expected = "does not exist"
    elif problem == "unreadable":
        key = tmp_path / "a"  # a directory: exists, cannot be read as a file
        expected = "which is not a file"
    elif problem == "mismatched":
        key = tmp_path / "b/key.pem"
        expected = "matching private key"
    else:
        cert.write_text("not a certificate\n")
        expected = "not a usable PEM certificate"
    env |= {"ML_DATA_DIR": str(tmp_path / "data"), "ML_USE_HTTPS": "true", "ML_SSL_CERT_FILE": str(cert),
            "ML_SSL_KEY_FILE": str(key), "ML_SERVICE_PORT": str(free_port()), "ML_ADMIN_PASSWORD": "x" * 12}
    result = mlservice("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "error: ML_USE_HTTPS is on but" in result.stderr and expected in result.stderr, result.stderr
