"""Bearer secrets: random, shown once, stored only as a SHA-256 hash; rejected ones are flagged."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from mlservice import events
from mlservice.auth.models import TokenKind
from mlservice.events.recording import current_request

PREFIXES = {TokenKind.session: "mls_sess_", TokenKind.api: "mls_api_"}


def new_secret(kind: TokenKind) -> str:
    # The prefix lets secret scanners (and people) recognise a leaked ML Service token.
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def fingerprint(secret: str) -> str:
    """A short, one-way name for a bearer secret: enough to correlate, useless to replay."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


def token_rejected(secret: str, reason: str, owner: dict[str, Any] | None = None) -> None:
    """A request presented an unknown, expired or revoked bearer secret (flagged). ``owner``:
    the token's user and token fields, when the secret belongs to a (no longer usable) token."""
    context = current_request()
    if context is not None and not context.log.first_flag("token_rejected", (context.client_ip, fingerprint(secret))):
        return  # the same bad token from the same IP: flagged once a minute, not per request
    events.emit(
        "auth.token_rejected", outcome="denied", reasons=[f"request with an invalid token: {reason}"],
        input={"token_fingerprint": fingerprint(secret)}, message=reason, **(owner or {}),
    )
