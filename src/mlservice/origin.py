"""Where a request came from: client IP, User-Agent and source (gui / api / system)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fastapi import Request

MAX_USER_AGENT = 512
# The dashboard names itself with this header: it marks the source "gui", and auth requires it
# on cookie-authenticated writes (a browser adds cookies on its own, never a custom header).
CLIENT_HEADER = "x-ml-client"
DASHBOARD_CLIENT = "dashboard"


@dataclass(frozen=True)
class Origin:
    source: str
    client_ip: str | None
    user_agent: str | None


SYSTEM_ORIGIN = Origin("system", None, None)


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: Request) -> str | None:
    """The socket peer, unless it is a trusted proxy and ML_TRUST_PROXY is on: then the
    right-most address in X-Forwarded-For that is not itself a trusted proxy."""
    settings = request.app.state.settings
    peer = request.client.host if request.client else None
    if not (settings.trust_proxy and peer and peer in settings.trusted_proxies):
        return peer
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        for hop in reversed(forwarded.split(",")):
            address = _valid_ip(hop)
            if address and address not in settings.trusted_proxies:
                return address
    real_ip = request.headers.get("x-real-ip")
    return _valid_ip(real_ip) if real_ip else peer


def request_origin(request: Request) -> Origin:
    source = "gui" if request.headers.get(CLIENT_HEADER) == DASHBOARD_CLIENT else "api"
    user_agent = request.headers.get("user-agent")
    return Origin(source, client_ip(request), user_agent[:MAX_USER_AGENT] if user_agent else None)
