"""The per-response steps: run once per response, in order; a failing one costs no answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from api.ops import EXTENSION


def test_steps_run_in_order_once_per_response(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    names = [step.__name__ for step in app.extensions[EXTENSION]]
    # Timing first: it fixes the duration that metrics and the access log then report.
    assert names == [
        "server_timing",
        "echo_request_id",
        "add_security_headers",
        "count_request",
        "log_request",
    ]
    seen: list[int] = []
    app.extensions[EXTENSION].append(lambda environ, status, headers: seen.append(status))
    client = app.test_client()
    client.get("/")
    client.get("/no/such/url")
    assert seen == [200, 404]


def test_a_failing_step_is_logged_and_the_answer_still_sent(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    def broken(environ: dict[str, Any], status: int, headers: list[tuple[str, str]]) -> None:
        raise RuntimeError("broken step")

    app.extensions[EXTENSION].insert(0, broken)
    with caplog.at_level(logging.ERROR, logger="api.ops.responses"):
        response = app.test_client().get("/")
    assert response.status_code == 200
    assert response.get_json() == {"message": "Hello World"}
    # The steps after the broken one still ran.
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Request-ID" in response.headers
    assert any("broken" in record.getMessage() for record in caplog.records)
