"""Dockerfile and docker-compose.yml: this machine has no Docker engine, so check what can be
checked without one — the compose file parses, every service runs a command that exists, the
build targets exist, and the services share what distributed mode needs to share."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mlservice.cli import build_parser
from mlservice.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
STAGES = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, re.MULTILINE))
ML_SERVICES = {name: s for name, s in COMPOSE["services"].items() if name not in ("postgres", "redis")}


def cli_commands() -> set[str]:
    parser = build_parser()
    return set(next(a for a in parser._actions if a.dest == "command").choices)


def test_every_service_runs_an_existing_mlservice_command() -> None:
    assert {"postgres", "redis", "migrate", "api-1", "api-2", "worker", "worker-gpu"} <= set(COMPOSE["services"])
    commands = {name: service["command"] for name, service in ML_SERVICES.items()}
    for name, command in commands.items():
        assert command[0] == "mlservice" and command[1] in {"serve", "worker", "migrate"}, (name, command)
        assert command[1] in cli_commands()
        if command[1] == "worker":  # the options parse as `mlservice worker` defines them
            args = build_parser().parse_args(command[1:])
            if args.queues:
                Settings(_env_file=None, worker_queues=args.queues)  # a known queue list
    assert [c[1] for c in commands.values()].count("serve") == 2


def test_build_targets_and_shared_state() -> None:
    assert {"dashboard", "runtime", "gpu"} <= STAGES
    assert "npm ci" in DOCKERFILE and "npm run build" in DOCKERFILE
    assert "COPY --from=dashboard /frontend/out /app/dashboard" in DOCKERFILE
    assert "ML_DASHBOARD_DIR=/app/dashboard" in DOCKERFILE
    settings_names = {f"ML_{name.upper()}" for name in Settings.model_fields}
    for name, service in ML_SERVICES.items():
        assert service["build"]["target"] in STAGES, name
        environment = service["environment"]
        assert environment["ML_QUEUE"] == "celery" and environment["ML_BROKER_URL"].startswith("redis://redis:")
        assert environment["ML_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert set(environment) <= settings_names, set(environment) - settings_names
        assert "artifacts:/artifacts" in service["volumes"] and environment["ML_ARTIFACTS_ROOT"] == "/artifacts"
    assert COMPOSE["services"]["worker-gpu"]["profiles"] == ["gpu"]
    assert "profiles" not in COMPOSE["services"]["worker"]
    assert {"pgdata", "artifacts"} <= set(COMPOSE["volumes"])
