"""The baseline: a bare Flask "hello" app, served under the same gunicorn settings.

``with_headers`` is the same app answering with the headers the real app adds to a
credentialed answer (fixed values, appended to the WSGI header list: the least any app can
pay for them). Sent the same credentials as ``/api/restricted``, it shows what a request
with those headers costs gunicorn and the network before any code of the app runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> dict[str, str]:
    """The same body as the real app's GET /."""
    return {"message": "Hello World"}


# What the app in production sends besides Content-Type and Content-Length on an answer to a
# session token (its X-Request-ID values vary; their length does not).
RESTRICTED_HEADERS = (
    ("Vary", "Cookie"),
    ("X-Request-ID", "9f1c2d3e4b5a69788796a5b4c3d2e1f0"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("Cache-Control", "no-store"),
)


def with_headers(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The bare app, its answers carrying ``RESTRICTED_HEADERS``."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        headers.extend(RESTRICTED_HEADERS)
        return start_response(status, headers, exc_info)

    return app.wsgi_app(environ, start)
