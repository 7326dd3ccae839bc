"""Users, sessions and API tokens: the rules live here, endpoints only call in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from mlservice.auth import passwords
from mlservice.auth.models import AuthToken, TokenKind, User
from mlservice.auth.schemas import UserCreate, UserUpdate
from mlservice.auth.tokens import hash_secret, new_secret
from mlservice.db import Database, utcnow
from mlservice.db.pagination import paginate
from mlservice.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from mlservice.principal import Principal, Tier
from mlservice.settings import Settings

LAST_USED_RESOLUTION = timedelta(seconds=60)


def _live_users():  # type: ignore[no-untyped-def]
    return select(User).where(User.deleted_at.is_(None))


def get_live_user(session: Session, user_id: int) -> User:
    user = session.scalars(_live_users().where(User.id == user_id)).first()
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def find_by_username(session: Session, username: str) -> User | None:
    return session.scalars(_live_users().where(User.username == username)).first()


def check_password_policy(settings: Settings, password: str, username: str) -> None:
    if len(password) < settings.password_min_length:
        raise BadRequest(
            f"password is too short: use at least {settings.password_min_length} characters",
            code="weak_password",
        )
    if password.lower() == username.lower():
        raise BadRequest("password must not be the same as the username", code="weak_password")


def _ensure_username_free(session: Session, username: str) -> None:
    if find_by_username(session, username) is not None:
        raise Conflict(f"username {username!r} is already taken", code="username_taken")


def _new_user(session: Session, settings: Settings, username: str, password: str, tier: Tier) -> User:
    check_password_policy(settings, password, username)
    _ensure_username_free(session, username)
    user = User(username=username, password_hash=passwords.hash_password(password), tier=tier.value)
    session.add(user)
    session.flush()
    return user


# Registration and login -----------------------------------------------------------------------


def register(session: Session, settings: Settings, username: str, password: str) -> User:
    if not settings.allow_registration:
        raise Forbidden("registration is disabled on this server; ask an administrator", code="registration_disabled")
    return _new_user(session, settings, username, password, Tier.user)


def authenticate(session: Session, username: str, password: str) -> User:
    # No stored username holds a NUL, and PostgreSQL refuses one in a query: an unknown user.
    user = find_by_username(session, username) if "\x00" not in username else None
    if not passwords.verify_password(user.password_hash if user else None, password):
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    assert user is not None
    if not user.is_active:
        raise Forbidden("this account is deactivated; ask an administrator", code="account_inactive")
    return user


def issue_token(
    session: Session, user: User, kind: TokenKind, lifetime: timedelta, name: str | None = None
) -> tuple[str, AuthToken]:
    secret = new_secret(kind)
    now = utcnow()
    token = AuthToken(
        user_id=user.id,
        kind=kind.value,
        name=name,
        token_hash=hash_secret(secret),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(token)
    session.flush()
    return secret, token


def login(database: Database, settings: Settings, username: str, password: str) -> tuple[str, AuthToken, User]:
    """Argon2 runs before the write transaction: on SQLite that transaction holds the one write
    lock, and every other write would queue behind each login's hashing (seen under load:
    writes waiting seconds behind a few logins)."""
    with database.session() as session:
        verified = authenticate(session, username, password)
        user_id, verified_hash = verified.id, verified.password_hash
    new_hash = passwords.hash_password(password) if passwords.needs_rehash(verified_hash) else None
    with database.session(write=True) as session:
        user = session.get(User, user_id)
        if user is None or user.deleted_at is not None or user.password_hash != verified_hash:
            raise Unauthorized("wrong username or password", code="invalid_credentials")
        if not user.is_active:
            raise Forbidden("this account is deactivated; ask an administrator", code="account_inactive")
        if new_hash is not None:
            user.password_hash = new_hash
        user.last_login_at = utcnow()
        secret, token = issue_token(
            session, user, TokenKind.session, timedelta(days=settings.session_expiry_days)
        )
    return secret, token, user


# Resolving bearer secrets ---------------------------------------------------------------------


class TokenRejected(Exception):
    """A bearer secret that is unknown, expired, revoked, or belongs to an inactive user.
    ``owner``: the token's id and kind and its user's id and name, when the token exists."""

    def __init__(self, reason: str, owner: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.owner = owner


_TOKEN_LOOKUP = (
    select(
        AuthToken.id, AuthToken.kind, AuthToken.expires_at, AuthToken.revoked_at, AuthToken.last_used_at,
        User.id, User.username, User.tier, User.is_active, User.deleted_at, User.created_at, User.last_login_at,
    )
    .join(User, AuthToken.user_id == User.id)
    .where(AuthToken.token_hash == bindparam("token_hash"))
)


@dataclass(frozen=True)
class ResolvedToken:
    principal: Principal
    last_used_at: datetime | None


def resolve_secret(database: Database, secret: str, now: datetime) -> ResolvedToken:
    """One indexed lookup, prepared: this runs on every authenticated request."""
    row = database.prepared(_TOKEN_LOOKUP).first(token_hash=hash_secret(secret))
    if row is None:
        raise TokenRejected("unknown token")
    (token_id, kind, expires_at, revoked_at, last_used_at,
     user_id, username, tier, is_active, deleted_at, created_at, last_login_at) = row
    owner = {"token_id": token_id, "auth_kind": kind, "user_id": user_id, "username": username}
    if revoked_at is not None:
        raise TokenRejected("token has been revoked", owner)
    if expires_at <= now:
        raise TokenRejected("token has expired", owner)
    if deleted_at is not None or not is_active:
        raise TokenRejected("account is deactivated", owner)
    principal = Principal(user_id, username, Tier(tier), kind, token_id, created_at, last_login_at)
    return ResolvedToken(principal, last_used_at)


def system_token_user(session: Session) -> User:
    """``ML_ADMIN_API_TOKEN`` acts as the longest-standing active system_admin."""
    user = session.scalars(
        _live_users()
        .where(User.tier == Tier.system_admin.value, User.is_active.is_(True))
        .order_by(User.id)
    ).first()
    if user is None:
        raise TokenRejected("no active system_admin to act as")
    return user


def touch_token(session: Session, token_id: int, now: datetime) -> None:
    session.execute(
        update(AuthToken)
        .where(AuthToken.id == token_id)
        .where((AuthToken.last_used_at.is_(None)) | (AuthToken.last_used_at < now - LAST_USED_RESOLUTION))
        .values(last_used_at=now)
    )


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or last_used_at < now - LAST_USED_RESOLUTION


def usable_token_tiers(database: Database, token_ids: list[int], now: datetime) -> dict[int, str]:
    """Of these tokens, the ones still usable (not revoked or expired, user active), each with
    its user's current tier: one query per 500 ids, for re-validating long-lived connections."""
    usable: dict[int, str] = {}
    with database.engine.connect() as connection:
        for start in range(0, len(token_ids), 500):
            rows = connection.execute(
                select(AuthToken.id, User.tier)
                .join(User, AuthToken.user_id == User.id)
                .where(
                    AuthToken.id.in_(token_ids[start:start + 500]), AuthToken.revoked_at.is_(None),
                    AuthToken.expires_at > now, User.is_active.is_(True), User.deleted_at.is_(None),
                )
            )
            usable.update({token_id: tier for token_id, tier in rows})
    return usable


