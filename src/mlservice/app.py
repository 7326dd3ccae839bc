"""``create_app(settings)``: the API routers, middleware, protected docs and the dashboard."""

from __future__ import annotations

import gzip
import html
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from mlservice import __version__
from mlservice.alerts.router import router as alerts_router
from mlservice.alerts.service import raise_security_alert
from mlservice.artifacts import ArtifactStore
from mlservice.auth.deps import CurrentPrincipal, TokenTouches
from mlservice.auth.lockout import LoginGuard
from mlservice.auth.ratelimit import RateLimits, RequestLimiter
from mlservice.auth.router import router as auth_router
from mlservice.bodies import component_schemas
from mlservice.datasets.router import router as datasets_router
from mlservice.db import Database
from mlservice.docs import add_security, swagger_ui_html
from mlservice.drift.router import router as drift_router
from mlservice.drift.service import run_daily_checks
from mlservice.errors import install_error_handlers
from mlservice.events.middleware import RequestEvents
from mlservice.events.router import router as events_router
from mlservice.events.writer import EventLog
from mlservice.health.gpu import PUBLISHED_NAME, GpuProbe
from mlservice.health.router import router as health_router
from mlservice.jobs.queue import JobQueue, LocalJobQueue
from mlservice.jobs.router import router as jobs_router
from mlservice.jobs.service import recover_interrupted
from mlservice.live import forward_suspicious
from mlservice.live.hub import Hub
from mlservice.live.router import router as live_router
from mlservice.middleware import BodySizeLimit, RefuseNul, SecurityHeaders
from mlservice.observability import install_observability
from mlservice.origin import CLIENT_HEADER
from mlservice.predictions.log import SyncLogWriter
from mlservice.predictions.router import router as predictions_router
from mlservice.predictions.service import VersionResolver
from mlservice.registry.router import router as registry_router
from mlservice.registry.service import ModelCache
from mlservice.runtime.election import LOCK_NAME, Leadership, run_dir
from mlservice.runtime.handoff import ElectedQueue
from mlservice.scheduler import build_scheduler, delete_expired_prediction_logs, sweep_leftovers
from mlservice.settings import Settings
from mlservice.training.router import router as training_router
from mlservice.wiring import register_job_kinds

log = logging.getLogger(__name__)

# Where the dashboard's static export is looked for when ML_DASHBOARD_DIR is unset, first usable
# one wins: the copy inside the installed package (setup.py puts frontend/out there when it builds
# a wheel), then a development checkout's frontend/out (`make dashboard`). In practice only one
# exists: setup.py copies into the build tree, never into src/, so a checkout has no packaged copy
# that could go stale behind a fresh `make dashboard`; an installed package has no frontend/ above.
PACKAGED_DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"
REPO_DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "frontend" / "out"
# The scripts and styles index.html links; any missing one means a browser shows a blank page.
_EXPORT_ASSET = re.compile(r'(?:src|href)="/(_next/[^"?#]+)"')
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS_URL = "/docs-assets"


class DashboardFiles(StaticFiles):
    """The static export of the dashboard; misses fall through to the JSON 404 of the API.

    Text assets are sent gzip-compressed (compressed once, kept in memory: the export is a few
    hundred KB), and Next's content-hashed files under /_next/static/ are cached for good."""

    COMPRESSIBLE = frozenset({".js", ".css", ".html", ".json", ".svg", ".txt", ".map"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gzipped: dict[tuple[str, float], bytes] = {}

    def lookup_path(self, path: str) -> tuple[str, Any]:
        if path == "404.html":
            return "", None
        return super().lookup_path(path)

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        immutable = path.startswith("_next/static/")
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if immutable else "no-cache"
        if not isinstance(response, FileResponse) or response.status_code != 200:
            return response
        accepts = dict(scope.get("headers") or []).get(b"accept-encoding", b"")
        file_path = Path(str(response.path))
        if b"gzip" not in accepts or file_path.suffix not in self.COMPRESSIBLE:
            return response
        key = (str(file_path), file_path.stat().st_mtime)
        body = self._gzipped.get(key)
        if body is None:
            body = self._gzipped[key] = gzip.compress(file_path.read_bytes(), compresslevel=9, mtime=0)
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "accept-ranges")}
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return Response(body, status_code=200, headers=headers, media_type=response.media_type)


