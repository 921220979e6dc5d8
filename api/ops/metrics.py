"""Prometheus metrics: request count and latency by method, route template and status."""

from __future__ import annotations

import hmac
import logging
import os
from bisect import bisect_left
from collections.abc import Iterator
from time import monotonic
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import NotFound

from api.errorhandler import error_response
from api.ops.batches import BatchQueue
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


REQUESTS = "http_requests"
REQUESTS_HELP = "HTTP requests answered."
LATENCY = "http_request_duration_seconds"


class RequestMetrics:
    """The app's metrics, in its own registry so that several apps in one process do not clash.

    A request is recorded once, in the latency histogram; ``http_requests_total`` is that
    histogram's count, derived when the metrics are read. Counting it separately cost every
    request one more locked write into prometheus-client's shared files, and the two always
    agree, in every worker's files at every moment.

    Requests are recorded in batches (``record``, ``api.ops.batches``): each observation in
    place took two locked writes into prometheus-client's files, with cold caches, about 3
    us of a small request; a batch is added up first and takes one write per bucket and sum
    it changes (``_observe_all``). The worker answering a scrape records its own queue first, so
    its counts are exact; another worker's reach its files within 0.2 s under load and within
    a second after its last request.
    """

    def __init__(self, multiprocess_dir: str = "") -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir
        self.latency = Histogram(
            LATENCY,
            "Time to build the response, from arrival to the last after_request hook.",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # The buckets' upper bounds as prometheus-client keeps them (the last is +Inf).
        self._bounds = (*LATENCY_BUCKETS, float("inf"))
        # labels() takes a lock and builds the child each time; cache children per label set.
        self._children: dict[tuple[str, str, int], Histogram] = {}
        self._queue: BatchQueue[tuple[str, str, int, float]] = BatchQueue(
            self._observe_all, "metrics"
        )

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its duration, in the next batch (see the class)."""
        self._queue.put((method, route, status, seconds), monotonic())

    def flush(self) -> None:
        """Record what is queued now."""
        self._queue.flush()

    def _observe_all(self, batch: list[tuple[str, str, int, float]]) -> None:
        """One batch of ``record`` calls, added up per label set and bucket first.

        The histogram's files take one locked write per bucket and per sum that the batch
        changes, instead of two per request (a batch is mostly one route's requests). What
        is added is what ``observe`` would add for each: the same bucket (the first bound
        that is not below the value) and the same sum, up to the order of the float
        additions. A histogram child without the attributes this relies on (another
        prometheus-client) gets each observation as before.
        """
        counts: dict[tuple[str, str, int], list[int]] = {}
        sums: dict[tuple[str, str, int], float] = {}
        bounds = self._bounds
        for method, route, status, seconds in batch:
            key = (method, route, status)
            per_bucket = counts.get(key)
            if per_bucket is None:
                per_bucket = counts[key] = [0] * len(bounds)
                sums[key] = 0.0
            per_bucket[bisect_left(bounds, seconds)] += 1
            sums[key] += seconds
        for key, per_bucket in counts.items():
            child = self._child(key)
            buckets = getattr(child, "_buckets", None)
            total = getattr(child, "_sum", None)
            if buckets is None or total is None or len(buckets) != len(per_bucket):
                for *labels, seconds in batch:
                    if tuple(labels) == key:
                        child.observe(seconds)
                continue
            total.inc(sums[key])
            for index, count in enumerate(per_bucket):
                if count:
                    buckets[index].inc(count)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its duration."""
        self._child((method, route, status)).observe(seconds)

    def _child(self, key: tuple[str, str, int]) -> Histogram:
        """The histogram child of one label set."""
        child = self._children.get(key)
        if child is None:
            method, route, status = key
            child = self._children.setdefault(key, self.latency.labels(method, route, str(status)))
        return child

    def exposition(self) -> bytes:
        """The text format: this process's registry, or all workers' files in multiprocess mode."""
        self.flush()
        source = self.registry
        if self.multiprocess_dir:
            source = CollectorRegistry()
            MultiProcessCollector(source, path=self.multiprocess_dir)
        return generate_latest(_WithRequestCount(list(source.collect())))


class _WithRequestCount:
    """Collected families plus ``http_requests_total``, the latency histogram's count."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(REQUESTS, REQUESTS_HELP, labels=LABELS)
        for family in self._families:
            if family.name == LATENCY:
                for sample in family.samples:
                    if sample.name == f"{LATENCY}_count":
                        requests.add_metric([sample.labels[name] for name in LABELS], sample.value)
        yield requests
        yield from self._families


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
        metrics.record(
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
