from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mlservice.settings import MAX_PASSWORD_LENGTH

TierName = Literal["system_admin", "admin", "user"]
Username = Field(
    min_length=3,
    max_length=64,
    pattern=r"^[A-Za-z0-9_.@-]+$",
    description="3-64 characters: letters, digits, and _ . @ -",
)
Password = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)

class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    tier: TierName
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


class UserBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    tier: TierName


class RegisterRequest(BaseModel):
    username: str = Username
    password: str = Password


class UserCreate(RegisterRequest):
    tier: TierName = "user"


class UserUpdate(BaseModel):
    tier: TierName | None = None
    is_active: bool | None = None


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Password


class LoginResponse(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    user: UserBrief


class PasswordChange(BaseModel):
    current_password: str = Password
    new_password: str = Password


class UsernameChange(BaseModel):
    username: str = Username


class PasswordConfirmation(BaseModel):
    password: str = Password


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str = Field(description="The secret; shown only in this response")
    created_at: datetime
    expires_at: datetime


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    is_active: bool
