"""Login and authenticated GET under concurrency against a real `mlservice serve` (SQLite).

Reference in the same run: GET /health on the same server (no authentication, no session),
so the ratio shows what authentication costs. Target: authenticated GET p99 < 50 ms at 32
clients on a 2-core machine. Login is deliberately slow (Argon2id) and reported separately.

    .venv/bin/python bench/bench_auth.py [--concurrency 32] [--duration 10]
"""

from __future__ import annotations

import argparse

import httpx

from harness import ADMIN_PASSWORD, load, running_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()

    with running_server() as base:
        token = httpx.post(
            f"{base}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        c, d = args.concurrency, args.duration
        health = load("GET /health (reference, no auth)", base, "GET", "/health", concurrency=c, duration=d)
        user_info = load("GET /auth/user-info (session token)", base, "GET", "/auth/user-info",
                         concurrency=c, duration=d, headers=auth)
        login = load("POST /auth/login (Argon2id)", base, "POST", "/auth/login", concurrency=c,
                     duration=d, json_body={"username": "admin", "password": ADMIN_PASSWORD})

    print(f"\n{c} concurrent clients, {d:.0f} s each, SQLite, one uvicorn process\n")
    for result in (health, user_info, login):
        print(result.line())
    print(f"\nauthenticated GET / health: {user_info.rps / health.rps:.2f}x the throughput, "
          f"p99 {user_info.percentile(99):.1f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
