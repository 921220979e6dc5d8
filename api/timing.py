"""Request timing: a clock started as the request enters the app, ``Server-Timing`` on replies."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

from flask import Flask, Response, g, request

START_KEY = "api.request_start"
HEADER = "Server-Timing"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class StartClock:
    """WSGI middleware noting when the request arrived (before the session is opened)."""

    def __init__(self, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Stamp the environ and pass the request on."""
        environ[START_KEY] = perf_counter()
        return self.wsgi_app(environ, start_response)


def elapsed_ms() -> float:
    """Milliseconds this request has taken, fixed at the first call so every report agrees."""
    elapsed: float | None = g.get("elapsed_ms")
    if elapsed is None:
        start = request.environ.get(START_KEY)
        elapsed = g.elapsed_ms = (perf_counter() - start) * 1000.0 if start else 0.0
    return elapsed


def init_app(app: Flask) -> None:
    """Start the clock for every request and report it in ``Server-Timing: app;dur=<ms>``.

    Call it after the other batteries' ``init_app``: Flask runs after_request functions in
    reverse order, so this one runs first and fixes the duration the others report.
    """
    app.wsgi_app = StartClock(app.wsgi_app)  # type: ignore[method-assign]

    @app.after_request
    def server_timing(response: Response) -> Response:
        response.headers[HEADER] = f"app;dur={elapsed_ms():.2f}"
        return response
