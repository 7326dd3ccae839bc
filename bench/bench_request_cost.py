"""Server CPU per sync predict, measured in-process: the real app, no sockets, no client.

The app is built as `serve` builds it (``create_app`` on a data directory holding a trained Adult
model, lifespan started), and one-row ``POST /models/adult/predict`` calls are driven through its
ASGI interface by a bare call loop. What is reported is the process's CPU time
(``time.process_time``: every thread, so the prediction log's writer and the event writer are
in it) divided by the calls: the cost a request puts on an API process, without the socket
layer (uvicorn and the kernel add ~0.12 ms on the 2-core machine, bench/README.md) and without
a load generator sharing the interpreter's time. CPU time rather than wall time, so another
process using the cores does not move the figure much.

Two modes of the loop: one call at a time (c=1, the log writes one row per group) and 16 calls
in flight (c=16, as 16 clients: the log's group commit batches their rows).

With ``--reference PATH`` (a checkout of another commit, e.g. ``git worktree add /tmp/wt-ref
HEAD``) every round runs a child process on each tree in turn (A/B/A/B…, on copies of one data
directory), so both see the same machine; medians over the rounds. Before timing, both trees
answer the same set of requests (one-row and multi-row calls, missing values, extra and missing
columns, a pinned version, errors) and the answers and the logged rows are compared: a change
that made it cheaper must not change a byte of what clients and drift checks see.

    .venv/bin/python bench/bench_request_cost.py [--reference /tmp/wt-ref] [--rounds 5]
        [--also NAME=PATH ...] [--calls 3000] [--data-dir DIR (kept: trained once, reused)]
        [--profile out.prof]

``--also`` adds more trees to the same rounds (each needs only a ``src/``), e.g. the reference
with one change after another applied, to see what each saves. ``--profile`` runs this tree's
16-in-flight loop once under cProfile (timer: the loop thread's CPU time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
ADMIN_PASSWORD = "bench-admin-password"
PATH = "/models/adult/predict"
# Headers that differ between two identical requests.
VARIABLE_HEADERS = {"x-request-id", "date"}


# Parent: train once, run children on each tree --------------------------------------------


def train(data_dir: Path) -> None:
    """Adult with the server's default settings, through a real `serve` (the model every
    measurement serves)."""
    sys.path.insert(0, str(HERE))
    from bench_predict import admin_headers, train_adult
    from harness import running_server

    with running_server(str(data_dir)) as base:
        train_adult(base, admin_headers(base), {})


def run_child(tree: Path, data_dir: Path, mode: str, calls: int, profile: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="reqcost-") as scratch:
        copy = Path(scratch) / "data"
        shutil.copytree(data_dir, copy, ignore=shutil.ignore_patterns("prediction_log", "*.lock", "run"))
        env = os.environ | {"PYTHONPATH": str(tree / "src"), "ML_LOG_LEVEL": "WARNING"}
        command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--data-dir", str(copy),
                   "--calls", str(calls)]
        if profile:
            command += ["--profile", profile]
        done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, cwd=scratch)
        if done.returncode != 0:
            raise RuntimeError(f"child on {tree} failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def compare_answers(trees: dict[str, Path], data_dir: Path) -> None:
    answers = {name: run_child(tree, data_dir, "answers", 0) for name, tree in trees.items()}
    (first_name, first), *others = answers.items()
    for name, other in others:
        for key in ("responses", "log"):
            if first[key] != other[key]:
                for i, (a, b) in enumerate(zip(first[key], other[key], strict=False)):
                    if a != b:
                        raise SystemExit(f"{key} differ ({first_name} vs {name}) at {i}:\n{a}\n{b}")
                raise SystemExit(f"{key} differ in length ({first_name} vs {name})")
    print(f"answers identical across {', '.join(trees)}: {len(first['responses'])} responses, "
          f"{len(first['log'])} logged rows", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", type=Path, help="a checkout to compare with, e.g. /tmp/wt-ref")
    parser.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                        help="more checkouts to measure in the same rounds (e.g. one change at a time)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per loop")
    parser.add_argument("--data-dir", type=Path, help="a data dir with the trained model (trained into it if empty)")
    parser.add_argument("--profile", help="cProfile this tree's c=16 loop into this file (one child, no rounds)")
    parser.add_argument("--child", choices=["time", "answers"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(child_time(args) if args.child == "time" else child_answers(args))
        print(json.dumps(result))
        return

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="reqcost-data-"))
    if not (data_dir / "artifacts").exists() and not any(data_dir.glob("*.db")):
        data_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        train(data_dir)
        print(f"trained Adult in {time.perf_counter() - started:.0f} s into {data_dir}", flush=True)
    trees = {"this": REPO_ROOT}
    if args.reference:
        trees = {"reference": args.reference.resolve()}
        trees |= {name: Path(path).resolve() for name, _, path in (item.partition("=") for item in args.also)}
        trees["this"] = REPO_ROOT
    if args.profile:
        print(run_child(REPO_ROOT, data_dir, "time", args.calls, args.profile))
        return
    if len(trees) > 1:
        compare_answers(trees, data_dir)
    measured: dict[str, dict[str, list[float]]] = {name: {"c1": [], "c16": []} for name in trees}
    for round_ in range(args.rounds):
        order = list(trees.items()) if round_ % 2 == 0 else list(reversed(trees.items()))
        for name, tree in order:
            result = run_child(tree, data_dir, "time", args.calls)
            for mode in ("c1", "c16"):
                measured[name][mode].extend(result[mode])
            print(f"round {round_ + 1} {name:<12} c=1 {fmt(result['c1'])}   c=16 {fmt(result['c16'])}", flush=True)
    print("\n== app CPU per sync predict of one row (ms, median of all loops; range) ==")
    for name, modes in measured.items():
        print(f"{name:<12} c=1 {statistics.median(modes['c1']):.3f} ({min(modes['c1']):.3f}–{max(modes['c1']):.3f})"
              f"   c=16 {statistics.median(modes['c16']):.3f} ({min(modes['c16']):.3f}–{max(modes['c16']):.3f})")
    if len(trees) > 1:
        for mode in ("c1", "c16"):
            ref = statistics.median(measured["reference"][mode])
            for name in list(trees)[1:]:
                this = statistics.median(measured[name][mode])
                print(f"{mode}: {name} / reference = {this / ref:.2f} ({ref - this:+.3f} ms saved per call)")


def fmt(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


# Child: the app in this process -----------------------------------------------------------


class Asgi:
    """Calls an ASGI app the way a server would, one request at a time per call."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(self, method: str, path: str, body: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        raw_headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench-request-cost/1")]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if body is not None:
            raw_headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "headers": raw_headers, "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "state": {},
        }
        pending = [{"type": "http.request", "body": body or b"", "more_body": False}]
        status = 0
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop()
            await asyncio.Event().wait()  # a client that stays connected
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status, response_headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, response_headers, b"".join(chunks)


