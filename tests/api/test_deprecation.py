"""deprecated_route: Deprecation (RFC 9745), Sunset (RFC 8594) and the successor Link."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask, abort, jsonify

from api.deprecation import deprecated_route


def test_headers_on_success_and_on_errors(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @app.get("/api/v1/things/<int:thing_id>")
    @deprecated_route(
        superseded_by="GET /api/v2/things",
        deprecated=datetime(2026, 1, 1, tzinfo=UTC),
        sunset=datetime(2027, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))),
    )
    def old_thing(thing_id: int) -> object:
        if thing_id == 0:
            abort(404)
        return jsonify(id=thing_id)

    client = app.test_client()
    for path, status in (("/api/v1/things/3", 200), ("/api/v1/things/0", 404)):
        response = client.get(path)
        assert response.status_code == status
        assert (
            response.headers["Deprecation"]
            == f"@{int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())}"
        )
        assert response.headers["Sunset"] == "Fri, 01 Jan 2027 00:00:00 GMT"
        assert response.headers["Link"] == '</api/v2/things>; rel="successor-version"'
    assert "Deprecation" not in client.get("/").headers


def test_defaults_and_naive_dates(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @app.get("/old")
    @deprecated_route(sunset=datetime(2030, 6, 1))
    def old() -> object:
        return jsonify(ok=True)

    headers = app.test_client().get("/old").headers
    assert headers["Deprecation"] == "@1"  # a date in the past: deprecated already
    assert headers["Sunset"] == "Sat, 01 Jun 2030 00:00:00 GMT"
    assert "Link" not in headers


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"superseded_by": "the new one"}, "not a path or URL"),
        ({"superseded_by": "GET /x>; rel=evil"}, "not a path or URL"),
        ({"deprecated": datetime(2030, 1, 1), "sunset": datetime(2029, 1, 1)}, "sunset is before"),
    ],
)
def test_bad_arguments_are_refused_when_declared(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        deprecated_route(**options)
