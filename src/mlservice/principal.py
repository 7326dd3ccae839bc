"""Who is calling: the access tiers and the ``Principal`` snapshot every layer may import.

It sits below every domain (it imports nothing of the project) because the event log, live
updates and each service take the caller as an argument, while authentication, which creates
it, itself records events: keeping it in ``auth`` would tie those parts in a circle."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Tier(str, enum.Enum):
    user = "user"
    admin = "admin"
    system_admin = "system_admin"

    @property
    def rank(self) -> int:
        return TIER_RANK[self]


TIER_RANK = {Tier.user: 0, Tier.admin: 1, Tier.system_admin: 2}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a snapshot taken when the request was authenticated.

    It carries the rest of the caller's account as read with the token, so that
    ``GET /auth/user-info`` answers from the one lookup every request makes anyway."""

    user_id: int
    username: str
    tier: Tier
    auth_kind: str  # "session" | "api" | "system"
    token_id: int | None = None
    created_at: datetime | None = None
    last_login_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.tier.rank >= Tier.admin.rank
