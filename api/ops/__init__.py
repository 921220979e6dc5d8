"""The operations batteries (logs, request ids, metrics, monitoring, rate limits, headers).

Initialised in one place and run per response in a fixed order. ``rate_limit`` and
``register_check`` are the names an app's own code uses: ``from api.ops import rate_limit``.
"""

from __future__ import annotations

from flask import Flask

from api.ops import (
    accesslog,
    metrics,
    monitoring,
    proxies,
    ratelimit,
    requestid,
    security_headers,
    timing,
)
from api.ops.monitoring import register_check
from api.ops.ratelimit import rate_limit
from api.ops.responses import ResponseSteps, Step

__all__ = ["init_app", "rate_limit", "register_check"]

EXTENSION = "ops"


def init_app(app: Flask) -> None:
    """Proxies, timing, request ids, security headers, metrics, access log, rate limits, URLs.

    The per-response work of the batteries runs as each response starts (``ResponseSteps``,
    the outermost WSGI middleware), in this order: timing fixes the duration, headers are
    added, then metrics and the access log see the final status. The steps are listed in
    ``app.extensions["ops"]``.
    """
    proxies.init_app(app)
    candidates = (
        timing.init_app(app),
        requestid.init_app(app),
        security_headers.init_app(app),
        metrics.init_app(app),
        accesslog.init_app(app),
    )
    steps: list[Step] = [step for step in candidates if step is not None]
    app.extensions[EXTENSION] = steps
    app.wsgi_app = ResponseSteps(app.wsgi_app, steps)  # type: ignore[method-assign]
    ratelimit.init_app(app)
    monitoring.init_app(app)
