from __future__ import annotations

from fastapi import APIRouter, Response, status

from mlservice.auth import service
from mlservice.auth.deps import SESSION_COOKIE, AdminPrincipal, CurrentPrincipal
from mlservice.auth.lockout import LoginAttempt, LoginGuardDep
from mlservice.auth.models import AuthToken, User
from mlservice.auth.schemas import (
    LoginRequest,
    LoginResponse,
    PasswordChange,
    PasswordConfirmation,
    RegisterRequest,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserBrief,
    UserCreate,
    UsernameChange,
    UserRead,
    UserUpdate,
)
from mlservice.db import DatabaseDep, SessionDep, utcnow
from mlservice.db.pagination import Page, PageDep
from mlservice.errors import error_responses
from mlservice.events import emit
from mlservice.principal import Principal
from mlservice.settings import SettingsDep

router = APIRouter(prefix="/auth", tags=["auth"])

SIGNED_IN = error_responses(401, 422)
# Admin-only routes and writes (a cookie-authenticated write without X-ML-Client is refused).
GUARDED = error_responses(401, 403, 422)

def _token_read(token: AuthToken) -> TokenRead:
    return TokenRead(
        id=token.id,
        name=token.name,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        is_active=token.is_usable(utcnow()),
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserRead,
             responses=error_responses(400, 403, 409, 422))
def register(body: RegisterRequest, session: SessionDep, settings: SettingsDep) -> User:
    user = service.register(session, settings, body.username, body.password)
    emit("user.registered", user_id=user.id, username=user.username, input={"username": body.username})
    return user


@router.post("/login", response_model=LoginResponse, responses=error_responses(400, 401, 403, 422, 429))
def login(
    body: LoginRequest, response: Response, settings: SettingsDep, database: DatabaseDep, guard: LoginGuardDep
) -> LoginResponse:
    # No SessionDep: its write transaction would hold SQLite's lock through the password check.
    with LoginAttempt(guard, body.username) as attempt:  # 429 when locked
        secret, token, user = service.login(database, settings, body.username, body.password)
    attempt.succeeded(user, token)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=settings.session_expiry_days * 86400,
        httponly=True,
        samesite="strict",
        secure=settings.use_https,
        path="/",
    )
    return LoginResponse(
        token=secret, expires_at=token.expires_at, user=UserBrief.model_validate(user)
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=GUARDED)
def logout(principal: CurrentPrincipal, response: Response, session: SessionDep) -> Response:
    service.logout(session, principal)
    emit("logout", principal=principal)
    response.status_code = status.HTTP_204_NO_CONTENT
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# user-info and profile are async and read nothing more: the dashboard asks often.
def _own_account(principal: Principal) -> UserRead:
    """The caller's account as read with their token: a signed-in caller is active by
    definition, and a second read of the same row would double the cost of these calls."""
    return UserRead(
        id=principal.user_id,
        username=principal.username,
        tier=principal.tier.value,
        is_active=True,
        created_at=principal.created_at,
        last_login_at=principal.last_login_at,
    )


@router.get("/user-info", response_model=UserRead, responses=SIGNED_IN)
async def user_info(principal: CurrentPrincipal) -> UserRead:
    return _own_account(principal)


@router.get("/profile", response_model=UserRead, responses=SIGNED_IN)
async def profile(principal: CurrentPrincipal) -> UserRead:
    return _own_account(principal)


