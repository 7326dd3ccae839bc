"""`mlservice serve --workers 2`: two real API processes on one port (uvicorn's supervisor), on the
embedded default (SQLite, no Redis).

Which process answered is read from the outside: the X-Request-ID prefix is random per process
(observability.metrics), a WebSocket's server side is found in /proc by its port, the leader's
pid is in ``<data dir>/leader.lock``, and pool workers are the API processes' children. Checked:
requests reach both processes; one leader (one pool, one scheduler); WebSocket clients on either
process see every job message; failed logins spread over both processes lock the username; a
promotion is served by the other process within a second; a SIGKILLed leader is replaced and a
job submitted afterwards completes; a SIGKILLed process is replaced and the requests it held end
(5xx or a closed connection), never hang; a SIGKILLed supervisor takes its processes with it (the
port is free for a restart). And in distributed mode (PostgreSQL, Redis, a Celery worker), jobs
submitted to either process complete, with one scheduler. Linux only (/proc)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.distributed.cluster import Cluster, fresh_postgres_database, wait_job
from tests.distributed.test_cluster import receive
from tests.helpers import adult_sample, records, wait_for
from tests.live_server import ADMIN_PASSWORD, MLSERVICE, LiveServer, base_env, live_server
from tests.reliability.test_crash_safety import finished

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")

WORKERS = 2
MAX_FAILURES = 4
SMALL = {"hidden_layer_sizes": [8], "max_iter": 10}
TIMEOUT = 60


# Processes, read from /proc ---------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pool_processes(pid: int) -> list[str]:
    """The job pool's processes under an API process (spawned, forked or a fork server's)."""
    return [line for child in children(pid) if "multiprocessing" in (line := cmdline(child))]


def api_pids(server: LiveServer) -> list[int]:
    """The API processes: the supervisor's spawned children (not its resource tracker)."""
    return sorted(pid for pid in children(server.process.pid) if "spawn_main" in cmdline(pid))


def leader_pid(server: LiveServer) -> int:
    assert server.home is not None
    # 0 while a new leader is between truncating the file and writing its pid into it
    text = (server.home / "data" / "leader.lock").read_text().strip()
    return int(text) if text else 0


