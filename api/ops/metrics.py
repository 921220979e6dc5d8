"""Prometheus metrics: request count and latency by method, route template and status."""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import NotFound

from api.errorhandler import error_response
from api.ops.responses import Headers, Step
from api.ops.timing import elapsed_ms
from api.settings import ConfigError

logger = logging.getLogger(__name__)

EXTENSION = "metrics"
# Any other method is counted as "other": clients choose methods, and every label value costs
# a time series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LABELS = ("method", "route", "status")


class RequestMetrics:
    """The app's metrics, in its own registry so that several apps in one process do not clash."""

    def __init__(self, multiprocess_dir: str = "") -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir
        self.requests = Counter(
            "http_requests", "HTTP requests answered.", LABELS, registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to build the response, from arrival to the last after_request hook.",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # labels() takes a lock and builds the child each time; cache children per label set.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its duration."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = self._children.setdefault(
                key, (self.requests.labels(*labels), self.latency.labels(*labels))
            )
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        """The text format: this process's registry, or all workers' files in multiprocess mode."""
        from prometheus_client import generate_latest

        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)


def init_app(app: Flask) -> Step | None:
    """Count every request unless METRICS_ENABLED=0; GET /metrics serves them (api.ops.monitoring).

    Returns the per-response step for ``api.ops`` (None when metrics are off).
    """
    if not app.config["METRICS_ENABLED"]:
        return None
    multiprocess_dir = str(app.config["PROMETHEUS_MULTIPROC_DIR"])
    _check_multiprocess_dir(multiprocess_dir)
    if app.config["APP_ENV"] == "production" and not app.config["METRICS_TOKEN"]:
        logger.warning(
            "GET /metrics is open to anyone who can reach the app; set METRICS_TOKEN or block "
            "/metrics at the proxy."
        )
    metrics = app.extensions[EXTENSION] = RequestMetrics(multiprocess_dir)

    def count_request(environ: dict[str, Any], status: int, headers: Headers) -> None:
        req = request._get_current_object()  # type: ignore[attr-defined]
        method = req.method
        rule = req.url_rule
        metrics.observe(
            method if method in METHODS else "other",
            rule.rule if rule is not None else UNMATCHED_ROUTE,
            status,
            elapsed_ms(environ) / 1000.0,
        )

    return count_request


def _check_multiprocess_dir(path: str) -> None:
    """Multiprocess mode needs the folder, and prometheus-client must have seen it at import."""
    multiprocess_values = prometheus_values.ValueClass is not prometheus_values.MutexValue
    if not path:
        if multiprocess_values:
            raise ConfigError(
                ["PROMETHEUS_MULTIPROC_DIR: prometheus-client is in multiprocess mode but the "
                 "setting is empty; set it in the environment or unset it everywhere."]
            )  # fmt: skip
        return
    if not os.path.isdir(path):
        raise ConfigError(
            [f"PROMETHEUS_MULTIPROC_DIR: {path!r} is not a folder; create it (empty) before "
             "the server starts, or use gunicorn.conf.py, which does."]
        )  # fmt: skip
    if not multiprocess_values:
        raise ConfigError(
            ["PROMETHEUS_MULTIPROC_DIR: it must be in the process environment before Python "
             "starts (not only in .env), so that prometheus-client sees it; gunicorn.conf.py "
             "sets it for you."]
        )  # fmt: skip


def metrics_response() -> Response:
    """GET /metrics: 404 when switched off, 401 without the METRICS_TOKEN when one is set."""
    metrics: RequestMetrics | None = current_app.extensions.get(EXTENSION)
    if metrics is None:
        raise NotFound()
    token = str(current_app.config["METRICS_TOKEN"])
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return error_response(
                401,
                "Metrics need 'Authorization: Bearer <METRICS_TOKEN>'.",
                {"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