@router.put("/profile/password", response_model=UserRead, responses=GUARDED | error_responses(400))
def change_password(
    body: PasswordChange, principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> User:
    user = service.change_password(session, settings, principal, body.current_password, body.new_password)
    emit("user.password_changed", principal=principal, output={"other_sessions_ended": True})
    return user


@router.put("/profile/username", response_model=UserRead, responses=GUARDED | error_responses(400, 409))
def change_username(body: UsernameChange, principal: CurrentPrincipal, session: SessionDep) -> User:
    user = service.change_username(session, principal, body.username)
    emit("user.username_changed", principal=principal, input={"username": body.username})
    return user


@router.delete("/profile", status_code=status.HTTP_204_NO_CONTENT,
               responses=GUARDED | error_responses(400, 409))
def delete_profile(
    body: PasswordConfirmation, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> Response:
    service.delete_own_account(session, principal, body.password)
    emit("user.deleted_self", principal=principal)
    response.status_code = status.HTTP_204_NO_CONTENT
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# Administration of users -----------------------------------------------------------------------


@router.get("/users", response_model=Page[UserRead], responses=GUARDED)
def list_users(_admin: AdminPrincipal, session: SessionDep, page: PageDep, include_deleted: bool = False) -> Response:
    users, total = service.list_users(session, limit=page.limit, offset=page.offset, include_deleted=include_deleted)
    return Page[UserRead].of([UserRead.model_validate(u) for u in users], total, page).as_response()


@router.get("/users/{user_id}", response_model=UserRead, responses=GUARDED | error_responses(404))
def get_user(user_id: int, _admin: AdminPrincipal, session: SessionDep) -> User:
    return service.get_live_user(session, user_id)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserRead,
             responses=GUARDED | error_responses(400, 409))
def create_user(
    body: UserCreate, admin: AdminPrincipal, session: SessionDep, settings: SettingsDep
) -> User:
    user = service.create_user(session, settings, admin, body)
    emit("admin.user_created", principal=admin, input={"username": body.username, "tier": body.tier}, output={"user_id": user.id})
    return user


@router.put("/users/{user_id}", response_model=UserRead,
            responses=GUARDED | error_responses(400, 404, 409))
def update_user(user_id: int, body: UserUpdate, admin: AdminPrincipal, session: SessionDep) -> User:
    user = service.update_user(session, admin, user_id, body)
    emit("admin.user_updated", principal=admin, input={"user_id": user_id, **body.model_dump(exclude_none=True)})
    return user


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=GUARDED | error_responses(404, 409))
def delete_user(user_id: int, admin: AdminPrincipal, session: SessionDep) -> None:
    service.delete_user(session, admin, user_id)
    emit("admin.user_deleted", principal=admin, input={"user_id": user_id})


# API tokens ------------------------------------------------------------------------------------


@router.post("/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreated,
             responses=GUARDED | error_responses(400))
def create_token(
    body: TokenCreate, principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> TokenCreated:
    secret, token = service.create_api_token(
        session, settings, principal, body.name, body.expires_in_days
    )
    emit("token.created", principal=principal, input={"name": body.name, "expires_in_days": body.expires_in_days},
         output={"api_token_id": token.id, "expires_at": token.expires_at})
    return TokenCreated(
        id=token.id,
        name=body.name,
        token=secret,
        created_at=token.created_at,
        expires_at=token.expires_at,
    )


@router.get("/tokens", response_model=Page[TokenRead], responses=SIGNED_IN)
def list_tokens(principal: CurrentPrincipal, session: SessionDep, page: PageDep) -> Response:
    tokens, total = service.list_api_tokens(session, principal, limit=page.limit, offset=page.offset)
    return Page[TokenRead].of([_token_read(t) for t in tokens], total, page).as_response()


@router.post("/tokens/{token_id}/revoke", response_model=TokenRead,
             responses=GUARDED | error_responses(404))
def revoke_token(token_id: int, principal: CurrentPrincipal, session: SessionDep) -> TokenRead:
    token = service.revoke_api_token(session, principal, token_id)
    emit("token.revoked", principal=principal, input={"api_token_id": token_id})
    return _token_read(token)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=GUARDED | error_responses(404))
def delete_token(token_id: int, principal: CurrentPrincipal, session: SessionDep) -> None:
    service.delete_api_token(session, principal, token_id)
    emit("token.deleted", principal=principal, input={"api_token_id": token_id})