def server_pid_of(client_port: int, server_port: int, pids: list[int]) -> int | None:
    """The API process holding the server side of a TCP connection from ``client_port``."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if local == server_port and remote == client_port:
            inode = fields[9]
    for pid in pids:
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return pid
        except OSError:
            continue
    return None


def answered_by(response: httpx.Response) -> str:
    return response.headers["x-request-id"][:8]


def up(server: LiveServer) -> None:
    """Every API process is through its election, at the end of its start-up (the supervisor's
    port listens long before)."""
    def ready() -> bool:
        pids, log = api_pids(server), "".join(server.lines)
        return len(pids) == WORKERS and all(f"process {pid} leads" in log or f"process {pid} follows" in log
                                            for pid in pids)

    wait_for(ready, "the API processes to start")


def pinned_clients(url: str, headers: dict[str, str]) -> list[httpx.Client]:
    """One keep-alive client per API process (each connection stays with the process that
    accepted it)."""
    pinned: dict[str, httpx.Client] = {}
    for _ in range(60):
        client = httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT)
        process = answered_by(client.get("/health"))
        if process in pinned:
            client.close()
        else:
            pinned[process] = client
        if len(pinned) == WORKERS:
            return list(pinned.values())
    raise AssertionError(f"60 connections reached only {len(pinned)} of {WORKERS} processes")


def train(client: httpx.Client, model_key: str, seed: int = 0) -> str:
    response = client.post("/train", json={"model_key": model_key, "target": "income", "params": SMALL,
                                           "data": records(adult_sample(300, seed=seed))})
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def completed(client: httpx.Client, job_id: str) -> bool:
    return finished(str(client.base_url).rstrip("/"), dict(client.headers), job_id, timeout=120)["status"] == "completed"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("workers")
    with live_server(home, ML_API_WORKERS=str(WORKERS), ML_LOGIN_MAX_FAILURES=str(MAX_FAILURES)) as server:
        up(server)
        yield server


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token()}"}


@pytest.fixture(scope="module")
def served_model(server: LiveServer, admin: dict[str, str]) -> str:
    with httpx.Client(base_url=server.url, headers=admin, timeout=TIMEOUT) as client:
        assert completed(client, train(client, "w_served"))
    return "w_served"


# Tests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "env", "named"), [
    (["--workers", "0"], {}, "--workers"), (["--workers", "-2"], {}, "--workers"),
    (["--workers", "two"], {}, "--workers"), ([], {"ML_API_WORKERS": "0"}, "ML_API_WORKERS"),
    ([], {"ML_API_WORKERS": "1.5"}, "ML_API_WORKERS"),
])
def test_a_bad_worker_count_is_a_clear_start_up_error(tmp_path: Path, flag: list[str], env: dict, named: str) -> None:
    env = base_env(tmp_path) | {"ML_DATA_DIR": str(tmp_path / "data"), **env}
    done = subprocess.run([*MLSERVICE, "serve", *flag], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "whole number" in done.stderr, done.stderr
    assert not (tmp_path / "data").exists()  # refused before touching anything


def test_the_gpu_is_probed_once_and_every_process_reports_it(server: LiveServer) -> None:
    """The supervisor probes (a torch import in a child of its own) and publishes the answer;
    the API processes never start a probe of their own (they used to, each at its start: the
    first test on the server runs right after that start, while such a probe would still run)."""
    probes = [pid for api in api_pids(server) for pid in children(api) if "gpu_info" in cmdline(pid)]
    assert not probes, probes
    clients = pinned_clients(server.url, {})
    try:
        def reported() -> bool:
            return all(c.get("/health").json()["gpu"]["source"] != "probing" for c in clients)

        wait_for(reported, "every process to report the GPU probe's answer")
        answers = [c.get("/health").json()["gpu"] for c in clients]
    finally:
        for client in clients:
            client.close()
    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0]["available"] is not None, answers


def test_requests_reach_every_process_and_one_leads(server: LiveServer, admin: dict[str, str]) -> None:
    seen = {answered_by(httpx.get(f"{server.url}/health", timeout=TIMEOUT)) for _ in range(60)}
    assert len(seen) == WORKERS, seen

    pids, leader = api_pids(server), leader_pid(server)
    assert leader in pids, (leader, pids)
    log = "".join(server.lines)
    assert log.count(" leads: it runs the job pool") == 1 and log.count(" follows: another process") == WORKERS - 1, log
    # One job pool: a job runs, in a worker process of the leader's; the others have none.
    with httpx.Client(base_url=server.url, headers=admin, timeout=TIMEOUT) as client:
        assert completed(client, train(client, "w_first"))
    assert pool_processes(leader), "the leader runs no pool"
    pool_elsewhere = {pid: pool_processes(pid) for pid in pids if pid != leader}
    assert all(not found for found in pool_elsewhere.values()), pool_elsewhere


def test_websocket_clients_on_every_process_see_every_job_message(server: LiveServer, admin: dict[str, str]) -> None:
    port, pids = int(server.url.rsplit(":", 1)[1]), api_pids(server)
    sockets: dict[int, ClientConnection] = {}
    try:
        for _ in range(60):
            ws = connect(f"ws://127.0.0.1:{port}/ws", additional_headers=admin, open_timeout=TIMEOUT, legacy=True)
            assert receive(ws, TIMEOUT)["type"] == "hello"
            pid = server_pid_of(ws.socket.getsockname()[1], port, pids)
            if pid is None or pid in sockets:
                ws.close()
            else:
                sockets[pid] = ws
            if len(sockets) == WORKERS:
                break
        assert len(sockets) == WORKERS, sockets
        # One job through each process: job.created is published by the process that took the
        # request, the rest by the leader's pool workers.
        jobs = [train(client, f"w_ws_{n}", seed=n) for n, client in enumerate(pinned_clients(server.url, admin))]
        for pid, ws in sockets.items():
            seen: dict[str, list[str]] = {job_id: [] for job_id in jobs}
            while any("job.completed" not in kinds for kinds in seen.values()):
                message = receive(ws, 120)
                job_id = message["data"].get("job_id")
                if job_id in seen:
                    seen[job_id].append(message["type"])
            for kinds in seen.values():
                assert kinds[0] == "job.created" and "job.started" in kinds, (pid, seen)
    finally:
        for ws in sockets.values():
            ws.close()


def test_failed_logins_on_every_process_count_towards_one_lockout(server: LiveServer) -> None:
    clients = pinned_clients(server.url, {})
    wrong = {"username": "ghost", "password": "not-the-password"}
    try:
        for attempt in range(MAX_FAILURES):
            answer = clients[attempt % WORKERS].post("/auth/login", json=wrong)
            assert answer.status_code == 401, answer.text
        for client in clients:  # each process alone saw fewer than the limit
            locked = client.post("/auth/login", json=wrong)
            assert locked.status_code == 429 and locked.json()["error"]["code"] == "login_locked", locked.text
    finally:
        for client in clients:
            client.close()


# A server of its own, with low thresholds: its burst and flag windows start clean.
BURST, USERNAMES = 200, 4  # each process alone sees at most ~160 requests (60 finding the processes)


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("watched")
    with live_server(home, ML_API_WORKERS=str(WORKERS), ML_BURST_MAX_REQUESTS=str(BURST), ML_BURST_WINDOW_S="300",
                     ML_SUSPICIOUS_LOGIN_USERNAMES=str(USERNAMES), ML_TRUST_PROXY="true") as server:
        up(server)
        yield server


def test_attacks_spread_over_every_process_raise_one_alert_each(watched: LiveServer) -> None:
    """Each process alone sees half of each attack, below its threshold; the processes share
    the detection windows (the run directory's file), so each attack is seen once, whole."""
    clients = pinned_clients(watched.url, {})
    admin = {"Authorization": f"Bearer {watched.admin_token()}"}
    try:
        for n, name in enumerate(["ann", "ben", "cat", "dan"][:USERNAMES]):  # credential stuffing
            tried = clients[n % WORKERS].post("/auth/login", json={"username": name, "password": "not-the-password"})
            assert tried.status_code == 401, tried.text
        # A session token used from two distant networks, through a trusted proxy, one per process.
        via = [{"X-Forwarded-For": "81.2.69.142"}, {"X-Forwarded-For": "185.220.101.4"}]
        login = clients[0].post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}, headers=via[0])
        stolen = {"Authorization": f"Bearer {login.json()['token']}"}
        for n in range(WORKERS):
            assert clients[n].get("/auth/user-info", headers=stolen | via[n]).status_code == 200
        for n in range(BURST):  # a burst: half of it on each process
            assert clients[n % WORKERS].get("/health").status_code == 200
    finally:
        for client in clients:
            client.close()

    # The reader's polls come from an address of their own: they are not part of the burst.
    with httpx.Client(base_url=watched.url, headers=admin | {"X-Forwarded-For": "10.9.8.7"}, timeout=TIMEOUT) as reader:
        def flagged() -> dict[str, list[dict]]:
            found: dict[str, list[dict]] = {"usernames from IP": [], "burst": [], "distant networks": []}
            for event in reader.get("/events/suspicious", params={"limit": 200}).json()["items"]:
                for rule, seen in found.items():
                    if any(rule in reason for reason in event["reasons"]):
                        seen.append(event)
            return found

        deadline = time.monotonic() + 30
        while not all(flagged().values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # every process's event writer has written by now: a second alert would show
        found = flagged()
    counts = {rule: len(seen) for rule, seen in found.items()}
    assert counts == {"usernames from IP": 1, "burst": 1, "distant networks": 1}, (counts, watched.lines[-30:])
    assert found["distant networks"][0]["client_ip"] == "185.220.101.4", found


def test_a_promotion_is_served_by_every_process_within_a_second(server: LiveServer, admin: dict[str, str]) -> None:
    first, second = pinned_clients(server.url, admin)
    for seed in (1, 2):
        assert completed(first, train(first, "w_promote", seed=seed))
    row = {"data": records(adult_sample(1, seed=3).drop(columns=["income"]))}
    for client in (first, second):  # both processes cache the active version, 1.0.0
        assert client.post("/models/w_promote/predict", json=row).json()["version"] == "1.0.0"

    for action, expected in (("versions/1.1.0/promote", "1.1.0"), ("rollback", "1.0.0")):
        assert first.post(f"/models/w_promote/{action}").status_code == 200
        promoted = time.monotonic()
        served: list[tuple[float, str]] = []
        while time.monotonic() - promoted < 1.5:
            sent = time.monotonic() - promoted
            served.append((sent, second.post("/models/w_promote/predict", json=row).json()["version"]))
        late = [version for sent, version in served if sent >= 1.0]
        assert late and set(late) == {expected}, served


def test_distributed_mode_with_two_api_processes(tmp_path: Path) -> None:
    """ML_QUEUE=celery: both processes send jobs to the broker; only the scheduler is elected."""
    with fresh_postgres_database() as url:
        cluster = Cluster(tmp_path, url, ML_API_WORKERS=str(WORKERS))
        try:
            base = cluster.start_api("api")
            cluster.start_worker("w1")
            cluster.wait_workers(base, 1)
            wait_for(lambda: " follows: another process" in cluster.log("api", tail=10**7), "both processes")
            clients = pinned_clients(base, cluster.login(base))
            jobs = [train(client, f"w_dist_{n}", seed=n) for n, client in enumerate(clients)]
            assert [wait_job(base, dict(clients[0].headers), job_id)["status"] for job_id in jobs] == ["completed"] * 2
            log = cluster.log("api", tail=10**7)
            assert log.count(" leads: it runs") == 1 and log.count(" follows: another process") == WORKERS - 1, log
        finally:
            cluster.stop()


def test_a_killed_leader_is_replaced_and_jobs_still_run(server: LiveServer, admin: dict[str, str]) -> None:
    leader = leader_pid(server)
    os.kill(leader, signal.SIGKILL)
    new_leader = wait_for(lambda: (pid := leader_pid(server)) != leader and pid, "another process to lead", 30)
    assert new_leader in api_pids(server)
    up(server)  # the supervisor replaced the dead process
    assert "".join(server.lines).count(" leads: it runs the job pool") == 2
    with httpx.Client(base_url=server.url, headers=admin, timeout=TIMEOUT) as client:
        for _ in range(4):  # through whichever processes answer, the new one included
            assert completed(client, train(client, "w_after"))
            client.close()
            client = httpx.Client(base_url=server.url, headers=admin, timeout=TIMEOUT)
    pool_elsewhere = {pid: pool_processes(pid) for pid in api_pids(server) if pid != new_leader}
    assert all(not found for found in pool_elsewhere.values()), pool_elsewhere


def test_a_killed_process_is_replaced_and_its_requests_end(
    server: LiveServer, admin: dict[str, str], served_model: str
) -> None:
    row = {"data": records(adult_sample(1, seed=4).drop(columns=["income"]))}
    outcomes: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                answer = httpx.post(f"{server.url}/models/{served_model}/predict", json=row, headers=admin,
                                    timeout=TIMEOUT)
                outcomes.append(str(answer.status_code))
            except httpx.TimeoutException:
                outcomes.append("hang")
            except httpx.TransportError:
                outcomes.append("closed")  # the process died holding the connection

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    victim = next(pid for pid in api_pids(server) if pid != leader_pid(server))
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in api_pids(server) and len(api_pids(server)) == WORKERS, "a replacement", 60)
    up(server)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=2 * TIMEOUT)
    assert "hang" not in outcomes and all(o in ("closed", "200") or o.startswith("5") for o in outcomes), outcomes
    assert outcomes.count("200") > 10, outcomes
    seen = {answered_by(httpx.get(f"{server.url}/health", timeout=TIMEOUT)) for _ in range(60)}
    assert len(seen) == WORKERS, seen  # the replacement serves



def test_a_killed_supervisor_takes_its_processes_with_it(server: LiveServer) -> None:
    """Last: it ends the module's server. Orphans would hold the port against a restart."""
    pids = api_pids(server)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() and "spawn_main" in cmdline(pid) for pid in pids),
             "the API processes to exit", 30)
    port = int(server.url.rsplit(":", 1)[1])

    def port_free() -> bool:  # as `serve` binds it: SO_REUSEADDR
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
                sock.listen()
            except OSError:
                return False
            return True

    holders = subprocess.run(["ss", "-ltnp", f"sport = :{port}"], capture_output=True, text=True, check=False)
    wait_for(port_free, f"the port to be free again; held by:\n{holders.stdout}", 30)
