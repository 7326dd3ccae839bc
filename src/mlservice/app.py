"""``create_app(settings)``: the API routers, middleware, protected docs and the dashboard."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from mlservice import __version__
from mlservice.auth.deps import CLIENT_HEADER, CurrentPrincipal
from mlservice.auth.router import router as auth_router
from mlservice.db import Database
from mlservice.errors import install_error_handlers
from mlservice.health.router import router as health_router
from mlservice.middleware import BodySizeLimit, SecurityHeaders
from mlservice.settings import Settings

REPO_DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "frontend" / "out"


class DashboardFiles(StaticFiles):
    """The static export of the dashboard; misses fall through to the JSON 404 of the API."""

    def lookup_path(self, path: str) -> tuple[str, Any]:
        if path == "404.html":
            return "", None
        return super().lookup_path(path)


def dashboard_directory(settings: Settings) -> Path | None:
    directory = settings.dashboard_dir or REPO_DASHBOARD_DIR
    return directory if (directory / "index.html").is_file() else None


def create_app(settings: Settings, database: Database | None = None) -> FastAPI:
    database = database or Database(settings.effective_database_url, timeout=settings.db_timeout)
    app = FastAPI(
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

    install_error_handlers(app)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", CLIENT_HEADER],
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    app.include_router(health_router)
    app.include_router(auth_router)
    _add_protected_docs(app)

    directory = dashboard_directory(settings)
    if directory is not None:
        app.mount("/", DashboardFiles(directory=directory, html=True), name="dashboard")
    return app


def _add_protected_docs(app: FastAPI) -> None:
    """The seed keeps the API description behind authentication."""

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_principal: CurrentPrincipal) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def swagger(_principal: CurrentPrincipal) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="ML Service API")

    @app.get("/redoc", include_in_schema=False)
    def redoc(_principal: CurrentPrincipal) -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="ML Service API")
