"""Login lockout: failed logins counted per username and per IP; at the limit the username (or
IP) is locked for ``ML_LOGIN_LOCKOUT_S`` and further attempts get 429 + Retry-After. Counters
share the rate limits' storage (memory, or Redis for every replica, or the file the API
processes of ``serve --workers N`` share)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from limits.storage import storage_from_string

from mlservice import events
from mlservice.auth.ratelimit import KEY_PREFIX, shared_counters, storage_uri
from mlservice.errors import AppError, TooManyRequests
from mlservice.events.recording import current_request
from mlservice.settings import Settings


@dataclass
class LoginFailure:
    reasons: list[str]
    locked: list[str]  # what got locked by this failure: "username 'x'", "IP y"


class LoginGuard:
    """One per app: the lockout counters."""

    def __init__(self, settings: Settings, shared_dir: Path | None = None) -> None:
        self.settings = settings
        self.storage = shared_counters(settings.rate_limit_storage, shared_dir) or storage_from_string(
            storage_uri(settings.rate_limit_storage, asynchronous=False))

    @staticmethod
    def _subjects(username: str, ip: str | None) -> list[tuple[str, str, str]]:
        subjects = [("user", username[:64], f"username {username[:64]!r}")]
        if ip:
            subjects.append(("ip", ip, f"IP {ip}"))
        return subjects

    def check(self, username: str, ip: str | None) -> None:
        for kind, value, label in self._subjects(username, ip):
            key = f"{KEY_PREFIX}:login:lock:{kind}:{value}"
            if self.storage.get(key) > 0:
                retry = max(1, math.ceil(self.storage.get_expiry(key) - time.time()))
                raise TooManyRequests(
                    f"too many failed logins for this {label.split(' ')[0]}: try again in {retry} s",
                    code="login_locked",
                    headers={"Retry-After": str(retry)},
                )

    def failed(self, username: str, ip: str | None) -> LoginFailure:
        settings = self.settings
        window = settings.login_failure_window_s
        result = LoginFailure([], [])
        for kind, value, label in self._subjects(username, ip):
            key = f"{KEY_PREFIX}:login:fail:{kind}:{value}"
            count = self.storage.incr(key, window)
            limit = settings.login_max_failures if kind == "user" else settings.login_max_failures_per_ip
            # Brute force on one username. Failures from one IP are flagged by events' credential
            # stuffing rule (many usernames) or at the IP's lockout: colleagues behind one NAT
            # address mistyping their passwords are not an attack.
            if kind == "user" and count >= settings.suspicious_login_failures:
                result.reasons.append(f"{count} failed logins for {label} within {window} s")
            if count >= limit:
                self.storage.incr(f"{KEY_PREFIX}:login:lock:{kind}:{value}", settings.login_lockout_s)
                self.storage.clear(key)
                result.locked.append(label)
        return result

    def succeeded(self, username: str) -> None:
        self.storage.clear(f"{KEY_PREFIX}:login:fail:user:{username[:64]}")


class LoginAttempt:
    """Wraps the login endpoint: lockout check before, the outcome recorded after."""

    def __init__(self, guard: LoginGuard, username: str) -> None:
        context = current_request()
        self.guard = guard
        self.username = username
        self.ip = context.client_ip if context else None
        self._check_or_record_blocked()

    def _emit(self, event_type: str, **fields: Any) -> None:
        events.emit(event_type, username=self.username[:64], input={"username": self.username}, **fields)

    def _check_or_record_blocked(self) -> None:
        try:
            self.guard.check(self.username, self.ip)
        except TooManyRequests as exc:
            # Recorded, not flagged: the lockout that causes it has raised its alert already.
            self._emit("login.blocked", outcome="denied", message=exc.message)
            raise

    def __enter__(self) -> LoginAttempt:
        return self

    def __exit__(self, exc_type: Any, exc: Any, _tb: Any) -> None:
        if exc is None or not isinstance(exc, AppError):
            return
        if exc.code != "invalid_credentials":
            self._emit("login.failed", outcome="failed", message=exc.message)
            return
        failure = self.guard.failed(self.username, self.ip)
        self._emit("login.failed", outcome="failed", message="wrong username or password", reasons=failure.reasons)
        for label in failure.locked:
            self._emit("login.locked", outcome="denied", reasons=[f"{label} locked out after repeated failed logins"],
                       message=f"{label} locked for {self.guard.settings.login_lockout_s} s after repeated failed logins")

    def succeeded(self, user: Any, token: Any) -> None:
        self.guard.succeeded(self.username)
        events.emit("login.ok", user_id=user.id, username=user.username, auth_kind="session",
                    token_id=token.id, input={"username": self.username},
                    output={"session_token_id": token.id, "expires_at": token.expires_at})


async def get_login_guard(request: Request) -> LoginGuard:
    return request.app.state.login_guard


LoginGuardDep = Annotated[LoginGuard, Depends(get_login_guard)]