def dashboard_problem(directory: Path) -> str | None:
    """Why ``directory`` is not a usable export (missing, truncated, corrupt), or None."""
    index = directory / "index.html"
    if not index.is_file():
        return f"{index} is missing"
    try:
        page = index.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"{index} cannot be read ({exc})"
    if not page.strip():
        return f"{index} is empty"
    missing = sorted({ref for ref in _EXPORT_ASSET.findall(page) if not (directory / ref).is_file()})
    if missing:
        return f"{len(missing)} file(s) that {index} links are missing, e.g. {missing[0]}"
    return None


def locate_dashboard(settings: Settings) -> tuple[Path | None, str | None]:
    """``(directory, None)`` for a usable export, else ``(None, why not)``."""
    if settings.dashboard_dir is not None:
        candidates = [settings.dashboard_dir]  # asked for by name: never serve another one instead
    else:
        candidates = [d for d in (PACKAGED_DASHBOARD_DIR, REPO_DASHBOARD_DIR) if d.exists()]
        if not candidates:
            return None, ("no dashboard export is installed (a wheel built without `make dashboard`, "
                          "or a checkout where it has not run)")
    problems = []
    for directory in candidates:
        problem = dashboard_problem(directory)
        if problem is None:
            return directory, None
        problems.append(problem)
    return None, "; ".join(problems)


def dashboard_directory(settings: Settings) -> Path | None:
    return locate_dashboard(settings)[0]


