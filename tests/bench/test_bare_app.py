"""The benchmark's floor app answers with the headers the real app sends (bench/bare_app.py)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from bench.bare_app import RESTRICTED_HEADERS
from tests.conftest import get_token

# Headers every Flask answer has, the bare app's included, and the ones the app sends only
# with a new session (the benchmark's requests carry theirs).
COMMON = {"content-type", "content-length", "set-cookie"}
VARYING = "x-request-id"


def test_the_floor_sends_what_a_production_app_sends_to_a_session_token(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(APP_ENV="production").test_client()
    token = get_token(client)
    response = client.get("/api/restricted", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    sent = {name.lower(): value for name, value in response.headers if name.lower() not in COMMON}
    floor = {name.lower(): value for name, value in RESTRICTED_HEADERS}
    assert sent.keys() == floor.keys()
    # A request id's value changes with every request; its length does not.
    assert len(sent.pop(VARYING)) == len(floor.pop(VARYING))
    assert sent == floor
