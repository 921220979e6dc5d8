"""Headers on every response: security, caching of credentials, timing."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import pytest
from flask import Flask, Response, jsonify

from api.ops.logs import ACCESS_LOGGER

SERVER_TIMING = re.compile(r"app;dur=\d+\.\d\d")


@pytest.mark.parametrize("path", ["/", "/running", "/no/such/url", "/api/restricted"])
def test_every_response_has_security_and_timing_headers(client, path: str) -> None:
    headers = client.get(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert SERVER_TIMING.fullmatch(headers["Server-Timing"])
    assert "Strict-Transport-Security" not in headers


def test_server_timing_is_not_sent_in_production_unless_chosen(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    production = make_app(APP_ENV="production")
    response = production.test_client().get("/api/public")
    assert response.status_code == 200
    assert "Server-Timing" not in response.headers
    # The duration is still measured, for the access log and metrics.
    line = [record for record in caplog.records if record.name == ACCESS_LOGGER][-1]
    assert line.args["path"] == "/api/public" and line.args["duration_ms"] > 0  # type: ignore[index,call-overload]

    chosen = make_app(APP_ENV="production", SERVER_TIMING=True).test_client().get("/running")
    assert SERVER_TIMING.fullmatch(chosen.headers["Server-Timing"])
    off = make_app(SERVER_TIMING=False).test_client().get("/running")
    assert "Server-Timing" not in off.headers


def test_hsts_in_production(make_app: Callable[..., Flask]) -> None:
    headers = make_app(APP_ENV="production").test_client().get("/running").headers
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_tokens_and_authenticated_answers_are_not_cached(client, auth_headers) -> None:
    assert client.get("/api/public").headers["Cache-Control"] == "no-store"
    response = client.get("/api/restricted", headers=auth_headers(client))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in client.get("/").headers


def test_a_views_own_header_is_kept_and_the_request_id_is_ours(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()

    @app.get("/t/own-headers")
    def own_headers() -> Response:
        response = jsonify(ok=True)
        response.headers["Content-Security-Policy"] = "default-src 'self'"
        response.headers["Cache-Control"] = "max-age=60"
        response.headers["X-Request-ID"] = "set-by-the-view"
        return response

    response = app.test_client().get(
        "/t/own-headers", headers={"Authorization": "Bearer x", "X-Request-ID": "from-client"}
    )
    assert response.headers.getlist("Content-Security-Policy") == ["default-src 'self'"]
    assert response.headers.getlist("Cache-Control") == ["max-age=60"]
    assert response.headers.getlist("X-Request-ID") == ["from-client"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
