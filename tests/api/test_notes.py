"""The notes resource over HTTP against a real wire-protocol server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo import MongoClient

from tests.support.mongo_server import mongo_uri, unique_database_name
from tests.support.services import free_port

Headers = dict[str, str]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """One database for this module, dropped at the end."""
    name = unique_database_name()
    yield name
    with MongoClient(mongo_uri(), serverSelectionTimeoutMS=3000) as client:
        client.drop_database(name)


@pytest.fixture
def app(make_app: Callable[..., Flask], database: str) -> Flask:
    return make_app(MONGO_URI=mongo_uri(), MONGO_DB=database, RATELIMIT_ENABLED=False)


@pytest.fixture
def headers(client: FlaskClient, auth_headers: Callable[[FlaskClient], Headers]) -> Headers:
    return auth_headers(client)


def create(client: FlaskClient, headers: Headers, **fields: object):
    return client.post("/api/notes", json={"title": "t", **fields}, headers=headers)


def test_every_route_needs_a_token(client: FlaskClient) -> None:
    for method, path in [
        ("get", "/api/notes"),
        ("post", "/api/notes"),
        ("get", "/api/notes/0123456789abcdef01234567"),
        ("patch", "/api/notes/0123456789abcdef01234567"),
        ("delete", "/api/notes/0123456789abcdef01234567"),
    ]:
        assert getattr(client, method)(path).status_code == 401, (method, path)


def test_create_get_update_delete(client: FlaskClient, headers: Headers) -> None:
    created = create(
        client,
        headers,
        title="Groceries",
        body="milk",
        tags=["home"],
        attributes={"priority": 2, "done": False},
    )
    assert created.status_code == 201
    note = created.get_json()
    assert created.headers["Location"] == f"/api/notes/{note['id']}"
    assert len(note["id"]) == 24
    assert note["created_at"].endswith(("Z", "+00:00"))
    assert "owner" not in note and "_id" not in note

    fetched = client.get(f"/api/notes/{note['id']}", headers=headers)
    assert fetched.status_code == 200 and fetched.get_json() == note

    patched = client.patch(f"/api/notes/{note['id']}", json={"body": "oat milk"}, headers=headers)
    assert patched.status_code == 200
    assert patched.get_json()["body"] == "oat milk"
    assert patched.get_json()["title"] == "Groceries"

    deleted = client.delete(f"/api/notes/{note['id']}", headers=headers)
    assert deleted.status_code == 204 and deleted.data == b""
    assert client.get(f"/api/notes/{note['id']}", headers=headers).status_code == 404
    assert client.delete(f"/api/notes/{note['id']}", headers=headers).status_code == 404


def test_etag_304_and_if_match_412(client: FlaskClient, headers: Headers) -> None:
    note = create(client, headers, title="etag").get_json()
    path = f"/api/notes/{note['id']}"
    etag = client.get(path, headers=headers).headers["ETag"]
    assert client.get(path, headers={**headers, "If-None-Match": etag}).status_code == 304
    changed = client.patch(path, json={"body": "v2"}, headers={**headers, "If-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    stale = {**headers, "If-Match": etag}
    assert client.patch(path, json={"body": "v3"}, headers=stale).status_code == 412
    assert client.delete(path, headers=stale).status_code == 412
    assert client.get(path, headers=headers).get_json()["body"] == "v2"
    fresh = {**headers, "If-Match": changed.headers["ETag"]}
    assert client.delete(path, headers=fresh).status_code == 204


@pytest.mark.parametrize("note_id", ["nope", "0123456789abcdef01234567", '{"$ne":null}'])
def test_unknown_or_malformed_ids_are_404(
    client: FlaskClient, headers: Headers, note_id: str
) -> None:
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(
            f"/api/notes/{note_id}", json={"body": "x"}, headers=headers
        )
        assert response.status_code == 404, method
        assert response.get_json()["error"] == 404


def test_notes_of_another_session_are_invisible(
    app: Flask, client: FlaskClient, headers: Headers, auth_headers
) -> None:
    note = create(client, headers, title="private").get_json()
    other = app.test_client()
    other_headers = auth_headers(other)
    assert other.get(f"/api/notes/{note['id']}", headers=other_headers).status_code == 404
    assert other.get("/api/notes", headers=other_headers).get_json()["total"] == 0


def test_same_title_twice_is_409(client: FlaskClient, headers: Headers) -> None:
    assert create(client, headers, title="dup").status_code == 201
    second = create(client, headers, title="dup")
    assert second.status_code == 409
    assert "title" in second.get_json()["message"]
    other = create(client, headers, title="other").get_json()
    clash = client.patch(f"/api/notes/{other['id']}", json={"title": "dup"}, headers=headers)
    assert clash.status_code == 409


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"title"}),
        ({"title": ""}, {"title"}),
        ({"title": "x" * 201}, {"title"}),
        ({"title": "x", "owner": "someone"}, {"owner"}),
        ({"title": "x", "tags": "notalist"}, {"tags"}),
        ({"title": "x", "attributes": {"$where": "1"}}, {"attributes"}),
        ({"title": "x", "attributes": {"a.b": 1}}, {"attributes"}),
        ({"title": "x", "attributes": {"nested": {"$gt": ""}}}, {"attributes.nested"}),
        ({"title": {"$ne": None}}, {"title"}),
    ],
)
def test_invalid_bodies_are_422_per_field(
    client: FlaskClient, headers: Headers, body: dict, fields: set[str]
) -> None:
    response = client.post("/api/notes", json=body, headers=headers)
    assert response.status_code == 422
    got = {error["field"] for error in response.get_json()["errors"]}
    assert fields <= got or any(g.startswith(tuple(fields)) for g in got), got


@pytest.mark.parametrize("body", [{}, {"title": None}, {"attributes": {"$set": {"owner": "x"}}}])
def test_invalid_updates_are_422(client: FlaskClient, headers: Headers, body: dict) -> None:
    note = create(client, headers, title="to-update").get_json()
    response = client.patch(f"/api/notes/{note['id']}", json=body, headers=headers)
    assert response.status_code == 422


def test_list_pagination_and_filter(client: FlaskClient, headers: Headers) -> None:
    for n in range(5):
        create(client, headers, title=f"n{n}", tags=["even" if n % 2 == 0 else "odd"])
    first = client.get("/api/notes?per_page=2", headers=headers).get_json()
    assert (first["page"], first["per_page"], first["total"]) == (1, 2, 5)
    assert [note["title"] for note in first["items"]] == ["n4", "n3"]  # newest first
    last = client.get("/api/notes?per_page=2&page=3", headers=headers).get_json()
    assert [note["title"] for note in last["items"]] == ["n0"]
    beyond = client.get("/api/notes?per_page=2&page=9", headers=headers).get_json()
    assert beyond["items"] == [] and beyond["total"] == 5
    query = json.dumps({"tags": "odd"})
    odd = client.get("/api/notes", query_string={"filter": query}, headers=headers).get_json()
    assert sorted(note["title"] for note in odd["items"]) == ["n1", "n3"]


@pytest.mark.parametrize(
    "query",
    [
        {"page": "0"},
        {"per_page": "101"},
        {"filter": json.dumps({"title": {"$ne": None}})},
        {"filter": json.dumps({"$where": "sleep(1000)"})},
        {"filter": json.dumps({"owner": "someone-else"})},
        {"filter": "not json"},
        {"filter": "[1, 2]"},
    ],
)
def test_bad_list_queries_are_422(client: FlaskClient, headers: Headers, query: dict) -> None:
    response = client.get("/api/notes", query_string=query, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_not_configured_is_503_with_the_fix(make_app: Callable[..., Flask], auth_headers) -> None:
    client = make_app(MONGO_URI="").test_client()
    response = client.get("/api/notes", headers=auth_headers(client))
    assert response.status_code == 503
    assert "MONGO_URI" in response.get_json()["message"]
    assert "make mongo-dev" in response.get_json()["message"]


def test_unreachable_server_is_503_quickly(make_app: Callable[..., Flask], auth_headers) -> None:
    app = make_app(
        MONGO_URI=f"mongodb://admin:hunter2@127.0.0.1:{free_port()}/app", MONGO_TIMEOUT_MS=500
    )
    client = app.test_client()
    headers = auth_headers(client)
    started = time.monotonic()
    response = client.get("/api/notes", headers=headers)
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert "hunter2" not in response.get_data(as_text=True)
    health = client.get("/healthcheck")
    assert health.status_code == 503
    assert "mongodb" in health.get_data(as_text=True)
    assert "hunter2" not in health.get_data(as_text=True)
