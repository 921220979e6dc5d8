"""The real app plus slow routes (one rate-limited): concurrent calls spread over the workers."""

from __future__ import annotations

import time

from flask import Flask, jsonify

from api import create_app as create_api_app
from api.ops.ratelimit import rate_limit, token_limit

SLOW_SECONDS = 0.1


def create_app() -> Flask:
    """``gunicorn 'tests.support.slow_app:create_app()'``: the app from the environment."""
    app = create_api_app()

    @app.get("/t/slow")
    def slow() -> object:
        time.sleep(SLOW_SECONDS)
        return jsonify(slept=SLOW_SECONDS)

    @app.get("/t/slow-limited")
    @rate_limit(token_limit)
    def slow_limited() -> object:
        time.sleep(SLOW_SECONDS)
        return jsonify(slept=SLOW_SECONDS)

    return app
