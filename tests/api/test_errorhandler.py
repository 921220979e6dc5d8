"""Every error, Flask's and the app's, comes out as the standard JSON body with its status."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from flask import Flask, abort, jsonify, request
from flask.testing import FlaskClient
from pydantic import BaseModel, Field

from api.errorhandler import INTERNAL_ERROR_MESSAGE
from api.validation import PageQuery, parse_body, parse_query
from database.errors import ConfigurationError, ConflictError, NotFoundError, UnavailableError
from tests.support.services import free_port


class NewThing(BaseModel):
    name: str = Field(min_length=1, max_length=10)
    size: int


def assert_error(response, status: int) -> dict:
    """The standard body, sent with that status, as JSON."""
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == status
    assert body["success"] is False
    assert isinstance(body["message"], str) and body["message"].endswith((".", "?", "!"))
    assert len(body["request_id"]) >= 8
    assert response.headers["X-Request-ID"] == body["request_id"]
    return body


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    app = make_app(MAX_CONTENT_LENGTH=100)

    @app.get("/t/abort/<int:status>")
    def do_abort(status: int):
        abort(status)

    @app.post("/t/echo")
    def echo():
        return jsonify(request.get_json())

    @app.get("/t/crash")
    def crash():
        raise KeyError("postgresql://admin:hunter2@db/prod")

    errors = {
        "notfound": NotFoundError("No thing has id 3."),
        "conflict": ConflictError("A thing named 'x' already exists."),
        "unavailable": UnavailableError("The database is unavailable; try again shortly."),
        "unconfigured": ConfigurationError("MongoDB is not configured; set MONGO_URI."),
        "permission": PermissionError("Only the note's author may archive it."),
        "permission-bare": PermissionError(),
        "not-implemented": NotImplementedError("Exports are not implemented yet."),
        "os-permission": PermissionError(13, "Permission denied", "/srv/app/secret.pem"),
    }

    @app.get("/t/domain/<kind>")
    def domain(kind: str):
        raise errors[kind]

    @app.post("/t/things")
    def things():
        thing = parse_body(NewThing)
        return jsonify(thing.model_dump()), 201

    @app.get("/t/pages")
    def pages():
        return jsonify(parse_query(PageQuery).model_dump())

    return app


def test_unknown_route_is_404(client: FlaskClient) -> None:
    assert_error(client.get("/no/such/route"), 404)


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.put("/")
    assert_error(response, 405)
    assert "GET" in response.headers["Allow"]


def test_large_body_is_413(client: FlaskClient) -> None:
    assert_error(client.post("/t/echo", json={"data": "x" * 500}), 413)


def test_bad_json_is_400(client: FlaskClient) -> None:
    body = assert_error(
        client.post("/t/echo", data="{not json", content_type="application/json"), 400
    )
    assert body["message"] == "The request body is not valid JSON."


def test_body_not_sent_as_json_is_415(client: FlaskClient) -> None:
    assert_error(client.post("/t/echo", data="a=b"), 415)


@pytest.mark.parametrize(
    "status", [400, 401, 403, 404, 405, 409, 410, 418, 422, 429, 451, 499, 500, 502, 503, 599]
)
def test_abort_any_status(client: FlaskClient, status: int) -> None:
    response = client.get(f"/t/abort/{status}")
    assert_error(response, status)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unhandled_exception_is_a_bare_500_and_logged(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="api.errorhandler"):
        response = client.get("/t/crash", headers={"X-Request-ID": "trace-me-123"})
    body = assert_error(response, 500)
    assert body["message"] == INTERNAL_ERROR_MESSAGE
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "KeyError" not in text and "Traceback" not in text
    logged = [r for r in caplog.records if "trace-me-123" in r.getMessage()]
    assert logged and logged[0].exc_info is not None


@pytest.mark.parametrize(
    ("kind", "status"),
    [("notfound", 404), ("conflict", 409), ("unavailable", 503), ("unconfigured", 503)],
)
def test_domain_errors_map_to_statuses(client: FlaskClient, kind: str, status: int) -> None:
    body = assert_error(client.get(f"/t/domain/{kind}"), status)
    assert body["message"].startswith(("No thing", "A thing", "The database", "MongoDB"))


@pytest.mark.parametrize(
    ("kind", "status", "message"),
    [
        ("permission", 403, "Only the note's author may archive it."),
        ("permission-bare", 403, "You do not have permission to do this."),
        ("not-implemented", 501, "Exports are not implemented yet."),
    ],
)
def test_python_refusals_map_to_403_and_501(
    client: FlaskClient, kind: str, status: int, message: str
) -> None:
    assert assert_error(client.get(f"/t/domain/{kind}"), status)["message"] == message


def test_an_operating_system_permission_error_is_a_500_that_reveals_nothing(
    client: FlaskClient,
) -> None:
    body = assert_error(client.get("/t/domain/os-permission"), 500)
    assert body["message"] == INTERNAL_ERROR_MESSAGE and "secret.pem" not in str(body)


def test_validation_errors_are_422_per_field(client: FlaskClient) -> None:
    body = assert_error(client.post("/t/things", json={"name": "", "extra": 1}), 422)
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"name", "size"}
    assert all(error["message"] for error in body["errors"])


def test_valid_body_passes(client: FlaskClient) -> None:
    response = client.post("/t/things", json={"name": "bolt", "size": 3})
    assert response.status_code == 201
    assert response.get_json() == {"name": "bolt", "size": 3}


@pytest.mark.parametrize(
    ("query", "field"), [("page=0", "page"), ("per_page=101", "per_page"), ("page=x", "page")]
)
def test_page_bounds(client: FlaskClient, query: str, field: str) -> None:
    body = assert_error(client.get(f"/t/pages?{query}"), 422)
    assert [error["field"] for error in body["errors"]] == [field]


def test_page_defaults(client: FlaskClient) -> None:
    assert client.get("/t/pages").get_json() == {"page": 1, "per_page": 20}


def test_request_id_is_echoed_or_replaced(client: FlaskClient) -> None:
    assert client.get("/", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    replaced = client.get("/", headers={"X-Request-ID": "bad id\x7f" + "x" * 200})
    assert replaced.headers["X-Request-ID"] != "bad id"
    assert len(replaced.headers["X-Request-ID"]) == 32


def test_session_store_down_is_503(make_app: Callable[..., Flask]) -> None:
    app = make_app(SESSION_TYPE="redis", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = app.test_client()
    body = assert_error(client.get("/api/public"), 503)
    assert body["message"] == "The session store is unavailable; try again shortly."
    client.set_cookie("session", "x" * 43)
    assert_error(client.get("/"), 503)
