"""Telling clients and networks apart: User-Agent family and OS (ua-parser), /16 and /48."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from mlservice.client import Client, client_user_agent
from mlservice.events.clients import ClientKind, client_kind, network
from mlservice.events.rules import NetworkSwitch
from mlservice.principal import Principal
from tests.conftest import make_settings
from tests.events.test_security_replay import CHROME, FIREFOX, SAFARI


@pytest.mark.parametrize(
    ("agent", "kind"),
    [
        (CHROME.format(130), ClientKind("Chrome", "Windows")),
        (CHROME.format(131), ClientKind("Chrome", "Windows")),  # an update is the same client
        (FIREFOX.format(133), ClientKind("Firefox", "Ubuntu")),
        (SAFARI, ClientKind("Safari", "Mac OS X")),
        ("mlservice-cli/0.12.0 (Darwin; Python 3.12.4)", ClientKind("mlservice-cli", "Darwin")),
        ("mlservice-client/0.13.0 (Linux; Python 3.11.7)", ClientKind("mlservice-client", "Linux")),
        ("curl/8.5.0", ClientKind("curl", None)),
        ("python-requests/2.32.3", ClientKind("Python Requests", None)),
        ("python-httpx/0.28.1", ClientKind("httpx", None)),
        (
            "in-house-exporter/3.1 (+https://example.org)",
            ClientKind("in-house-exporter", None),
        ),  # not in uap-core
        ("", ClientKind("unknown", None)),
        (None, ClientKind("unknown", None)),
    ],
)
def test_user_agents_compare_by_family_and_os(agent: str | None, kind: ClientKind) -> None:
    assert client_kind(agent) == kind


def test_our_clients_send_a_user_agent_that_parses_to_a_stable_family() -> None:
    system = platform.system()
    assert client_kind(client_user_agent("mlservice-cli")).family == "mlservice-cli"
    with Client("http://127.0.0.1:9") as client:
        sent = client._http.headers["User-Agent"]
    assert sent.startswith("mlservice-client/") and client_kind(sent).family == "mlservice-client"
    if system in ("Linux", "Darwin", "Windows"):
        assert client_kind(sent).os == system


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("81.2.69.142", "81.2.10.1", True),  # one /16
        ("81.2.69.142", "81.3.69.142", False),
        ("2a02:1234:5678:1::1", "2a02:1234:5678:ffff::2", True),  # one /48
        ("2a02:1234:5678:1::1", "2a02:1234:5679:1::1", False),
        ("10.0.0.5", "192.168.1.3", True),  # private addresses: one internal network
        ("::ffff:81.2.69.142", "81.2.1.1", True),
    ],
)
def test_networks(a: str, b: str, same: bool) -> None:
    assert (network(a) == network(b)) is same


def test_a_token_on_two_distant_networks_within_the_window() -> None:
    switch = NetworkSwitch(make_settings(Path("."), suspicious_network_switch_s=600))
    token = Principal(user_id=1, username="erin", tier="user", auth_kind="api", token_id=7)
    assert switch.reason(token, "81.2.69.142", 0) is None
    assert switch.reason(token, "81.2.10.1", 60) is None  # the same /16
    assert switch.reason(token, "2a02:1234:5678:1::1", 70) is None  # dual stack: IPv6 next to IPv4
    assert switch.reason(token, "185.220.101.4", 120) == (
        "token #7 used from 81.2.10.1 and 185.220.101.4 (distant networks) within 60 s"
    )
    assert switch.reason(token, "81.2.69.142", 120 + 601) is None  # home again, later