async def started_app(data_dir: Path):  # type: ignore[no-untyped-def]
    from mlservice.app import create_app
    from mlservice.settings import Settings

    settings = Settings(_env_file=None, data_dir=data_dir, admin_username="admin", admin_password=ADMIN_PASSWORD,
                        log_level="WARNING")
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = Asgi(app)
    status, _, body = await client.call("POST", "/auth/login", json.dumps(
        {"username": "admin", "password": ADMIN_PASSWORD}).encode())
    assert status == 200, body
    token = json.loads(body)["token"]
    return app, lifespan, client, {"authorization": f"Bearer {token}"}


def adult_rows(count: int) -> list[dict[str, Any]]:
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from harness import ADULT_COLUMNS

    frame = pd.read_csv(REPO_ROOT / "datasets" / "adult" / "adult.test", names=ADULT_COLUMNS,
                        skipinitialspace=True, na_values="?", skiprows=1, nrows=count)
    frame = frame.drop(columns="income")
    return [{k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in row.items()}
            for _, row in frame.iterrows()]


async def child_time(args: argparse.Namespace) -> dict[str, Any]:
    import gc

    _app, lifespan, client, headers = await started_app(args.data_dir)
    body = json.dumps({"data": adult_rows(1)}).encode()

    async def one() -> None:
        status, _, answer = await client.call("POST", PATH, body, headers)
        assert status == 200, answer

    async def loop(concurrency: int, calls: int) -> float:
        per_worker = calls // concurrency

        async def worker() -> None:
            for _ in range(per_worker):
                await one()

        gc.collect()
        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - started) / (per_worker * concurrency) * 1000

    await loop(16, 800)  # warm: model loaded, caches filled, segment open
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)  # CPU of the loop's thread, not waits
        profiler.enable()
        cost = await loop(16, args.calls)
        profiler.disable()
        profiler.dump_stats(args.profile)
        result: dict[str, Any] = {"c16": [cost]}
    else:
        result = {"c1": [], "c16": []}
        for _ in range(3):
            result["c1"].append(await loop(1, args.calls))
            result["c16"].append(await loop(16, args.calls))
    await lifespan.__aexit__(None, None, None)
    return result


