"""Request timing: a clock started as the request enters the app, ``Server-Timing`` on replies."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

from flask import Flask, Response, request

START_KEY = "api.request_start"
ELAPSED_KEY = "api.elapsed_ms"
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
    environ = request.environ
    elapsed: float | None = environ.get(ELAPSED_KEY)
    if elapsed is None:
        start = environ.get(START_KEY)
        elapsed = environ[ELAPSED_KEY] = (perf_counter() - start) * 1000.0 if start else 0.0
    return elapsed


def init_app(app: Flask) -> Callable[[Response], None]:
    """Start the clock for every request; the returned step reports it in ``Server-Timing``.

    ``api.ops`` runs this step before the others, so it fixes the duration they report.
    """
    app.wsgi_app = StartClock(app.wsgi_app)  # type: ignore[method-assign]

    def server_timing(response: Response) -> None:
        response.headers.add(HEADER, f"app;dur={elapsed_ms():.2f}")

    return server_timing
