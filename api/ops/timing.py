"""Request timing: a clock started as the request enters the app, ``Server-Timing`` on replies."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from flask import Flask, request

from api.ops.responses import START_KEY, Headers, Step
from api.settings import PRODUCTION

ELAPSED_KEY = "api.elapsed_ms"
HEADER = "Server-Timing"


def elapsed_ms(environ: dict[str, Any] | None = None) -> float:
    """Milliseconds this request has taken, fixed at the first call so every report agrees."""
    if environ is None:
        environ = request.environ
    elapsed: float | None = environ.get(ELAPSED_KEY)
    if elapsed is None:
        start = environ.get(START_KEY)
        elapsed = environ[ELAPSED_KEY] = (perf_counter() - start) * 1000.0 if start else 0.0
    return elapsed


def init_app(app: Flask) -> Step | None:
    """The step reporting the duration in ``Server-Timing`` (None when SERVER_TIMING is off).

    ``api.ops`` runs it before the others, so it fixes the duration they report; without it
    the first step that asks fixes it. The clock itself is started by
    ``api.ops.responses.ResponseSteps`` as the request arrives, whether the header is sent or
    not.

    By default the header is sent except in production: a duration tells any caller how long
    the server worked on its request (which makes timing attacks easier, and MDN advises
    choosing to whom such metrics go); the access log and metrics keep the durations.
    """
    send = app.config["SERVER_TIMING"]
    if send is None:
        send = app.config["APP_ENV"] != PRODUCTION
    if not send:
        return None

    def server_timing(environ: dict[str, Any], status: int, headers: Headers) -> None:
        headers.append((HEADER, f"app;dur={elapsed_ms(environ):.2f}"))

    return server_timing
