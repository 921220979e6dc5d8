"""The operations batteries, initialised in one place and in the order their hooks need."""

from __future__ import annotations

from flask import Flask

from api import accesslog, metrics, monitoring, proxies, ratelimit, security_headers, timing


def init_app(app: Flask) -> None:
    """Proxies, access log, metrics, security headers, timing, rate limits, monitoring URLs.

    Flask runs after_request functions last-registered-first: timing (registered last of the
    four) fixes the duration, then headers are added, then metrics and the access log see the
    final status. The limiter's before_request runs after the request id is assigned.
    """
    proxies.init_app(app)
    accesslog.init_app(app)
    metrics.init_app(app)
    security_headers.init_app(app)
    timing.init_app(app)
    ratelimit.init_app(app)
    monitoring.init_app(app)