async def child_answers(args: argparse.Namespace) -> dict[str, Any]:
    app, lifespan, client, headers = await started_app(args.data_dir)
    rows = adult_rows(120)
    odd = dict(rows[0], age="39", hours_per_week=None, extra_column="x")
    no_age = {k: v for k, v in rows[1].items() if k != "age"}
    bodies: list[tuple[str, Any]] = [(PATH, {"data": [row]}) for row in rows[:40]]
    bodies += [
        (PATH, {"data": rows[:5]}),
        (PATH, {"data": rows[:100]}),  # past the one-row fast path
        (PATH, {"data": [odd]}),
        (PATH, {"data": [{**rows[2], "workclass": "never-seen-category", "age": 1e300}]}),
        (PATH, {"data": [{**rows[3], "age": True, "education_num": "nine"}]}),
        (PATH, {"data": [no_age]}),
        (PATH, {"data": []}),
        (PATH, {"data": [rows[0]], "version": "1.0.0"}),
        (PATH, {"data": [rows[0]], "version": "9.9.9"}),
        ("/models/nope/predict", {"data": [rows[0]]}),
        (PATH, {"data": "not a list"}),
        (PATH, {"data": [1, 2]}),
        (PATH, {"rows": [rows[0]]}),
    ]
    responses = []
    for path, payload in bodies:
        try:
            status, response_headers, answer = await client.call("POST", path, json.dumps(payload).encode(), headers)
        except Exception as exc:  # noqa: BLE001 - a 500 re-raised by the server error middleware
            responses.append(["raised", type(exc).__name__, str(exc)])
            continue
        kept = sorted((k.decode(), v.decode()) for k, v in response_headers if k.decode() not in VARIABLE_HEADERS)
        responses.append([status, kept, answer.decode()])
    for raw in (b"{not json", b""):
        status, response_headers, answer = await client.call("POST", PATH, raw, headers)
        responses.append([status, answer.decode()])
    status, _, answer = await client.call("POST", PATH, json.dumps({"data": [rows[0]]}).encode())
    responses.append([status, answer.decode()])  # no token
    await lifespan.__aexit__(None, None, None)

    from mlservice.artifacts import ArtifactStore
    from mlservice.predictions.log import read_log

    store = ArtifactStore(app.state.settings.effective_artifacts_root)
    logged = read_log(store, "adult").drop(columns=["_ts"])
    log_rows = json.loads(logged.to_json(orient="records", double_precision=15))
    return {"responses": responses, "log": [json.dumps(row, sort_keys=True) for row in log_rows]}


if __name__ == "__main__":
    main()
