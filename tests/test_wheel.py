"""The wheel is the product: built as `make dist` builds it, installed into a fresh venv outside
the checkout with no Node on PATH, started from an empty directory, then used as a user would
(dashboard, first admin, SQLite under that directory, `mlservice train` / `predict`).

And the bad input: a missing or corrupt dashboard still starts the API, with one warning in the
log and a plain page at ``/`` that says so.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mlservice import __version__
from mlservice.app import create_app
from tests.conftest import make_settings
from tests.helpers import adult_sample
from tests.live_server import free_port, spawn_serve

REPO = Path(__file__).resolve().parents[1]
EXPORT = REPO / "frontend" / "out"
ADMIN_PASSWORD = "wheel-admin-password-1"
WARNING = "dashboard unavailable, serving the API only"


# -- bad input, in process: fast, on both database backends ----------------------------------------

def test_a_missing_dashboard_serves_a_plain_page_and_logs_one_warning(tmp_path, database, caplog) -> None:
    settings = make_settings(tmp_path, database, dashboard_dir=tmp_path / "no-such-export")
    with caplog.at_level(logging.WARNING, logger="mlservice"):
        app = create_app(settings, database)
    assert [r.getMessage() for r in caplog.records if WARNING in r.getMessage()] == [
        f"{WARNING}: {tmp_path / 'no-such-export' / 'index.html'} is missing"]
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "the dashboard is unavailable" in page.text and __version__ in page.text
        assert str(tmp_path) not in page.text  # server paths go to the log only
        assert client.get("/health").json()["status"] == "ok"  # the API itself runs


def test_a_truncated_dashboard_is_refused_rather_than_served_blank(tmp_path, sqlite_database, caplog) -> None:
    out = tmp_path / "out"
    (out / "_next" / "static" / "chunks").mkdir(parents=True)
    (out / "_next" / "static" / "chunks" / "main-1.js").write_text("1")
    (out / "index.html").write_text('<html><script src="/_next/static/chunks/main-1.js"></script>'
                                    '<script src="/_next/static/chunks/app-2.js"></script></html>')
    settings = make_settings(tmp_path, sqlite_database, dashboard_dir=out)
    with caplog.at_level(logging.WARNING, logger="mlservice"):
        app = create_app(settings, sqlite_database)
    assert any("_next/static/chunks/app-2.js" in r.getMessage() for r in caplog.records)
    with TestClient(app) as client:
        assert client.get("/").status_code == 503
    (out / "index.html").write_bytes(b"\xff\xfe\x00garbage")  # not text at all
    with TestClient(create_app(settings, sqlite_database)) as client:
        assert client.get("/").status_code == 503


def test_the_dashboard_package_names_the_same_version() -> None:
    # The About tab shows /health's version; package.json is the only other place that names one.
    assert json.loads((REPO / "frontend" / "package.json").read_text())["version"] == __version__


# -- the wheel, end to end ----------------------------------------------------------------------------

def _run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], check=False, env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`python -m build` as `make dist` runs it: the sdist, then the wheel built from the sdist
    (so MANIFEST.in is exercised too). The dashboard export comes from `make test`'s `dashboard`
    step; without it the wheel would be API-only, so fail rather than test that."""
    if not (EXPORT / "index.html").is_file():
        pytest.fail(f"{EXPORT}/index.html is missing: run `make dashboard` (make test does) first")
    outdir = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    _run(sys.executable, "-m", "build", "--outdir", outdir, REPO, timeout=600)
    print(f"\nbuild: {time.monotonic() - started:.1f} s", end="")
    wheel = next(outdir.glob("mlservice-*.whl"))
    return {"wheel": wheel, "sdist": next(outdir.glob("mlservice-*.tar.gz"))}


