"""Prometheus metrics (``GET /metrics``).

Per request the cost is one pure ASGI wrapper: a request id, a clock read, and a cached
counter/histogram child per (method, route template, status) — never the raw path, so ids in URLs
cannot blow up the label set. What lives in the database (jobs by status and their durations,
queue depth, asynchronous predictions, drift scores, active alerts) is read on scrape, so every
replica reports the same truth whichever process ran the job.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import case, func, literal_column, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlservice.observability.logs import request_id_var

log = logging.getLogger(__name__)

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 4 * 3600.0)
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_ID_PREFIX = os.urandom(4).hex()
_id_numbers = itertools.count(1)  # next() on it is atomic: safe from any thread


def _next_request_id() -> str:
    """Unique per process without a syscall per request: os.urandom released the GIL and
    showed up as ~10 % of a sync prediction's time waiting to take it back under load."""
    return f"{_ID_PREFIX}{next(_id_numbers):08x}"


class Metrics:
    """One registry per app (tests build many apps in one process)."""

    def __init__(self, database: Any, *, enabled: bool = True) -> None:
        self.database = database
        self.enabled = enabled
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "mlservice_http_requests", "HTTP requests by method, route template and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "mlservice_http_request_duration_seconds", "HTTP request latency by method and route template",
            ["method", "route"], buckets=HTTP_BUCKETS, registry=self.registry,
        )
        self.login_failures = Counter(
            "mlservice_login_failures", "failed logins seen by this process", registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._sync_predictions: dict[str, int] = {}
        self._lock = threading.Lock()
        self.registry.register(_DatabaseCollector(self))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_sync_predictions(self, model_key: str, rows: int) -> None:
        with self._lock:
            self._sync_predictions[model_key] = self._sync_predictions.get(model_key, 0) + rows

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "login.failed":
            self.login_failures.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    if route is None:
        return "unmatched"
    path = getattr(route, "path", None)
    if path is None:
        return "unmatched"
    return path or "/dashboard"  # the static dashboard is mounted at "/" (path "")


class RequestObserver:
    """Outermost pure ASGI middleware: request id (kept from a sane X-Request-ID, else new) in a
    context variable for the logs and in the response header, and the HTTP metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _REQUEST_ID.fullmatch(value):
                    request_id = value.decode("ascii")
                break
        if request_id is None:
            request_id = _next_request_id()
        token = request_id_var.set(request_id)
        if kind == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id_var.reset(token)
            return
        header = (b"x-request-id", request_id.encode("ascii"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.metrics.enabled:
                self.metrics.observe(scope["method"], _route_label(scope), status, time.perf_counter() - started)
            request_id_var.reset(token)


class _DatabaseCollector:
    """Gauges and job histograms read from the database at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        from mlservice.alerts.models import Alert
        from mlservice.drift.models import DriftReport
        from mlservice.jobs.models import Job

        database = self.metrics.database
        jobs = GaugeMetricFamily("mlservice_jobs", "jobs in the database by type and status", labels=["type", "status"])
        depth = GaugeMetricFamily("mlservice_queue_depth", "jobs queued and not yet started")
        durations = HistogramMetricFamily(
            "mlservice_job_duration_seconds", "run time of finished jobs by type and status",
            labels=["type", "status"],
        )
        predictions = CounterMetricFamily(
            "mlservice_predictions", "rows predicted: sync by this process, async from completed jobs",
            labels=["model_key", "mode"],
        )
        alerts = GaugeMetricFamily("mlservice_alerts_active", "active alerts by kind and severity",
                                   labels=["kind", "severity"])
        drift = GaugeMetricFamily("mlservice_drift_score", "latest drift report per model: PSI and JS per feature",
                                  labels=["model_key", "version", "feature", "statistic"])
        drifted = GaugeMetricFamily("mlservice_drift_drifted_share", "latest drift report per model: share of drifted features",
                                    labels=["model_key", "version"])
        up = GaugeMetricFamily("mlservice_database_up", "1 when the scrape could read the database")

        with self.metrics._lock:
            sync = dict(self.metrics._sync_predictions)
        for model_key, rows in sorted(sync.items()):
            predictions.add_metric([model_key, "sync"], rows)
        try:
            with database.session() as session:
                queued = 0
                for type_, status, count in session.execute(
                    select(Job.type, Job.status, func.count()).group_by(Job.type, Job.status)
                ):
                    jobs.add_metric([type_, status], count)
                    if status == "queued":
                        queued += count
                depth.add_metric([], queued)

                seconds = _duration_seconds(database, Job)
                finished = Job.status.in_(("completed", "failed", "cancelled")) & Job.started_at.is_not(None) \
                    & Job.finished_at.is_not(None)
                bucket_columns = [func.sum(case((seconds <= edge, 1), else_=0)) for edge in JOB_BUCKETS]
                for row in session.execute(
                    select(Job.type, Job.status, func.count(), func.coalesce(func.sum(seconds), 0.0), *bucket_columns)
                    .where(finished).group_by(Job.type, Job.status)
                ):
                    type_, status, count, total, *counts = row
                    buckets = [(repr(edge), int(n or 0)) for edge, n in zip(JOB_BUCKETS, counts)]
                    buckets.append(("+Inf", int(count)))
                    durations.add_metric([type_, status], buckets, float(total or 0.0))

                rows = Job.result["rows"].as_integer()
                for model_key, total in session.execute(
                    select(Job.model_key, func.sum(rows))
                    .where(Job.type == "predict", Job.status == "completed", Job.model_key.is_not(None))
                    .group_by(Job.model_key)
                ):
                    predictions.add_metric([model_key, "async"], int(total or 0))

                for kind, severity, count in session.execute(
                    select(Alert.kind, Alert.severity, func.count()).where(Alert.status == "active")
                    .group_by(Alert.kind, Alert.severity)
                ):
                    alerts.add_metric([kind, severity], count)

                latest = select(func.max(DriftReport.id)).group_by(DriftReport.model_key)
                for report in session.scalars(select(DriftReport).where(DriftReport.id.in_(latest))):
                    drifted.add_metric([report.model_key, report.version], report.drifted_share)
                    for feature in (report.report or {}).get("features") or []:
                        for statistic in ("psi", "js"):
                            value = feature.get(statistic)
                            if isinstance(value, (int, float)):
                                drift.add_metric([report.model_key, report.version, str(feature.get("name")), statistic], value)
            up.add_metric([], 1)
        except Exception:  # a scrape must still answer (with database_up 0) when the database is down
            log.exception("metrics: reading the database failed")
            up.add_metric([], 0)
        yield from (up, jobs, depth, durations, predictions, alerts, drift, drifted)


def _duration_seconds(database: Any, job: Any) -> Any:
    if database.is_sqlite:
        return (func.julianday(job.finished_at) - func.julianday(job.started_at)) * literal_column("86400.0")
    return func.extract("epoch", job.finished_at - job.started_at)


router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format. Access: ``Bearer <ML_METRICS_TOKEN>``, or an admin's token."""
    from mlservice.auth.deps import authenticate_request, require_admin

    state = request.app.state
    expected = state.settings.metrics_token
    presented = request.headers.get("authorization", "").partition(" ")[2].strip()
    if not (expected is not None and presented
            and hmac.compare_digest(presented.encode(), expected.get_secret_value().encode())):
        # Not the scrape token: the same admin check as every admin route.
        await require_admin(await authenticate_request(request))
    from starlette.concurrency import run_in_threadpool

    body = await run_in_threadpool(state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]
