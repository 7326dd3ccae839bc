"""Live updates: N concurrent WebSocket clients (default 200) receive a broadcast.

Starts a real `mlservice serve` (fresh SQLite data dir, local pub/sub unless --pubsub redis),
trains two tiny versions of one model, connects N clients (one asyncio process, the `websockets`
library), then alternates `POST …/promote` and `POST …/rollback`: each publishes one message every
signed-in user may see. Delivery latency = time a client parsed the message − the message's `ts`
(taken when the server built it, before the commit), so it includes the commit, the fan-out and
the client's own parsing. Memory per connection = growth of the server process's RSS over the N
connections ÷ N.

Reference, same run and same clients: a bare `websockets` server that broadcasts a timestamped
message with `websockets.broadcast` (no auth, no database, no per-client filtering).

    .venv/bin/python bench/bench_ws.py [--clients 200] [--broadcasts 40] [--pubsub local|redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import websockets

ADMIN_PASSWORD = "bench-ws-admin-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_http(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Fleet:
    """N client connections, each recording the latency of the broadcasts it receives."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.connections: list = []
        self.latencies_ms: list[float] = []
        self.received: dict[int, int] = {}
        self.tasks: list[asyncio.Task] = []

    async def connect(self, url: str, headers: dict | None = None, expect_hello: bool = True) -> None:
        async def one() -> None:
            ws = await websockets.connect(url, additional_headers=headers or {}, open_timeout=60, max_queue=None)
            if expect_hello:
                hello = json.loads(await ws.recv())
                assert hello["type"] == "hello", hello
            self.connections.append(ws)

        for start in range(0, self.count, 50):  # in waves: a 2-core machine, one accept loop
            await asyncio.gather(*(one() for _ in range(min(50, self.count - start))))
        self.tasks = [asyncio.create_task(self._read(ws)) for ws in self.connections]

    async def _read(self, ws) -> None:  # type: ignore[no-untyped-def]
        try:
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send('{"type":"pong"}')
                elif kind in ("model.promoted", "model.rolled_back", "broadcast"):
                    sent = datetime.fromisoformat(message["ts"]).timestamp()
                    self.latencies_ms.append((now - sent) * 1000)
                    number = message["data"]["n"] if kind == "broadcast" else 0
                    self.received[number] = self.received.get(number, 0) + 1
        except websockets.ConnectionClosed:
            pass

    async def wait_for(self, total: int, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.latencies_ms) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return len(self.latencies_ms) >= total

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.connections), return_exceptions=True)
        for task in self.tasks:
            task.cancel()


def report(name: str, fleet: Fleet, expected: int, rss_before: int, rss_after: int) -> dict:
    lat = fleet.latencies_ms
    figures = {
        "name": name, "clients": fleet.count, "delivered": len(lat), "expected": expected,
        "p50_ms": statistics.median(lat), "p95_ms": percentile(lat, 95), "p99_ms": percentile(lat, 99),
        "max_ms": max(lat), "rss_per_connection_kib": (rss_after - rss_before) / fleet.count,
    }
    print(f"{name}: {len(lat)}/{expected} delivered; latency p50 {figures['p50_ms']:.1f} ms, "
          f"p95 {figures['p95_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms; "
          f"server RSS {rss_before / 1024:.1f} → {rss_after / 1024:.1f} MiB = "
          f"{figures['rss_per_connection_kib']:.1f} KiB per connection")
    return figures


