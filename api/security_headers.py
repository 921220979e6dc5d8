"""Security headers on every response; HSTS only in production (it pins browsers to HTTPS)."""

from __future__ import annotations

from flask import Flask, Response, request

HSTS_VALUE = "max-age=31536000; includeSubDomains"
ALWAYS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    # A JSON API never needs to run scripts or be framed (OWASP REST security cheat sheet).
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)


def init_app(app: Flask) -> None:
    """Add the headers in an after_request hook; answers to authenticated calls are not cached."""
    headers = list(ALWAYS)
    if app.config["APP_ENV"] == "production":
        headers.append(("Strict-Transport-Security", HSTS_VALUE))
    fixed = tuple(headers)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        response_headers = response.headers
        for name, value in fixed:
            response_headers.setdefault(name, value)
        # A reply to a request carrying credentials is personal: no shared or browser cache.
        if "Cache-Control" not in response_headers and "Authorization" in request.headers:
            response_headers["Cache-Control"] = "no-store"
        return response
