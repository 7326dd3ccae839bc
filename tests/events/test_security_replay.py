"""A realistic week of traffic through the real app: normal use raises no security alert, and
each injected attack raises its own.

The week: people on browsers that update mid-week (Chrome 130 -> 131, Firefox 132 -> 133), two
of them behind one office NAT address, one working from home on Thursday, one on both the
dashboard and the CLI, the Python client in a notebook and a cron job with API tokens, a few
mistyped passwords and a click on an admin-only page. Client IPs come through X-Forwarded-For
from a trusted proxy; the detection rules run on a simulated clock (``EventLog.clock``), so the
week takes seconds. The login lockout counters run on real time (the rate-limit storage):
every failed login of the week falls in one window, the harsher case for false alerts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from sqlalchemy import select

from mlservice.alerts.models import Alert
from mlservice.client import client_user_agent
from mlservice.db import Database
from mlservice.events.clients import client_kind
from mlservice.events.models import Event
from tests.helpers import USER_PASSWORD, Accounts

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{}.0.0.0 Safari/537.36"
)
EDGE = CHROME + " Edg/{}.0.0.0"
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{0}.0) Gecko/20100101 Firefox/{0}.0"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)
CLI = client_user_agent("mlservice-cli")  # what the CLI sends
PYTHON_CLIENT = client_user_agent()  # what mlservice.client.Client sends
CRON = "python-requests/2.32.3"

OFFICE_NAT = "81.2.69.142"  # alice, bob, carol and dave: one address for the whole office
ALICE_HOME = "86.12.40.7"
NOTEBOOK_VM = "134.122.50.9"
CRON_HOST = "164.90.200.10"

DAY, HOUR, MINUTE = 86_400.0, 3_600.0, 60.0
WEEKDAYS = range(5)
BROWSING = ["/models", "/jobs", "/datasets", "/auth/user-info", "/events", "/health/alerts"]


def at(day: int, hour: int, minute: int = 0) -> float:
    return day * DAY + hour * HOUR + minute * MINUTE


@dataclass
class Replay:
    """Requests at simulated times, run in time order; ``tokens`` holds the bearer secrets the
    replay's logins and token creations got, by name."""

    client: TestClient
    now: float = 0.0
    steps: list[tuple[float, int, Callable[[], None]]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client.app.state.events.clock = lambda: self.now

    def step(self, when: float, action: Callable[[], None]) -> None:
        self.steps.append((when, len(self.steps), action))

    def login(
        self,
        when: float,
        username: str,
        ip: str,
        agent: str,
        *,
        session: str | None = None,
        password: str = USER_PASSWORD,
        expect: int = 200,
    ) -> None:
        def run() -> None:
            response = self.client.post(
                "/auth/login",
                json={"username": username, "password": password},
                headers=origin(ip, agent),
            )
            assert response.status_code == expect, response.text
            self.client.cookies.clear()
            if expect == 200:
                self.tokens[session or username] = response.json()["token"]

        self.step(when, run)

    def call(
        self,
        when: float,
        token: str | None,
        ip: str,
        agent: str,
        path: str,
        *,
        method: str = "GET",
        expect: int | None = 200,
        json: dict | None = None,
        keep_as: str | None = None,
    ) -> None:
        def run() -> None:
            headers = origin(ip, agent)
            if token is not None:
                headers["Authorization"] = f"Bearer {self.tokens[token]}"
            response = self.client.request(method, path, headers=headers, json=json)
            assert expect is None or response.status_code == expect, (method, path, response.text)
            if keep_as:
                self.tokens[keep_as] = response.json()["token"]

        self.step(when, run)

    def run(self) -> None:
        for when, _, action in sorted(self.steps, key=lambda step: step[:2]):
            self.now = when
            action()
        assert self.client.app.state.events.flush()


def origin(ip: str, agent: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip, "User-Agent": agent}


def normal_week(replay: Replay) -> None:
    for day in WEEKDAYS:
        chrome, firefox = (
            CHROME.format(130 if day < 2 else 131),
            FIREFOX.format(132 if day < 2 else 133),
        )
        # alice: one session from Monday on; Thursday at home (a new login there), Friday back in
        # the office with Thursday's session.
        alice_ip = ALICE_HOME if day == 3 else OFFICE_NAT
        if day in (0, 3):
            replay.login(at(day, 8, 30), "alice", alice_ip, chrome, session=f"alice{day}")
        session = "alice0" if day < 3 else "alice3"
        for index, minute in enumerate(range(0, 8 * 60, 45)):
            replay.call(
                at(day, 9, minute), session, alice_ip, chrome, BROWSING[index % len(BROWSING)]
            )
        # bob: behind the same NAT address, logs in every morning; mistypes once on Tuesday and
        # opens the admin-only user list twice on Wednesday.
        if day == 1:
            replay.login(
                at(day, 8, 55), "bob", OFFICE_NAT, firefox, password="bob-typo-1", expect=401
            )
        replay.login(at(day, 9, 0), "bob", OFFICE_NAT, firefox, session=f"bob{day}")
        for index, minute in enumerate(range(0, 7 * 60, 60)):
            replay.call(
                at(day, 9, 30 + minute), f"bob{day}", OFFICE_NAT, firefox, BROWSING[index % 3]
            )
        if day == 2:
            for minute in (10, 11):
                replay.call(
                    at(day, 11, minute), "bob2", OFFICE_NAT, firefox, "/auth/users", expect=403
                )
        # carol: the dashboard (Safari) and the CLI (an API token made in the dashboard), one Mac.
        if day == 0:
            replay.login(at(0, 9, 15), "carol", OFFICE_NAT, SAFARI)
            replay.call(
                at(0, 9, 20),
                "carol",
                OFFICE_NAT,
                SAFARI,
                "/auth/tokens",
                method="POST",
                json={"name": "cli"},
                expect=201,
                keep_as="carol-cli",
            )
        if day == 2:  # and once the Python client, signing in with her password
            replay.login(at(day, 16), "carol", OFFICE_NAT, PYTHON_CLIENT, session="carol-python")
            replay.call(at(day, 16, 1), "carol-python", OFFICE_NAT, PYTHON_CLIENT, "/models")
        for minute in (0, 90, 180, 300):
            replay.call(at(day, 10, minute), "carol", OFFICE_NAT, SAFARI, BROWSING[minute % 4])
            replay.call(at(day, 10, minute + 5), "carol-cli", OFFICE_NAT, CLI, "/jobs")
            replay.call(at(day, 10, minute + 6), "carol-cli", OFFICE_NAT, CLI, "/models")
        # dave: Edge in the office; mistypes twice on Tuesday; makes two API tokens on Monday, one
        # for the Python client in a notebook on a cloud VM, one for a cron job on a server.
        if day == 1:
            for minute in (0, 1):
                replay.login(
                    at(day, 8, minute),
                    "dave",
                    OFFICE_NAT,
                    EDGE.format(131, 131),
                    password="dave-typo-22",
                    expect=401,
                )
        replay.login(
            at(day, 8, 5),
            "dave",
            OFFICE_NAT,
            EDGE.format(130 if day < 2 else 131, 131),
            session=f"dave{day}",
        )
        if day == 0:
            for name in ("notebook", "nightly"):
                replay.call(
                    at(0, 8, 10),
                    "dave0",
                    OFFICE_NAT,
                    EDGE.format(130, 131),
                    "/auth/tokens",
                    method="POST",
                    json={"name": name},
                    expect=201,
                    keep_as=name,
                )
        for minute in range(0, 6 * 60, 60):
            replay.call(
                at(day, 13, minute), "notebook", NOTEBOOK_VM, PYTHON_CLIENT, BROWSING[minute % 3]
            )
    # the cron job, every two hours from Monday 10:00 on
    for day in range(7):
        for hour in range(10 if day == 0 else 0, 24, 2):
            replay.call(at(day, hour), "nightly", CRON_HOST, CRON, "/models")
            replay.call(at(day, hour, 1), "nightly", CRON_HOST, CRON, "/jobs")
    # alice checks a job from home on Saturday: a known place, a known client by now
    replay.call(at(5, 11), "alice3", ALICE_HOME, CHROME.format(131), "/jobs")


ATTACKS = {  # attack -> the address it comes from
    "brute force": "45.155.205.233",
    "stolen token": "185.220.101.4",
    "scanner": "91.240.118.50",
    "credential stuffing": "5.188.62.10",
}


def attacks(replay: Replay) -> None:
    # Brute force on carol's password on Saturday night, through the lockout.
    ip = ATTACKS["brute force"]
    for attempt in range(12):
        replay.login(
            at(5, 3, attempt),
            "carol",
            ip,
            CHROME.format(131),
            password=f"guess-{attempt:04d}",
            expect=401 if attempt < 10 else 429,
        )
    # The cron job's token, stolen, used with curl from another network five minutes after the
    # job's own call on Wednesday.
    ip = ATTACKS["stolen token"]
    for minute, path in ((5, "/auth/user-info"), (6, "/models"), (7, "/datasets")):
        replay.call(at(2, 14, minute), "nightly", ip, "curl/8.5.0", path)
    # A scanner probing for well-known paths on Tuesday night.
    ip = ATTACKS["scanner"]
    nikto = "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000{:03d})"
    probes = [
        "/.env",
        "/.git/config",
        "/wp-login.php",
        "/phpmyadmin/",
        "/server-status",
        "/admin",
        "/api/v1/users",
        "/backup.zip",
        "/config.php",
        "/cgi-bin/test.cgi",
        "/login.action",
        "/console",
    ]
    for index, path in enumerate(probes):
        replay.call(at(1, 2) + index * 10, None, ip, nikto.format(index), path, expect=None)
    # Credential stuffing on Thursday night: one try each for a list of usernames.
    ip = ATTACKS["credential stuffing"]
    usernames = [
        "admin",
        "alice",
        "root",
        "test",
        "info",
        "bob",
        "support",
        "sales",
        "user",
        "guest",
        "oracle",
        "dave",
    ]
    for index, username in enumerate(usernames):
        replay.login(
            at(3, 3) + index * 20,
            username,
            ip,
            FIREFOX.format(133),
            password="Summer2026!",
            expect=401,
        )


def security_alerts(database: Database) -> list[Alert]:
    with database.session() as session:
        return list(session.scalars(select(Alert).where(Alert.kind == "security")).all())


def week(make_client, *, with_attacks: bool) -> Replay:
    client = make_client(trust_proxy=True, trusted_proxies=["testclient"])
    accounts = Accounts(client)
    for username in ("alice", "bob", "carol", "dave"):
        accounts.create(username)
    replay = Replay(client)
    normal_week(replay)
    if with_attacks:
        attacks(replay)
    replay.run()
    return replay


def test_a_normal_week_raises_no_security_alert(make_client, database: Database) -> None:
    replay = week(make_client, with_attacks=False)
    with database.session() as session:
        rows = session.scalars(select(Event).where(Event.client_ip.is_not(None))).all()
        flagged = [(e.type, e.client_ip, e.reasons) for e in rows if e.suspicious]
        noted = [e.message for e in rows if e.type in ("client.new", "login.ok") and e.message]
    alerts = security_alerts(database)
    print(
        f"\nnormal week: {len(replay.steps)} requests, {len(noted)} informational notes, "
        f"{len(flagged)} flagged events, {len(alerts)} security alerts"
    )
    assert flagged == [] and alerts == []
    # The rules did see what was new, and said so without alarm.
    assert "user 'alice' used from a new IP 86.12.40.7" in noted
    assert f"user 'carol' used with a new client ({client_kind(PYTHON_CLIENT)})" in noted
    assert any(
        note.endswith(f"used from a new IP {OFFICE_NAT}") for note in noted
    )  # Friday: Thursday's session


def test_each_injected_attack_raises_an_alert(make_client, database: Database) -> None:
    replay = week(make_client, with_attacks=True)
    alerts = security_alerts(database)
    by_attack = {
        name: [a for a in alerts if a.details.get("client_ip") == ip]
        for name, ip in ATTACKS.items()
    }
    false_alerts = [a.message for a in alerts if a.details.get("client_ip") not in ATTACKS.values()]
    recall = sum(1 for found in by_attack.values() if found) / len(ATTACKS)
    print(
        f"\nweek with attacks: {len(replay.steps)} requests; recall {recall:.0%}, "
        f"false alerts {len(false_alerts)}"
    )
    for name, found in by_attack.items():
        print(f"  {name}: {len(found)} alert(s): {[a.dedup_key for a in found]}")
    assert false_alerts == []
    assert recall == 1.0
    # One alert per attack: a brute force that reaches the lockout is one alert, raised by the
    # repeated failures and refreshed by the lockout (its blocked attempts are not flagged).
    assert {name: len(found) for name, found in by_attack.items()} == {
        "brute force": 1,
        "stolen token": 1,
        "scanner": 1,
        "credential stuffing": 1,
    }
    brute = by_attack["brute force"][0]
    assert brute.occurrences > 1 and "locked" in brute.message, brute.message  # refreshed by the lockout
    stolen = by_attack["stolen token"][0].message
    assert "with a new client (curl)" in stolen and "(distant networks)" in stolen