async def bench_mlservice(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlservice-bench-ws-") as data_dir:
        port = free_port()
        env = os.environ | {
            "ML_DATA_DIR": data_dir, "ML_SERVICE_HOST": "127.0.0.1", "ML_SERVICE_PORT": str(port),
            "ML_ADMIN_PASSWORD": ADMIN_PASSWORD, "ML_LOG_LEVEL": "WARNING", "ML_PUBSUB": args.pubsub,
            "ML_PUBSUB_CHANNEL": f"mlservice-bench:{port}", "ML_MAX_WORKERS_LIMIT": "1",
            "ML_WS_QUEUE_SIZE": "1024",
        }
        process = subprocess.Popen([sys.executable, "-m", "mlservice", "serve"], env=env, cwd=data_dir,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/health", process)
            async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                token = (await http.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})).json()["token"]
                headers = {"Authorization": f"Bearer {token}"}
                rows = [{"a": f"v{i % 3}", "b": i % 7, "label": f"L{i % 3}"} for i in range(150)]
                for _ in range(2):
                    job_id = (await http.post("/train", headers=headers, json={
                        "model_key": "bench_ws", "target": "label", "data": rows,
                        "params": {"hidden_layer_sizes": [4], "max_iter": 5},
                    })).json()["job_id"]
                    while (await http.get(f"/jobs/{job_id}", headers=headers)).json()["status"] not in ("completed", "failed"):
                        await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)
                rss_before = rss_kib(process.pid)
                fleet = Fleet(args.clients)
                await fleet.connect(f"ws://127.0.0.1:{port}/ws", headers)
                await asyncio.sleep(1.0)
                rss_after = rss_kib(process.pid)
                for n in range(args.broadcasts):
                    path = "/models/bench_ws/versions/1.1.0/promote" if n % 2 == 0 else "/models/bench_ws/rollback"
                    response = await http.post(path, headers=headers)
                    assert response.status_code == 200, response.text
                    await fleet.wait_for((n + 1) * args.clients)
                    await asyncio.sleep(args.interval)
                figures = report(f"mlservice /ws ({args.pubsub})", fleet, args.broadcasts * args.clients,
                                 rss_before, rss_after)
                await fleet.close()
                return figures
        finally:
            process.terminate()
            process.wait(timeout=30)


async def reference_server(port: int) -> None:
    from websockets.asyncio.server import broadcast, serve

    clients: set = set()

    async def handler(ws) -> None:  # type: ignore[no-untyped-def]
        clients.add(ws)
        try:
            async for raw in ws:
                if raw.startswith("go "):
                    text = json.dumps({"type": "broadcast", "ts": datetime.now().astimezone().isoformat(),
                                       "data": {"n": int(raw[3:])}})
                    broadcast(clients - {ws}, text)
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port):
        await asyncio.Future()


async def bench_reference(args: argparse.Namespace) -> dict:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--reference-server", str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "reference server did not start"
                time.sleep(0.1)
        control = await websockets.connect(f"ws://127.0.0.1:{port}")
        await asyncio.sleep(0.5)
        rss_before = rss_kib(process.pid)
        fleet = Fleet(args.clients)
        await fleet.connect(f"ws://127.0.0.1:{port}", expect_hello=False)
        await asyncio.sleep(1.0)
        rss_after = rss_kib(process.pid)
        for n in range(args.broadcasts):
            await control.send(f"go {n}")
            await fleet.wait_for((n + 1) * args.clients)
            await asyncio.sleep(args.interval)
        figures = report("reference: bare websockets.broadcast", fleet, args.broadcasts * args.clients,
                         rss_before, rss_after)
        await fleet.close()
        await control.close()
        return figures
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--broadcasts", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between broadcasts")
    parser.add_argument("--pubsub", choices=("local", "redis"), default="local")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--reference-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_server:
        asyncio.run(reference_server(args.reference_server))
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ours = asyncio.run(bench_mlservice(args))
    if not args.no_reference:
        ref = asyncio.run(bench_reference(args))
        print(f"ratio p50 {ours['p50_ms'] / ref['p50_ms']:.1f}×, p99 {ours['p99_ms'] / ref['p99_ms']:.1f}×; "
              f"memory per connection {ours['rss_per_connection_kib'] / max(ref['rss_per_connection_kib'], 0.1):.1f}×")
    print(f"target p99 < 200 ms: {'met' if ours['p99_ms'] < 200 else 'NOT met'}")


if __name__ == "__main__":
    main()
