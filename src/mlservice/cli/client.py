"""Commands that are clients of a running server: ``status`` and the workflows ``train``,
``predict``, ``drift`` (over :mod:`mlservice.client`).

The client commands talk to a running server: ``--url`` / ``ML_URL``, ``--token`` / ``ML_TOKEN``,
``--ca-file`` / ``ML_CA_FILE``. These variables belong to the client, not to the server's settings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mlservice.cli.server import server_settings
from mlservice.settings import Settings


def add_commands(commands: Any) -> None:
    status = commands.add_parser("status", help="check a running service: health, database, queue, workers, GPU")
    _client_options(status)
    status.add_argument("--json", action="store_true", help="print /health as JSON instead of the table")
    status.set_defaults(handler=cmd_status, needs_settings=False)

    train = commands.add_parser("train", help="upload a table and train a model on a running server")
    train.add_argument("data", type=Path, help="CSV, JSON, JSON Lines or Parquet file")
    train.add_argument("--target", required=True, help="the label column")
    train.add_argument("--model-key", required=True)
    train.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="training parameter, VALUE as JSON where it parses (e.g. max_iter=50)")
    train.add_argument("--no-wait", action="store_true", help="print the job id and return")
    _client_options(train)
    train.set_defaults(handler=cmd_train, needs_settings=False)

    predict = commands.add_parser("predict", help="predict a table with a model on a running server")
    predict.add_argument("data", type=Path)
    predict.add_argument("--model-key", required=True)
    predict.add_argument("--version")
    predict.add_argument("-o", "--output", type=Path, help="CSV to write (default: stdout)")
    predict.add_argument("--sync", action="store_true",
                         help="use the real-time endpoint in chunks instead of a batch job")
    _client_options(predict)
    predict.set_defaults(handler=cmd_predict, needs_settings=False)

    drift = commands.add_parser("drift", help="run a drift check of a model on a running server")
    drift.add_argument("--model-key", required=True)
    drift.add_argument("--data", type=Path, help="check this table instead of the prediction log")
    drift.add_argument("--last-days", type=int, help="check the log of the last N days")
    drift.add_argument("--json", action="store_true", help="print the whole report as JSON")
    _client_options(drift)
    drift.set_defaults(handler=cmd_drift, needs_settings=False)


def _client_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("server")
    group.add_argument("--url", default=os.environ.get("ML_URL"), help="server URL (env ML_URL)")
    group.add_argument("--token", default=os.environ.get("ML_TOKEN"), help="API or session token (env ML_TOKEN)")
    group.add_argument("--ca-file", default=os.environ.get("ML_CA_FILE"),
                       help="CA certificate to trust for HTTPS, e.g. from gen-cert (env ML_CA_FILE)")
    group.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP call (default 60)")


def _client(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from mlservice.client import Client, client_user_agent

    url, verify = args.url, args.ca_file
    if not url:
        # On the server's own machine: its port and scheme (and its certificate as the CA).
        settings = server_settings()
        if settings is not None:
            scheme = "https" if settings.use_https else "http"
            url = f"{scheme}://127.0.0.1:{settings.service_port}"
            if settings.use_https and not verify and settings.ssl_cert_file.is_file():
                verify = str(settings.ssl_cert_file)
    return Client(url, args.token, verify=verify, timeout=args.timeout,
                  user_agent=client_user_agent("mlservice-cli"))


def _fail(exc: Exception) -> int:
    from mlservice.client import ApiError, JobFailed

    if isinstance(exc, ApiError):
        print(f"error: {exc.message} ({exc.status_code} {exc.code})", file=sys.stderr)
    elif isinstance(exc, JobFailed):
        print(f"error: job {exc.job.get('id')} {exc.job.get('status')}: {exc.job.get('error')}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return 1


# -- status ------------------------------------------------------------------------------------
def _component(name: str, value: Any) -> tuple[str, str, str]:
    """(name, state, detail) for one /health field; state is up, down or n/a."""
    if value is None:
        return name, "n/a", "not reported by this server"
    if isinstance(value, dict):
        ok = value.get("ok")
        if ok is None and "available" in value:
            ok = value["available"]
        detail = ", ".join(f"{k}={v}" for k, v in value.items() if k not in ("ok",) and not isinstance(v, (dict, list)))
        if name == "gpu":  # no GPU is a fact, not an outage
            return name, "up" if ok else "none", detail
        return name, "n/a" if ok is None else ("up" if ok else "down"), detail
    if isinstance(value, list):
        return name, "up" if value else "down", f"{len(value)} reported"
    return name, "up" if value else "down", str(value)


def cmd_status(_settings: Settings | None, args: argparse.Namespace) -> int:
    import httpx

    client = _client(args)
    rows: list[tuple[str, str, str]] = []
    try:
        with client:
            health = client.health()
    except (httpx.HTTPError, Exception) as exc:  # noqa: BLE001 - any failure means "down"
        print(f"{'service':<10} {'down':<6} {client.url}: {exc}")
        return 1
    if args.json:
        print(json.dumps(health, indent=2))
    rows.append(("service", "up" if health.get("status") == "ok" else "down",
                 f"{client.url} version {health.get('version')} uptime {health.get('uptime_s')} s "
                 f"status {health.get('status')}"))
    queue = health.get("queue")
    workers = health.get("workers")
    if workers is None and isinstance(queue, dict) and "workers" in queue:
        workers = {"ok": queue["workers"] > 0, "count": queue["workers"]}
    for name, value in (("database", health.get("database")), ("queue", queue), ("workers", workers),
                        ("gpu", health.get("gpu"))):
        rows.append(_component(name, value))
    if not args.json:
        for name, state, detail in rows:
            print(f"{name:<10} {state:<6} {detail}")
    down = [name for name, state, _ in rows if state == "down"]
    if down:
        print(f"down: {', '.join(down)}", file=sys.stderr)
    return 1 if down else 0


# -- client workflows --------------------------------------------------------------------------
class _JobProgress:
    """A rich progress bar on stderr fed by job polls (plain when stderr is not a terminal)."""

    def __init__(self, title: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[stage]}"), console=console, transient=False,
        )
        self.task = self.progress.add_task(title, total=100, stage="queued")

    def __enter__(self) -> _JobProgress:
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.progress.stop()

    def __call__(self, job: dict[str, Any]) -> None:
        stage = job.get("stage") or job.get("status")
        epoch = (job.get("details") or {}).get("epoch")
        self.progress.update(self.task, completed=float(job.get("progress") or 0),
                             stage=f"{stage}" + (f" (epoch {epoch})" if epoch else ""))


def _param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"error: --param expects NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def cmd_train(_settings: Settings | None, args: argparse.Namespace) -> int:
    params = dict(_param(p) for p in args.param) or None
    try:
        with _client(args) as client:
            if args.no_wait:
                created = client.train(args.model_key, args.data, target=args.target, params=params, wait=False)
                print(created["job_id"])
                return 0
            with _JobProgress(f"train {args.model_key}") as bar:
                job = client.train(args.model_key, args.data, target=args.target, params=params, progress=bar)
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    result = job.get("result") or {}
    metrics = result.get("metrics") or {}
    summary = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))
    print(f"trained {args.model_key} {result.get('version')} (job {job['id']}, {job.get('duration_s')} s)"
          + (f": {summary}" if summary else ""))
    return 0


def cmd_predict(_settings: Settings | None, args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            if args.sync:
                frame = client.predict(args.model_key, args.data, version=args.version)
            else:
                with _JobProgress(f"predict {args.model_key}") as bar:
                    frame = client.predict_async(args.model_key, args.data, version=args.version, progress=bar)
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    if args.output:
        frame.to_csv(args.output, index=False)
        print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
    else:
        frame.to_csv(sys.stdout, index=False)
    return 0


def cmd_drift(_settings: Settings | None, args: argparse.Namespace) -> int:
    try:
        with _client(args) as client:
            with _JobProgress(f"drift {args.model_key}") as bar:
                report = client.drift_check(args.model_key, data=args.data, last_days=args.last_days, progress=bar)
    except Exception as exc:  # noqa: BLE001
        return _fail(exc)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"{args.model_key} {report.get('version')}: {report.get('verdict')} "
          f"(report {report.get('id')}, {report.get('sample_size')} rows, "
          f"drifted share {report.get('drifted_share')})")
    for feature in (report.get("features") or [])[:10]:
        psi, js = feature.get("psi"), feature.get("js")
        print(f"  {feature.get('name'):<24} psi {psi if psi is None else round(psi, 4)!s:<8} "
              f"js {js if js is None else round(js, 4)!s:<8} {feature.get('severity')}")
    return 0
