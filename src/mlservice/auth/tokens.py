"""Bearer secrets: random, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

from mlservice.auth.models import TokenKind

PREFIXES = {TokenKind.session: "mls_sess_", TokenKind.api: "mls_api_"}


def new_secret(kind: TokenKind) -> str:
    # The prefix lets secret scanners (and people) recognise a leaked ML Service token.
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
