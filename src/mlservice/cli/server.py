"""Commands run on the server's own machine: serve, worker, migrate, config, init-env, admin,
backup, restore, openapi, gen-cert."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from mlservice import __version__
from mlservice.settings import Settings, SettingsError, load_settings, parse_api_workers

log = logging.getLogger("mlservice")


def _database(settings: Settings):  # type: ignore[no-untyped-def]
    from mlservice.db import Database

    return Database(settings.effective_database_url, timeout=settings.db_timeout)


def bootstrap(settings: Settings):  # type: ignore[no-untyped-def]
    """Bring storage up to date and create the first system admin on an empty database."""
    from mlservice.auth.service import ensure_first_admin
    from mlservice.db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.effective_artifacts_root.mkdir(parents=True, exist_ok=True)
    database = _database(settings)
    upgrade(database)
    with database.session(write=True) as session:
        generated = ensure_first_admin(session, settings)
    if generated is not None:
        print(
            "\n" + "=" * 72 + "\n"
            f"  Created the system admin {settings.admin_username!r} with a generated password:\n"
            f"      {generated}\n"
            "  It is shown only now. Log in and change it (Profile tab or\n"
            "  PUT /auth/profile/password), or set ML_ADMIN_PASSWORD before the first start.\n"
            + "=" * 72 + "\n",
            file=sys.stderr,
            flush=True,
        )
    return database


def api_workers(settings: Settings, flag: str | None) -> int:
    """How many API processes to run: ``--workers``, else ``ML_API_WORKERS``. ValueError for a
    bad flag (the setting was checked when the settings loaded)."""
    if flag is not None:
        try:
            settings = settings.model_copy(update={"api_workers": parse_api_workers(flag)})
        except ValueError as exc:
            raise ValueError(f"--workers {flag!r}: {exc}") from None
    return settings.effective_api_workers


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from mlservice.app import create_app
    from mlservice.runtime import election

    host = args.host or settings.service_host
    port = args.port or settings.service_port
    try:
        workers = api_workers(settings, args.workers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if workers > 1 and not election.supported():
        print("warning: several API processes need file locks (fcntl: Linux, macOS); serving with one",
              file=sys.stderr)
        workers = 1
    if settings.queue == "celery" and (error := _broker_error(settings)):
        print(error, file=sys.stderr)
        return 2
    database = bootstrap(settings)  # once, before any API process starts
    ssl: dict[str, str] = {}
    if settings.use_https:
        from mlservice.observability.tls import check_pair

        problem = check_pair(settings.ssl_cert_file, settings.ssl_key_file)
        if problem is not None:
            print(f"error: ML_USE_HTTPS is on but {problem}", file=sys.stderr)
            return 2
        ssl = {"ssl_certfile": str(settings.ssl_cert_file), "ssl_keyfile": str(settings.ssl_key_file)}
    scheme = "https" if ssl else "http"
    processes = f", {workers} API processes" if workers > 1 else ""
    print(f"ML Service {__version__} on {scheme}://{host}:{port}  (database: {database.backend}{processes})",
          file=sys.stderr)
    if workers > 1:
        from mlservice.health.gpu import PUBLISHED_NAME, publish_probe

        database.dispose()
        publish_probe(election.run_dir(settings.data_dir) / PUBLISHED_NAME)
        # uvicorn's supervisor binds the port, starts the processes (each builds its app with
        # api_process) and replaces any that dies. They read the settings again: tell them N.
        os.environ["ML_API_WORKERS"] = str(workers)
        target: Any = "mlservice.cli.server:api_process"
    else:
        target = create_app(settings, database, background=True)
    uvicorn.run(
        target,
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        server_header=False,
        # Requests are recorded by the event log; a line per request would cost the hot path.
        access_log=settings.log_level == "DEBUG",
        log_config=None,  # our handlers (mlservice.observability.logs) format uvicorn's lines too
        **ssl,
    )
    return 0


def api_process() -> Any:
    """The app of one API process of ``serve --workers N`` (a fresh interpreter: uvicorn's
    supervisor spawns it)."""
    from mlservice.app import create_app
    from mlservice.observability.logs import configure_logging

    _exit_with_supervisor(os.getppid())
    settings = load_settings()
    configure_logging(settings)
    if settings.log_level != "DEBUG":  # as `access_log` above: configure_logging re-enabled it
        logging.getLogger("uvicorn.access").propagate = False
    return create_app(settings, _database(settings), background=True)


def _exit_with_supervisor(supervisor: int) -> None:
    """An API process whose supervisor was killed (``kill -9``: it could not stop them) ends
    too, within a second: orphans would keep the port, and a restarted `serve` could not bind it."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _broker_error(settings: Settings) -> str | None:
    from mlservice.jobs.celery_queue import check_broker

    return check_broker(settings)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """A Celery worker for distributed mode; the API replicas (`serve`) migrate the database."""
    if settings.queue != "celery":
        print("error: `mlservice worker` takes jobs from Celery: set ML_QUEUE=celery "
              "(with ML_QUEUE=local, `mlservice serve` runs jobs itself)", file=sys.stderr)
        return 2
    if error := _broker_error(settings):
        print(error, file=sys.stderr)
        return 2
    from mlservice.db.migrate import current_revision, head_revision
    from mlservice.jobs.celery_queue import run_worker
    from mlservice.wiring import register_job_kinds

    database = _database(settings)
    try:
        revision = current_revision(database) if database.ping() else "unreachable"
    finally:
        database.dispose()
    if revision != head_revision():
        print(f"error: the database {database.url.render_as_string(hide_password=True)} is at revision "
              f"{revision}, not {head_revision()}: run `mlservice migrate` first", file=sys.stderr)
        return 2
    settings.effective_artifacts_root.mkdir(parents=True, exist_ok=True)
    queues = [q.strip() for q in args.queues.split(",")] if args.queues else settings.worker_queues
    register_job_kinds()  # before the pool forks: its processes inherit them
    return run_worker(settings, queues=queues, concurrency=args.concurrency or settings.worker_concurrency, name=args.name)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from mlservice.db.migrate import current_revision

    database = bootstrap(settings)
    print(f"database at revision {current_revision(database)} ({database.backend})")
    return 0


