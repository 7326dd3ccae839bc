"""Operability: request ids, structured logs, Prometheus metrics, TLS certificates, `status`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def install_observability(app: FastAPI) -> None:
    """Add the request-id/metrics middleware (outermost) and ``GET /metrics`` to the app."""
    from mlservice.observability.metrics import Metrics, RequestObserver, router

    settings = app.state.settings
    metrics = Metrics(app.state.database, enabled=settings.metrics_enabled)
    app.state.metrics = metrics
    app.state.events.subscribe(metrics.on_event)  # login failures, from the event writer thread
    app.add_middleware(RequestObserver, metrics=metrics)
    if settings.metrics_enabled:
        app.include_router(router)
