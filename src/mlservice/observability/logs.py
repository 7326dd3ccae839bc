"""Logging: one line per record, readable text or JSON (``ML_LOG_FORMAT``), the request id on every
line, optionally into ``<ML_LOG_DIR>/mlservice.log`` with size-based rotation."""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

from mlservice.settings import Settings

request_id_var: ContextVar[str | None] = ContextVar("mlservice_request_id", default=None)
LOG_FILE = "mlservice.log"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# LogRecord attributes that are not "extra" fields a caller attached.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "request_id", "color_message", "taskName",
}


class RequestIdFilter(logging.Filter):
    """Stamps ``record.request_id`` from the current request's context ("-" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get() or "-"
        return True


# Secrets that library lines carry: a WebSocket URL's ?token= (uvicorn logs the handshake at INFO),
# the Authorization and Cookie headers (the websockets library at DEBUG), our mls_… tokens anywhere.
_SECRETS = re.compile(
    r"(?P<keep>[?&]token=|authorization:\s*\w+\s+|ml_session=)[^\s&;\"']+|mls_(?:sess|api)_[\w-]+", re.I
)


def _redact(match: re.Match[str]) -> str:
    return f"{match.group('keep') or ''}[redacted]"


class SecretFilter(logging.Filter):
    """Removes bearer secrets from a record's message before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRETS.search(message):
            record.msg, record.args = _SECRETS.sub(_redact, message), ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Replace the root logger's handlers: stderr always, plus a rotating file with ML_LOG_DIR."""
    formatter: logging.Formatter = (
        JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            settings.log_dir / LOG_FILE,
            maxBytes=int(settings.log_max_mb * 1024 * 1024),
            backupCount=settings.log_backups,
            encoding="utf-8",
        ))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(RequestIdFilter())
        handler.addFilter(SecretFilter())
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers are not installed (log_config=None): its lines go through ours.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
