"""Security headers on every response; HSTS only in production (it pins browsers to HTTPS)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from api.ops.responses import Headers, Step

HSTS_VALUE = "max-age=31536000; includeSubDomains"
ALWAYS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    # A JSON API never needs to run scripts or be framed (OWASP REST security cheat sheet).
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
NO_STORE = ("Cache-Control", "no-store")


def init_app(app: Flask) -> Step:
    """The step adding the headers a view did not set; answers to credentials are not cached."""
    headers = list(ALWAYS)
    if app.config["APP_ENV"] == "production":
        headers.append(("Strict-Transport-Security", HSTS_VALUE))
    fixed = tuple((name.lower(), (name, value)) for name, value in headers)
    pairs = tuple(pair for _, pair in fixed)
    # Only a name of one of these lengths can be one of ours: the others are not lowered.
    lengths = frozenset(len(name) for name, _ in (*headers, NO_STORE))

    def add_security_headers(environ: dict[str, Any], status: int, sent: Headers) -> None:
        present = {name.lower() for name, _ in sent if len(name) in lengths}
        if present:
            sent.extend(pair for lowered, pair in fixed if lowered not in present)
        else:
            sent.extend(pairs)
        # A reply to a request carrying credentials is personal: no shared or browser cache.
        if "cache-control" not in present and "HTTP_AUTHORIZATION" in environ:
            sent.append(NO_STORE)

    return add_security_headers
