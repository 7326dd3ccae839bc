"""Cost of event logging on an authenticated GET under concurrency (real `mlservice serve`, SQLite).

Reference in the same run: the same server build with ML_EVENTS_ENABLED=false (no request
context, no rules, no writer). Both are loaded the same way: GET /auth/user-info with a session
token, which takes the middleware's whole per-request path (metadata, rules, burst counter, the
known-client check). Off/on runs alternate and medians are reported, since the 2-core machine
is shared. Target: with / without >= 0.8 in throughput (within 20 %).

    .venv/bin/python bench/bench_events.py [--concurrency 32] [--duration 10] [--rounds 2]
"""

from __future__ import annotations

import argparse

import httpx

from harness import ADMIN_PASSWORD, load, median, running_server


def measure(enabled: bool, concurrency: int, duration: float):  # type: ignore[no-untyped-def]
    with running_server(ML_EVENTS_ENABLED=str(enabled).lower()) as base:
        token = httpx.post(
            f"{base}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        label = "events on " if enabled else "events off"
        return load(f"GET /auth/user-info ({label})", base, "GET", "/auth/user-info",
                    concurrency=concurrency, duration=duration, headers=auth)


def middleware_overhead_us(repeat: int = 20000) -> dict[str, float]:
    """In-process and machine-load-robust: RequestEvents around a no-op ASGI app vs the app alone."""
    import asyncio
    import tempfile
    import time
    from pathlib import Path

    from fastapi import FastAPI

    from mlservice.auth.models import Tier
    from mlservice.auth.service import Principal
    from mlservice.db import Database
    from mlservice.events.middleware import RequestEvents
    from mlservice.events.service import EventLog
    from mlservice.settings import Settings

    tmp = Path(tempfile.mkdtemp())
    settings = Settings(_env_file=None, data_dir=tmp)
    app = FastAPI()
    app.state.settings = settings
    log = EventLog(settings, Database(f"sqlite:///{tmp}/unused.db"))
    log.bursts.max_requests = 10**9
    principal = Principal(1, "admin", Tier.system_admin, "session", 7)
    log._seen.add((1, 7, "127.0.0.1", "bench"))

    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        scope.setdefault("state", {})["principal"] = principal
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    middleware = RequestEvents(inner, log=log)

    def scope(method: str, path: str) -> dict:
        return {"type": "http", "method": method, "path": path, "app": app, "client": ("127.0.0.1", 5000),
                "server": ("x", 1), "scheme": "http", "query_string": b"", "root_path": "",
                "headers": [(b"authorization", b"Bearer mls_sess_abc"), (b"user-agent", b"bench")]}

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(_message: dict) -> None:
        return None

    async def timed(target, method: str, path: str) -> float:  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        for _ in range(repeat):
            await target(scope(method, path), receive, send)
        return (time.perf_counter() - began) / repeat * 1e6

    async def run() -> dict[str, float]:
        figures = {}
        for name, method, path in (("authenticated GET", "GET", "/auth/user-info"),
                                   ("sync predict (counted, rate-limited)", "POST", "/models/m/predict")):
            bare = min([await timed(inner, method, path) for _ in range(3)])
            wrapped = min([await timed(middleware, method, path) for _ in range(3)])
            figures[name] = wrapped - bare
        return figures

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating off/on runs, medians reported")
    args = parser.parse_args()

    results: dict[bool, list] = {False: [], True: []}
    for _ in range(args.rounds):
        for enabled in (False, True):
            result = measure(enabled, args.concurrency, args.duration)
            results[enabled].append(result)
            print(result.line(), flush=True)

    off = median([r.rps for r in results[False]])
    on = median([r.rps for r in results[True]])
    p99_off = median([r.percentile(99) for r in results[False]])
    p99_on = median([r.percentile(99) for r in results[True]])
    print(f"\n{args.concurrency} concurrent clients, {args.duration:.0f} s x {args.rounds} rounds, SQLite")
    print(f"throughput with / without event logging: {on / off:.3f}  ({on:.0f} vs {off:.0f} req/s; target >= 0.8)")
    print(f"p99 with / without: {p99_on:.1f} ms / {p99_off:.1f} ms  (ratio {p99_on / p99_off:.2f})")
    for name, micros in middleware_overhead_us().items():
        print(f"RequestEvents cost per request, {name}: {micros:.1f} us (in-process, no HTTP)")


if __name__ == "__main__":
    main()
