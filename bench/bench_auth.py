"""Login and authenticated GET under concurrency against a real `mlservice serve` (SQLite).

Reference in the same run: GET /health on the same server (no authentication, no session),
so the ratio shows what authentication costs. Target: authenticated GET p99 < 50 ms at 32
clients on a 2-core machine. Login is deliberately slow (Argon2id) and reported separately.

`GET /auth/user-info` answers from the token lookup itself; `GET /jobs/{id}` (what clients poll)
also reads its row through the ORM in the request's own session, so it shows what a typical
read endpoint costs on top.

    .venv/bin/python bench/bench_auth.py [--concurrency 32] [--duration 10]
"""

from __future__ import annotations

import argparse

import httpx

from harness import ADMIN_PASSWORD, load, running_server, wait_job


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
        job_id = finished_job(base, auth)
        health = load("GET /health (reference, no auth)", base, "GET", "/health", concurrency=c, duration=d)
        user_info = load("GET /auth/user-info (session token)", base, "GET", "/auth/user-info",
                         concurrency=c, duration=d, headers=auth)
        job = load("GET /jobs/{id} (session token, ORM read)", base, "GET", f"/jobs/{job_id}",
                   concurrency=c, duration=d, headers=auth)
        login = load("POST /auth/login (Argon2id)", base, "POST", "/auth/login", concurrency=c,
                     duration=d, json_body={"username": "admin", "password": ADMIN_PASSWORD})

    print(f"\n{c} concurrent clients, {d:.0f} s each, SQLite, one uvicorn process\n")
    for result in (health, user_info, job, login):
        print(result.line())
    for result in (user_info, job):
        print(f"\n{result.name}: {result.rps / health.rps:.2f}x the throughput of /health, "
              f"p99 {result.percentile(99):.1f} ms (target < 50 ms)", end="")
    print()


def finished_job(base: str, auth: dict[str, str]) -> str:
    """A small training job run to completion, so GET /jobs/{id} reads a real, finished row."""
    rows = "\n".join(f"{i % 7},{(i * 3) % 11},{'yes' if i % 2 else 'no'}" for i in range(200))
    created = httpx.post(f"{base}/train", headers=auth, timeout=60,
                         data={"model_key": "bench", "target": "label"},
                         files={"file": ("small.csv", f"a,b,label\n{rows}\n", "text/csv")})
    created.raise_for_status()
    job = wait_job(base, auth, created.json()["job_id"], timeout=300)
    assert job["status"] == "completed", job
    return job["id"]


if __name__ == "__main__":
    main()
