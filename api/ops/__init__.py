"""The operations batteries (logs, request ids, metrics, monitoring, rate limits, headers).

Initialised in one place and run per response in a fixed order. ``rate_limit`` and
``register_check`` are the names an app's own code uses: ``from api.ops import rate_limit``.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response

from api.ops import (
    accesslog,
    metrics,
    monitoring,
    proxies,
    ratelimit,
    security_headers,
    timing,
)
from api.ops.monitoring import register_check
from api.ops.ratelimit import rate_limit

__all__ = ["init_app", "rate_limit", "register_check"]

ResponseStep = Callable[[Response], None]


def init_app(app: Flask) -> None:
    """Proxies, timing, security headers, metrics, access log, rate limits, monitoring URLs.

    The per-response work of the batteries runs in ONE after_request hook, in this order:
    timing fixes the duration, headers are added, then metrics and the access log see the
    final response. One hook instead of one per battery keeps Flask's per-hook overhead off
    the hot path.
    """
    proxies.init_app(app)
    candidates = (
        timing.init_app(app),
        security_headers.init_app(app),
        metrics.init_app(app),
        accesslog.init_app(app),
    )
    steps: tuple[ResponseStep, ...] = tuple(step for step in candidates if step is not None)

    @app.after_request
    def finish_response(response: Response) -> Response:
        for step in steps:
            step(response)
        return response

    ratelimit.init_app(app)
    monitoring.init_app(app)
