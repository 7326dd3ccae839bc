"""Structured logs: JSON or text, the request id on every line and in X-Request-ID, rotation."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from mlservice.app import create_app
from mlservice.observability.logs import LOG_FILE, configure_logging
from tests.conftest import make_settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def app_with_a_logging_route(settings, database):  # type: ignore[no-untyped-def]
    app = create_app(settings, database)

    def shout() -> dict:
        logging.getLogger("mlservice.test").warning("inside the request", extra={"answer": 42})
        return {"ok": True}

    app.router.routes.insert(0, APIRoute("/_test/log", shout, methods=["GET"]))  # before the dashboard mount
    return app


def test_json_lines_carry_the_request_id(tmp_path: Path, restore_logging: None, sqlite_database) -> None:
    settings = make_settings(tmp_path, sqlite_database, log_format="json", log_dir=tmp_path / "logs", log_level="INFO")
    configure_logging(settings)
    with TestClient(app_with_a_logging_route(settings, sqlite_database)) as client:
        given = client.get("/_test/log", headers={"X-Request-ID": "trace-abc.1"})
        generated = client.get("/_test/log")
        hostile = client.get("/_test/log", headers={"X-Request-ID": "bad id\" with spaces" * 5})
    assert given.headers["x-request-id"] == "trace-abc.1"
    new_id = generated.headers["x-request-id"]
    assert len(new_id) == 16 and new_id != "trace-abc.1"
    assert hostile.headers["x-request-id"] != "bad id\" with spaces" * 5  # replaced, not echoed
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in (tmp_path / "logs" / LOG_FILE).read_text().splitlines()]
    ours = [line for line in lines if line["logger"] == "mlservice.test"]
    assert [line["request_id"] for line in ours] == ["trace-abc.1", new_id, hostile.headers["x-request-id"]]
    assert ours[0]["level"] == "WARNING" and ours[0]["message"] == "inside the request" and ours[0]["answer"] == 42
    assert all({"ts", "level", "logger", "message", "request_id"} <= set(line) for line in lines)


def test_text_format_level_and_rotation(tmp_path: Path, restore_logging: None) -> None:
    settings = make_settings(tmp_path, log_dir=tmp_path / "logs", log_level="WARNING",
                             log_max_mb=0.001, log_backups=2)  # ~1 KB per file
    configure_logging(settings)
    log = logging.getLogger("mlservice.test")
    log.info("below the level")
    for number in range(60):
        log.warning("line %d of a rotated log", number)
    files = sorted(path.name for path in (tmp_path / "logs").iterdir())
    assert files == [LOG_FILE, f"{LOG_FILE}.1", f"{LOG_FILE}.2"]
    text = (tmp_path / "logs" / LOG_FILE).read_text()
    assert "WARNING mlservice.test [-] line 59 of a rotated log" in text
    assert "below the level" not in "".join((tmp_path / "logs" / name).read_text() for name in files)