def test_the_wheel_carries_the_dashboard_and_the_version(built) -> None:
    wheel = built["wheel"]
    assert wheel.name == f"mlservice-{__version__}-py3-none-any.whl"
    assert built["sdist"].name == f"mlservice-{__version__}.tar.gz"
    names = set(zipfile.ZipFile(wheel).namelist())
    exported = {p.relative_to(EXPORT).as_posix() for p in EXPORT.rglob("*") if p.is_file()}
    assert {f"mlservice/dashboard/{name}" for name in exported} <= names
    assert "mlservice/db/migrations/env.py" in names
    print(f"\nwheel: {wheel.stat().st_size / 1e6:.2f} MB, sdist: {built['sdist'].stat().st_size / 1e6:.2f} MB",
          end="")


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A fresh venv outside the checkout, the wheel installed in it. pip takes the dependencies
    from its usual index (and the machine's cache or find-links, as configured for pip)."""
    root = tmp_path_factory.mktemp("wheel-venv")
    started = time.monotonic()
    _run(sys.executable, "-m", "venv", root / "venv")
    bin_dir = root / "venv" / "bin"
    # Nothing of the checkout or of the developer's shell: no Node, no ML_*, no PYTHONPATH to src/.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = str(bin_dir)
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None
    _run(bin_dir / "pip", "install", "--quiet", built["wheel"], env=env, timeout=900)
    print(f"\nvenv + pip install: {time.monotonic() - started:.1f} s", end="")
    where = _run(bin_dir / "python", "-c", "import mlservice; print(mlservice.__file__)", env=env, cwd=root)
    assert where.stdout.strip().startswith(str(root)), where.stdout  # the installed copy, not src/
    return {"bin": bin_dir, "env": env, "root": root}


@contextmanager
def _serve(venv: dict[str, object], home: Path) -> Iterator[tuple[str, list[str]]]:
    port = free_port()
    env = dict(venv["env"]) | {  # type: ignore[arg-type]
        "ML_ADMIN_PASSWORD": ADMIN_PASSWORD, "ML_SERVICE_HOST": "127.0.0.1", "ML_SERVICE_PORT": str(port),
        "ML_MIN_WORKERS": "1", "ML_MAX_WORKERS_LIMIT": "1",
    }
    process, lines = spawn_serve(home, env, program=(str(venv["bin"] / "mlservice"),))  # type: ignore[operator]
    try:
        yield f"http://127.0.0.1:{port}", lines
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=30)


def test_the_installed_wheel_is_the_whole_product(built, venv) -> None:
    bin_dir, env = venv["bin"], venv["env"]
    home = venv["root"] / "empty"  # type: ignore[operator]
    home.mkdir()
    version = _run(bin_dir / "mlservice", "--version", env=env, cwd=home).stdout.strip()  # type: ignore[operator]
    assert version == f"mlservice {__version__}"
    started = time.monotonic()
    with _serve(venv, home) as (url, lines):
        print(f"\nserve from the wheel, listening after {time.monotonic() - started:.1f} s", end="")
        assert not any(WARNING in line for line in lines), "".join(lines)
        index = httpx.get(f"{url}/")
        assert index.status_code == 200 and "/_next/static/" in index.text
        assert index.text == (EXPORT / "index.html").read_text()
        login = httpx.get(f"{url}/login/")
        assert login.status_code == 200 and login.text == (EXPORT / "login" / "index.html").read_text()
        assert httpx.get(f"{url}/health").json()["version"] == __version__
        assert (home / "data" / "mlservice.db").is_file()  # embedded SQLite under the start directory

        token = httpx.post(f"{url}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        client_env = dict(env) | {"ML_URL": url, "ML_TOKEN": token.json()["token"]}  # type: ignore[arg-type]
        adult_sample(300, seed=18).to_csv(home / "adult.csv", index=False)
        started = time.monotonic()
        trained = _run(bin_dir / "mlservice", "train", "adult.csv", "--target", "income",  # type: ignore[operator]
                       "--model-key", "wheel", "--param", "hidden_layer_sizes=[8]", "--param", "max_iter=5",
                       env=client_env, cwd=home)
        assert trained.stdout.startswith("trained wheel "), trained.stdout
        _run(bin_dir / "mlservice", "predict", "adult.csv", "--model-key", "wheel", "-o", "out.csv",  # type: ignore[operator]
             env=client_env, cwd=home)
        print(f", train + predict: {time.monotonic() - started:.1f} s", end="")
        rows = (home / "out.csv").read_text().splitlines()
        assert rows[0].endswith("prediction,confidence") and len(rows) == 301


def test_a_corrupt_dashboard_in_the_wheel_still_starts_the_api(venv) -> None:
    site = Path(_run(venv["bin"] / "python", "-c", "import mlservice; print(mlservice.__file__)",  # type: ignore[operator]
                     env=venv["env"]).stdout.strip()).parent
    chunk = next((site / "dashboard" / "_next" / "static" / "chunks").glob("main-app-*.js"))
    chunk.unlink()  # a damaged install: index.html links a script that is gone
    home = venv["root"] / "corrupt"  # type: ignore[operator]
    home.mkdir()
    with _serve(venv, home) as (url, lines):
        page = httpx.get(f"{url}/")
        assert page.status_code == 503 and "the dashboard is unavailable" in page.text
        assert httpx.get(f"{url}/health").json()["status"] == "ok"
        warnings = [line for line in lines if WARNING in line]
        assert len(warnings) == 1 and chunk.name in warnings[0], "".join(lines)