def revoke_user_tokens(
    session: Session, user_id: int, *, kind: TokenKind | None = None, keep_token_id: int | None = None
) -> None:
    statement = (
        update(AuthToken)
        .where(AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if kind is not None:
        statement = statement.where(AuthToken.kind == kind.value)
    if keep_token_id is not None:
        statement = statement.where(AuthToken.id != keep_token_id)
    session.execute(statement)


def logout(session: Session, principal: Principal) -> None:
    if principal.auth_kind == TokenKind.session.value and principal.token_id is not None:
        session.execute(
            update(AuthToken)
            .where(AuthToken.id == principal.token_id, AuthToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )


# Own profile ----------------------------------------------------------------------------------


def change_password(
    session: Session, settings: Settings, principal: Principal, current: str, new: str
) -> User:
    user = get_live_user(session, principal.user_id)
    if not passwords.verify_password(user.password_hash, current):
        raise BadRequest("current password is wrong", code="invalid_credentials")
    check_password_policy(settings, new, user.username)
    user.password_hash = passwords.hash_password(new)
    keep = principal.token_id if principal.auth_kind == TokenKind.session.value else None
    revoke_user_tokens(session, user.id, kind=TokenKind.session, keep_token_id=keep)
    return user


def change_username(session: Session, principal: Principal, username: str) -> User:
    user = get_live_user(session, principal.user_id)
    if username != user.username:
        _ensure_username_free(session, username)
        user.username = username
    return user


def delete_own_account(session: Session, principal: Principal, password: str) -> None:
    user = get_live_user(session, principal.user_id)
    if not passwords.verify_password(user.password_hash, password):
        raise BadRequest("password is wrong", code="invalid_credentials")
    _guard_last_system_admin(session, user, "delete")
    _soft_delete(session, user)


# Administration -------------------------------------------------------------------------------


def list_users(
    session: Session, *, limit: int, offset: int, include_deleted: bool = False
) -> tuple[list[User], int]:
    base = select(User) if include_deleted else _live_users()
    return paginate(session, base, User.id, limit=limit, offset=offset)


def _require_rank(actor: Principal, tier: Tier, action: str) -> None:
    if tier.rank > actor.tier.rank:
        raise Forbidden(f"you cannot {action} a user above your own tier ({actor.tier.value})")


def _require_may_manage(actor: Principal, target: User) -> None:
    if target.tier_enum.rank > actor.tier.rank or (
        target.tier_enum is Tier.system_admin and actor.tier is not Tier.system_admin
    ):
        raise Forbidden("only a system_admin can change a system_admin account")


def _guard_last_system_admin(session: Session, target: User, action: str) -> None:
    if target.tier_enum is not Tier.system_admin or not target.is_active:
        return
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.tier == Tier.system_admin.value,
            User.is_active.is_(True),
            User.deleted_at.is_(None),
            User.id != target.id,
        )
    )
    if not others:
        raise Conflict(
            f"cannot {action} {target.username!r}: it is the last active system_admin; "
            "make another user system_admin first",
            code="last_system_admin",
        )


def create_user(session: Session, settings: Settings, actor: Principal, data: UserCreate) -> User:
    tier = Tier(data.tier)
    _require_rank(actor, tier, "create")
    return _new_user(session, settings, data.username, data.password, tier)


def update_user(session: Session, actor: Principal, user_id: int, data: UserUpdate) -> User:
    user = get_live_user(session, user_id)
    _require_may_manage(actor, user)
    if data.tier is not None and data.tier != user.tier:
        new_tier = Tier(data.tier)
        _require_rank(actor, new_tier, "promote")
        if new_tier.rank < user.tier_enum.rank:
            _guard_last_system_admin(session, user, "demote")
        user.tier = new_tier.value
    if data.is_active is not None and data.is_active != user.is_active:
        if not data.is_active:
            _guard_last_system_admin(session, user, "deactivate")
            revoke_user_tokens(session, user.id)
        user.is_active = data.is_active
    return user


def delete_user(session: Session, actor: Principal, user_id: int) -> None:
    if user_id == actor.user_id:
        raise Forbidden("you cannot delete your own account here; use DELETE /auth/profile")
    user = get_live_user(session, user_id)
    _require_may_manage(actor, user)
    _guard_last_system_admin(session, user, "delete")
    _soft_delete(session, user)


def _soft_delete(session: Session, user: User) -> None:
    user.deleted_at = utcnow()
    user.is_active = False
    revoke_user_tokens(session, user.id)


def set_password(session: Session, settings: Settings, username: str, password: str) -> User:
    """Administrative reset (CLI): sets the password and ends every session of the user."""
    user = find_by_username(session, username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist")
    check_password_policy(settings, password, username)
    user.password_hash = passwords.hash_password(password)
    revoke_user_tokens(session, user.id, kind=TokenKind.session)
    return user


def create_user_unchecked(
    session: Session, settings: Settings, username: str, password: str, tier: Tier
) -> User:
    """For the operator's CLI, which runs with the machine's authority rather than a user's."""
    return _new_user(session, settings, username, password, tier)


# API tokens -----------------------------------------------------------------------------------


def create_api_token(
    session: Session, settings: Settings, principal: Principal, name: str, expires_in_days: int | None
) -> tuple[str, AuthToken]:
    user = get_live_user(session, principal.user_id)
    days = expires_in_days or settings.token_expiry_days
    return issue_token(session, user, TokenKind.api, timedelta(days=days), name=name)


def list_api_tokens(
    session: Session, principal: Principal, *, limit: int, offset: int
) -> tuple[list[AuthToken], int]:
    base = select(AuthToken).where(
        AuthToken.user_id == principal.user_id, AuthToken.kind == TokenKind.api.value
    )
    return paginate(session, base, AuthToken.id.desc(), limit=limit, offset=offset)


def _own_api_token(session: Session, principal: Principal, token_id: int) -> AuthToken:
    token = session.get(AuthToken, token_id)
    if token is None or token.user_id != principal.user_id or token.kind != TokenKind.api.value:
        raise NotFound(f"API token {token_id} does not exist")
    return token


def revoke_api_token(session: Session, principal: Principal, token_id: int) -> AuthToken:
    token = _own_api_token(session, principal, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def delete_api_token(session: Session, principal: Principal, token_id: int) -> None:
    session.delete(_own_api_token(session, principal, token_id))


# First start ----------------------------------------------------------------------------------


def ensure_first_admin(session: Session, settings: Settings) -> str | None:
    """Create the system admin on an empty database; return the password if we generated it."""
    if session.scalar(select(func.count()).select_from(User)):
        return None
    generated = None
    if settings.admin_password is not None:
        password = settings.admin_password.get_secret_value()
    else:
        password = generated = secrets.token_urlsafe(12)
    user = User(
        username=settings.admin_username,
        password_hash=passwords.hash_password(password),
        tier=Tier.system_admin.value,
    )
    session.add(user)
    session.flush()
    return generated
