"""Request ids: accept a safe incoming ``X-Request-ID`` or make one, and echo it back."""

from __future__ import annotations

import re
import secrets

from flask import Flask, Response, g, request

HEADER = "X-Request-ID"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def incoming_or_new(value: str | None) -> str:
    """Keep a well-formed incoming id; replace anything else with a fresh one."""
    if value and SAFE_REQUEST_ID.fullmatch(value):
        return value
    return secrets.token_hex(16)


def current_request_id() -> str:
    """This request's id, assigned on first use (logs, error bodies, the response header)."""
    request_id: str | None = g.get("request_id")
    if request_id is None:
        request_id = g.request_id = incoming_or_new(request.headers.get(HEADER))
    return request_id


def init_app(app: Flask) -> None:
    """Echo every request's id in the ``X-Request-ID`` response header."""

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers[HEADER] = current_request_id()
        return response
