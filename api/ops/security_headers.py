"""Security headers on every response; HSTS only in production (it pins browsers to HTTPS)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, request

HSTS_VALUE = "max-age=31536000; includeSubDomains"
ALWAYS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    # A JSON API never needs to run scripts or be framed (OWASP REST security cheat sheet).
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)


def init_app(app: Flask) -> Callable[[Response], None]:
    """The per-response step adding the headers; answers to authenticated calls are not cached."""
    headers = list(ALWAYS)
    if app.config["APP_ENV"] == "production":
        headers.append(("Strict-Transport-Security", HSTS_VALUE))
    fixed = tuple((name.lower(), name, value) for name, value in headers)

    def add_security_headers(response: Response) -> None:
        response_headers = response.headers
        # One pass over the few headers already set: werkzeug's `in` and setdefault raise and
        # catch an exception for every missing name, which made this the costliest step.
        present = {name.lower() for name, _ in response_headers.items()}
        for lowered, name, value in fixed:
            if lowered not in present:
                response_headers.add(name, value)
        # A reply to a request carrying credentials is personal: no shared or browser cache.
        if "cache-control" not in present and "HTTP_AUTHORIZATION" in request.environ:
            response_headers.add("Cache-Control", "no-store")

    return add_security_headers
