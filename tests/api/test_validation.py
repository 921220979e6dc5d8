"""@operation's JSON bodies: one parse, and the answers of request.get_json() for non-JSON."""

from __future__ import annotations

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from pydantic import BaseModel, ConfigDict

from api.validation import Operation, operation

NOT_JSON = "The request body is not valid JSON."
NOT_SENT_AS_JSON = "Send the body as JSON with the header 'Content-Type: application/json'."


class Thing(BaseModel):
    """A body with one required text field."""

    model_config = ConfigDict(extra="forbid")

    name: str


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client of the app plus an @operation body route and a plain get_json() route."""

    @app.post("/t/things")
    @operation(responses={200: None})
    def things(body: Thing):
        return jsonify(body.model_dump())

    @app.post("/t/echo")
    def echo():
        return jsonify(request.get_json())

    return app.test_client()


def answer(client: FlaskClient, path: str, data: bytes, content_type: str | None) -> tuple:
    """(status, message) of a POST; the request id left out."""
    response = client.post(path, data=data, content_type=content_type)
    return response.status_code, response.get_json()["message"]


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        (b"{not json", "application/json", (400, NOT_JSON)),
        (b"", "application/json", (400, NOT_JSON)),
        (b'{"name": "a"} trailing', "application/json", (400, NOT_JSON)),
        (b'{"name": "\xff"}', "application/json", (400, NOT_JSON)),
        (b'{"name": "a"}', None, (415, NOT_SENT_AS_JSON)),
        (b'{"name": "a"}', "text/plain", (415, NOT_SENT_AS_JSON)),
        (b"name=a", "application/x-www-form-urlencoded", (415, NOT_SENT_AS_JSON)),
    ],
    ids=["malformed", "empty", "trailing", "bad-utf8", "no-type", "text", "form"],
)
def test_a_body_route_refuses_non_json_as_get_json_does(
    client: FlaskClient, data: bytes, content_type: str | None, expected: tuple
) -> None:
    assert answer(client, "/t/things", data, content_type) == expected
    assert answer(client, "/t/echo", data, content_type) == expected


@pytest.mark.parametrize(
    "data",
    ['{"name": "a"}'.encode("utf-16"), b"[" * 1000 + b"]" * 1000],
    ids=["utf-16", "nested-1000-deep"],
)
def test_what_the_one_parser_refuses_is_400_not_a_field_error_or_500(
    client: FlaskClient, data: bytes
) -> None:
    assert answer(client, "/t/things", data, "application/json") == (400, NOT_JSON)


@pytest.mark.parametrize(
    ("data", "field"),
    [(b"[1]", "body"), (b'{"name": 1}', "name"), (b"{}", "name")],
)
def test_json_of_the_wrong_shape_is_422_per_field(
    client: FlaskClient, data: bytes, field: str
) -> None:
    response = client.post("/t/things", data=data, content_type="application/json")
    assert response.status_code == 422
    assert [error["field"] for error in response.get_json()["errors"]] == [field]


@pytest.mark.parametrize("content_type", ["application/json", "application/vnd.api+json"])
def test_a_valid_body_reaches_the_view(client: FlaskClient, content_type: str) -> None:
    response = client.post("/t/things", data=b'{"name": "bolt"}', content_type=content_type)
    assert response.status_code == 200
    assert response.get_json() == {"name": "bolt"}


def test_an_operation_without_responses_declares_200_read_only() -> None:
    for declared in (Operation(), operation()(lambda: None).operation):  # type: ignore[attr-defined]
        assert declared.responses == {200: None}
        with pytest.raises(TypeError):
            declared.responses[201] = None


def test_declared_responses_are_a_read_only_copy() -> None:
    given: dict[int, type[BaseModel] | None] = {201: Thing}
    declared = operation(responses=given)(lambda: None).operation  # type: ignore[attr-defined]
    given[204] = None
    assert declared.responses == {201: Thing}
    with pytest.raises(TypeError):
        declared.responses[204] = None


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_get_json_of_a_body_nested_too_deep_for_the_parser_is_400_not_500(
    client: FlaskClient,
) -> None:
    assert answer(client, "/t/echo", DEEP, "application/json") == (400, NOT_JSON)


def test_silent_get_json_of_a_body_nested_too_deep_is_none(app: Flask) -> None:
    # What the authorization rules read (field_in_body_matches_jwt_claim): no body, no 500.
    with app.test_request_context("/", method="POST", data=DEEP, content_type="application/json"):
        assert request.get_json(silent=True) is None