# Served at / when there is no usable dashboard, so a browser gets an answer instead of a JSON 404.
# 503: the dashboard part of the service is unavailable (a check of "/" cannot pass by mistake).
# The reason, with its server paths, goes to the log only.
_NO_DASHBOARD_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ML Service: no dashboard</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>ML Service {version}: the API runs, the dashboard is unavailable</h1>
<p>This installation has no usable dashboard (its static export is missing or damaged), so only the
API is served. The server log says what is wrong. Reinstall a wheel built by <code>make dist</code>,
run <code>make dashboard</code> in a checkout, or point <code>ML_DASHBOARD_DIR</code> at an export.</p>
<p>Health: <a href="/health">/health</a>. API docs (sign-in needed): <a href="/docs">/docs</a>.</p>
</body></html>
"""


def _add_dashboard(app: FastAPI, settings: Settings) -> None:
    directory, problem = locate_dashboard(settings)
    if directory is not None:
        app.mount("/", DashboardFiles(directory=directory, html=True), name="dashboard")
        return
    log.warning("dashboard unavailable, serving the API only: %s", problem)
    page = _NO_DASHBOARD_PAGE.format(version=html.escape(__version__))

    @app.get("/", include_in_schema=False)
    def no_dashboard() -> HTMLResponse:
        return HTMLResponse(page, status_code=503, headers={"Cache-Control": "no-cache"})


def create_queue(settings: Settings) -> JobQueue:
    if settings.queue == "celery":
        from mlservice.jobs.celery_queue import CeleryJobQueue

        return CeleryJobQueue(settings)
    return LocalJobQueue(settings)


def create_app(
    settings: Settings,
    database: Database | None = None,
    queue: JobQueue | None = None,
    *,
    background: bool = False,
) -> FastAPI:
    register_job_kinds()
    database = database or Database(settings.effective_database_url, timeout=settings.db_timeout)
    artifacts = ArtifactStore(settings.effective_artifacts_root)
    queue = queue or create_queue(settings)
    if background:  # `serve`: only the elected process runs the job pool (mlservice.runtime)
        queue = ElectedQueue(queue, database)
    # `serve --workers N`: the processes share live updates, rate limits and lockouts.
    shared_dir = run_dir(settings.data_dir) if background and settings.effective_api_workers > 1 else None
    scheduler = build_scheduler(settings, artifacts, database, queue) if background else None

    def recover() -> list[str]:
        if not getattr(queue, "owns_running_jobs", True):
            return []  # distributed: jobs run on workers; lost ones are found by their heartbeat
        with database.session(write=True) as session:
            interrupted, queued = recover_interrupted(session, artifacts)
        if interrupted:
            log.warning("%d job(s) were running when the server stopped; marked failed", interrupted)
        return queued

    def lead() -> None:
        """The elected process's duties: at start-up in a single process, on take-over in others."""
        queued = recover()
        queue.lead()  # spawn the workers now rather than on the first job
        delete_expired_prediction_logs(settings, artifacts)
        sweep_leftovers(database, artifacts)
        run_daily_checks(database, queue, settings, artifacts)  # catch up if we were down
        scheduler.start()
        for job_id in queued:
            queue.enqueue(job_id)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await app.state.live_hub.start(queue)  # before the workers spawn: they get its address
        leadership = None
        if background:
            app.state.gpu_probe.start()
            leadership = Leadership(settings.data_dir / LOCK_NAME, lead)
            leadership.start()
        else:
            for job_id in recover():
                queue.enqueue(job_id)
        try:
            yield
        finally:
            if leadership is not None:
                leadership.stop()
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=False)
            queue.shutdown()
            await app.state.live_hub.stop()
            app.state.prediction_log.close()
            app.state.token_touches.close()
            # Last, once this process writes no more: the data into mlservice.db itself (SQLite).
            database.checkpoint()

    app = FastAPI(
        lifespan=lifespan,
        title="ML Service",
        version=__version__,
        description="Train MLP classifiers on tables, serve predictions, monitor drift.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.started_at = time.monotonic()
    app.state.artifacts = artifacts
    app.state.queue = queue
    app.state.gpu_probe = GpuProbe(shared_dir / PUBLISHED_NAME if shared_dir else None)
    app.state.model_cache = ModelCache(artifacts)
    app.state.version_resolver = VersionResolver(database)
    app.state.prediction_log = SyncLogWriter(artifacts)
    app.state.token_touches = TokenTouches()
    app.state.events = EventLog(settings, database, shared_dir)
    app.state.login_guard = LoginGuard(settings, shared_dir)
    app.state.rate_limiter = RequestLimiter(settings, shared_dir)
    app.state.live_hub = Hub(settings, database, shared_dir)
    # Hooks: the event log imports no domain above it; what reacts to a written event is wired here.
    app.state.events.subscribe(forward_suspicious)  # suspicious events reach admins' sockets
    app.state.events.subscribe(partial(raise_security_alert, database))  # ... and raise an alert

    install_error_handlers(app)
    app.add_middleware(RefuseNul)  # innermost: its 422 gets the headers below and is recorded as an event
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", CLIENT_HEADER],
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestEvents, log=app.state.events)  # sees every status
    app.add_middleware(RateLimits, limiter=app.state.rate_limiter, log=app.state.events)  # before any work
    install_observability(app)  # outermost: request id (logs, X-Request-ID), GET /metrics

    # Routes are matched one by one (~2 us each): the hot paths, sync predictions and the job
    # status clients poll, go first. No two routers share a path and method, so order is free.
    app.include_router(predictions_router)
    app.include_router(jobs_router)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(datasets_router)
    app.include_router(training_router)
    app.include_router(registry_router)
    app.include_router(events_router)
    app.include_router(live_router)
    app.include_router(drift_router)
    app.include_router(alerts_router)
    _add_protected_docs(app)

    _add_dashboard(app, settings)
    return app


def _add_protected_docs(app: FastAPI) -> None:
    """0.11.2 kept the API description behind authentication, and so do we. The description
    declares the bearer scheme and which operations need it (``mlservice.docs``)."""

    generate = app.openapi

    def openapi_with_documented_bodies_and_security() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(component_schemas())
            app.openapi_schema = add_security(schema, app.routes)
        return app.openapi_schema

    app.openapi = openapi_with_documented_bodies_and_security  # type: ignore[method-assign]

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_principal: CurrentPrincipal) -> JSONResponse:
        return JSONResponse(app.openapi())

    # Swagger UI and ReDoc come from this server, not from a CDN: a self-hosted box is often
    # offline. The assets are the libraries' public bundles, so they need no authentication.
    app.mount(DOCS_ASSETS_URL, DashboardFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger(_principal: CurrentPrincipal) -> HTMLResponse:
        # Our own page: Authorize persists, and "Try it out" works with the dashboard's cookie.
        return swagger_ui_html(openapi_url="/openapi.json", title="ML Service API", assets_url=DOCS_ASSETS_URL)

    @app.get("/redoc", include_in_schema=False)
    def redoc(_principal: CurrentPrincipal) -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="ML Service API",
            redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
