"""Bounded, secret-free summaries of an operation's input and output for the event log."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import Enum
from typing import Any

import orjson

MAX_SUMMARY_CHARS = 4000
MAX_STRING = 200
MAX_ITEMS = 20
MAX_DEPTH = 4
REDACTED = "[redacted]"

# Keys whose values are never stored, whatever they hold.
SECRET_KEY = re.compile(r"pass(word)?|secret|token|authorization|cookie|api[_-]?key|credential", re.I)
# Strings that look like our bearer secrets, wherever they appear.
SECRET_VALUE = re.compile(r"mls_(sess|api)_[A-Za-z0-9_\-]+")


def _secret_key(key: str) -> bool:
    # "api_token_id", "expires_at", "token_fingerprint" describe a secret without holding it.
    return bool(SECRET_KEY.search(key)) and not key.endswith(("_id", "_at", "_fingerprint", "name"))


def _scrub(text: str) -> str:
    text = SECRET_VALUE.sub(REDACTED, text)
    return text if len(text) <= MAX_STRING else text[:MAX_STRING] + f"… ({len(text)} chars)"


def _bound(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, Enum):
        return _bound(value.value, depth)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if depth >= MAX_DEPTH:
        return f"<{type(value).__name__}>"
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                out["…"] = f"{len(value) - MAX_ITEMS} more keys"
                break
            key = str(key)
            out[key] = REDACTED if _secret_key(key) else _bound(item, depth + 1)
        return out
    if isinstance(value, (list, tuple, set)):
        items = list(value)
        out_list = [_bound(item, depth + 1) for item in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            out_list.append(f"… {len(items) - MAX_ITEMS} more items")
        return out_list
    return _scrub(str(value))


def summarize(value: Any, max_chars: int = MAX_SUMMARY_CHARS) -> dict[str, Any] | None:
    """A JSON object of at most ``max_chars`` serialized characters with secrets removed."""
    if value is None:
        return None
    bounded = _bound(value if isinstance(value, dict) else {"value": value}, 0)
    text = orjson.dumps(bounded).decode()
    if len(text) <= max_chars:
        return bounded
    return {"truncated": True, "preview": text[: max_chars - 100]}