def cmd_config(settings: Settings, _args: argparse.Namespace) -> int:
    for name, value in settings.masked().items():
        print(f"{name} = {value}")
    return 0


def cmd_init_env(_settings: Settings | None, args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"error: {path} already exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    lines = [
        "# ML Service settings (generated by `mlservice init-env`); see the README's table.",
        "ML_SERVICE_HOST=0.0.0.0",
        "ML_SERVICE_PORT=8085",
        "ML_LOG_LEVEL=INFO",
        "ML_DATA_DIR=./data",
        "# ML_DATABASE_URL=postgresql+psycopg://user@127.0.0.1:5432/mlservice",
        f"ML_ADMIN_API_TOKEN={secrets.token_urlsafe(36)}",
        "ML_ADMIN_USERNAME=admin",
        f"ML_ADMIN_PASSWORD={secrets.token_urlsafe(15)}",
        "ML_TOKEN_EXPIRY_DAYS=365",
        "ML_SESSION_EXPIRY_DAYS=30",
        "ML_DRIFT_PSI_THRESHOLD=0.1",
        "ML_DRIFT_JS_THRESHOLD=0.2",
        "ML_DAILY_DRIFT_CHECK_TIME=23:00",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    print(f"wrote {path} with fresh secrets (readable only by you)")
    return 0


def _read_new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password from stdin, a prompt, or a generated one (then printed once)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if first != getpass.getpass("Repeat it: "):
            raise SystemExit("error: the passwords differ")
        return first, False
    return secrets.token_urlsafe(12), True


def cmd_admin(settings: Settings, args: argparse.Namespace) -> int:
    from mlservice.auth import service
    from mlservice.auth.models import Tier
    from mlservice.errors import AppError

    database = bootstrap(settings)
    password, generated = _read_new_password(args)
    try:
        with database.session(write=True) as session:
            if args.admin_command == "create-user":
                user = service.create_user_unchecked(
                    session, settings, args.username, password, Tier(args.tier)
                )
                print(f"created user {user.username!r} (id {user.id}, tier {user.tier})")
            else:
                service.set_password(session, settings, args.username, password)
                print(f"password of {args.username!r} reset; their sessions were ended")
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    if generated:
        print(f"generated password (shown once): {password}")
    return 0


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from mlservice.backup.service import create_backup
    from mlservice.errors import AppError

    try:
        summary = create_backup(settings, Path(args.path))
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    manifest = summary.manifest
    print(f"backup written to {summary.path}: {manifest.database_kind} database at revision "
          f"{manifest.alembic_revision}, {len(manifest.files)} files, {summary.size / 1e6:.1f} MB")
    for missing in manifest.missing_references:
        print(f"warning: the database refers to {missing['path']} ({missing['what']}), which was already "
              "missing from the artifacts directory", file=sys.stderr)
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from mlservice.backup.service import restore_backup
    from mlservice.errors import AppError

    try:
        manifest = restore_backup(settings, Path(args.path))
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    database = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    print(f"restored the backup of {manifest.created_at} (mlservice {manifest.mlservice_version}) into "
          f"{database} and {settings.effective_artifacts_root}; the database is migrated to this release")
    return 0


def cmd_openapi(settings: Settings, args: argparse.Namespace) -> int:
    from mlservice.app import create_app

    schema = json.dumps(create_app(settings).openapi(), indent=2, sort_keys=True)
    if args.output:
        Path(args.output).write_text(schema + "\n", encoding="utf-8")
    else:
        print(schema)
    return 0


def add_commands(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the API and the dashboard")
    serve.add_argument("--host", help="default: ML_SERVICE_HOST")
    serve.add_argument("--port", type=int, help="default: ML_SERVICE_PORT")
    serve.add_argument("--workers", metavar="N",
                       help="API processes sharing the port: a number, or 'auto' for one per core "
                            "(default: ML_API_WORKERS, 1)")
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="run jobs from Celery (distributed mode, ML_QUEUE=celery)")
    worker.add_argument("--queues", "-Q", help="comma-separated subset of train,predict,drift,default (default: ML_WORKER_QUEUES)")
    worker.add_argument("--concurrency", "-c", type=int, help="jobs at once (default: ML_WORKER_CONCURRENCY, else sized like the local pool)")
    worker.add_argument("--name", "-n", help="Celery node name, e.g. gpu1@%%h (default: mlservice@<host>)")
    worker.set_defaults(handler=cmd_worker)

    commands.add_parser("migrate", help="apply database migrations").set_defaults(handler=cmd_migrate)
    commands.add_parser("config", help="print the effective settings, secrets masked").set_defaults(
        handler=cmd_config
    )

    init_env = commands.add_parser("init-env", help="write a .env file with fresh random secrets")
    init_env.add_argument("--path", default=".env")
    init_env.add_argument("--force", action="store_true", help="overwrite an existing file")
    init_env.set_defaults(handler=cmd_init_env, needs_settings=False)

    admin = commands.add_parser("admin", help="user administration from the server's shell")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_commands.add_parser("create-user", help="create a user of any tier")
    create.add_argument("--username", required=True)
    create.add_argument("--tier", choices=["user", "admin", "system_admin"], default="user")
    reset = admin_commands.add_parser("reset-password", help="set a user's password")
    reset.add_argument("--username", required=True)
    for sub in (create, reset):
        sub.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input (else prompt, or generate one)",
        )
    admin.set_defaults(handler=cmd_admin)

    backup = commands.add_parser("backup", help="write a consistent backup of the running service to PATH")
    backup.add_argument("path", help="a new (or empty) directory")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser("restore", help="restore a backup into an empty data directory and database")
    restore.add_argument("path", help="a directory written by `mlservice backup`")
    restore.set_defaults(handler=cmd_restore)

    openapi = commands.add_parser("openapi", help="print the OpenAPI schema as JSON")
    openapi.add_argument("--output", "-o", help="write to this file instead of stdout")
    openapi.set_defaults(handler=cmd_openapi)

    gen = commands.add_parser("gen-cert", help="write a self-signed TLS certificate and key for ML_USE_HTTPS")
    gen.add_argument("--cert", type=Path, help="default: ML_SSL_CERT_FILE (./ssl/cert.pem)")
    gen.add_argument("--key", type=Path, help="default: ML_SSL_KEY_FILE (./ssl/key.pem)")
    gen.add_argument("--name", action="append", dest="names", metavar="HOST",
                     help="DNS name or IP address the certificate is for (repeat; default: "
                          "localhost, 127.0.0.1, ::1 and this machine's host name)")
    gen.add_argument("--days", type=int, default=825, help="validity in days (default 825)")
    gen.add_argument("--force", action="store_true", help="overwrite existing files")
    gen.set_defaults(handler=cmd_gen_cert, needs_settings=False)


def server_settings() -> Settings | None:
    """This machine's server settings, or None where they do not load (a client-only machine)."""
    try:
        return load_settings()
    except SettingsError:
        return None


def cmd_gen_cert(_settings: Settings | None, args: argparse.Namespace) -> int:
    from mlservice.observability.tls import default_names, generate_self_signed

    settings = server_settings()
    cert = args.cert or (settings.ssl_cert_file if settings else Path("./ssl/cert.pem"))
    key = args.key or (settings.ssl_key_file if settings else Path("./ssl/key.pem"))
    existing = [str(path) for path in (cert, key) if path.exists()]
    if existing and not args.force:
        print(f"error: {', '.join(existing)} already exist(s); pass --force to overwrite", file=sys.stderr)
        return 2
    names = args.names or default_names()
    generate_self_signed(cert, key, names, days=args.days)
    print(f"wrote {cert} (self-signed, {args.days} days, for {', '.join(names)}) and {key} (mode 600)")
    print(f"serve it with ML_USE_HTTPS=true ML_SSL_CERT_FILE={cert} ML_SSL_KEY_FILE={key}; "
          f"clients trust it with ML_CA_FILE={cert}")
    return 0
