"""What a request's User-Agent and IP say about the client, for the detection rules.

Two requests come from the same *client* when their User-Agents parse to the same family and OS
(``ua-parser``, the maintained binding of uap-core's database): Chrome 130 and Chrome 131 on
Windows are one client, the dashboard and the CLI of one person are two. The version is left
out on purpose: every browser release changes it. A User-Agent the database does not know
(``testclient``, an in-house script) is named by its first product token, which is what such
clients put first (RFC 9110 ``product/version``).

Two addresses are on the same *network* when they share a /16 (IPv4) or a /48 (IPv6); every
private, loopback and link-local address counts as one internal network."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cache, lru_cache

from ua_parser import Domain, Parser
from ua_parser.loaders import load_lazy_builtins
from ua_parser.matchers import OSMatcher, UserAgentMatcher

# Our own clients (src/mlservice/client.py, the CLI) and httpx, which uap-core does not name.
# They send "mlservice-cli/0.12.0 (Linux; Python 3.11.7)": the OS is the first word in brackets.
OWN_AGENTS = [
    UserAgentMatcher(r"^(mlservice-cli|mlservice-client)/(\d+)\.(\d+)"),
    UserAgentMatcher(r"^python-(httpx)/(\d+)\.(\d+)"),
]
OWN_OS = [OSMatcher(r"^mlservice-(?:cli|client)/\S+ \((Linux|Darwin|Windows|FreeBSD)\b")]
UNKNOWN = "unknown"
INTERNAL_NETWORK = "internal"


@dataclass(frozen=True)
class ClientKind:
    family: str
    os: str | None

    def __str__(self) -> str:
        return f"{self.family} on {self.os}" if self.os else self.family


@cache
def _parser() -> Parser:
    agents, systems, devices = load_lazy_builtins()
    return Parser.from_matchers(([*OWN_AGENTS, *agents], [*OWN_OS, *systems], devices))


@lru_cache(maxsize=4096)
def client_kind(user_agent: str | None) -> ClientKind:
    """The client a User-Agent names: browser (or tool) family and OS, no versions."""
    if not user_agent or not user_agent.strip():
        return ClientKind(UNKNOWN, None)
    result = _parser()(user_agent, Domain.USER_AGENT | Domain.OS)
    agent, system = result.user_agent, result.os
    if agent is not None and agent.family != "Other":
        family = agent.family
    else:
        family = user_agent.split()[0].split("/")[0][:40] or UNKNOWN
    return ClientKind(
        family, system.family if system is not None and system.family != "Other" else None
    )


@lru_cache(maxsize=65_536)  # checked on every signed-in request
def network(ip: str | None) -> str | None:
    """The network an address belongs to: its /16 (IPv4) or /48 (IPv6), or ``internal``."""
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip  # not an address (a test client's name): its own network
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        return INTERNAL_NETWORK
    prefix = 16 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
