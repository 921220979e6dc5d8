"""/api/items over HTTP on SQLite and PostgreSQL, and with the database stopped."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from database.sql import db, db_create_all, extension
from database.sql.dbtype import DBType
from database.sql.models import Item
from tests.support.services import free_port
from tests.support.sql import created_database, plain

Headers = dict[str, str]


@pytest.fixture(scope="module", params=[DBType.SQLITE, DBType.POSTGRESQL], ids=str)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One fresh database per module and server, dropped at the end."""
    with created_database(request.param, str(tmp_path_factory.mktemp("items"))) as url:
        yield plain(url)


@pytest.fixture
def items_app(make_app: Callable[..., Flask], database_url: str) -> Iterator[Flask]:
    """The app on the test database, tables created and emptied."""
    app = make_app(DATABASE_URL=database_url, RATELIMIT_ENABLED=False)
    with app.app_context():
        db_create_all()
        Item.query.delete()
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(items_app: Flask) -> FlaskClient:
    """A client of the items app."""
    return items_app.test_client()


@pytest.fixture
def headers(client: FlaskClient, auth_headers: Callable[[FlaskClient], Headers]) -> Headers:
    """A valid Authorization header for ``client``."""
    return auth_headers(client)


def create(client: FlaskClient, headers: Headers, **body: object) -> dict[str, object]:
    """POST an item and return it (asserting 201)."""
    response = client.post("/api/items", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    item: dict[str, object] = response.get_json()
    return item


def assert_error(response: object, status: int) -> dict[str, object]:
    """The standard error body with that status."""
    assert response.status_code == status, response.get_json()  # type: ignore[attr-defined]
    body: dict[str, object] = response.get_json()  # type: ignore[attr-defined]
    assert body["error"] == status and body["success"] is False and body["message"]
    return body


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/items"), ("POST", "/api/items"), ("GET", "/api/items/1"),
     ("PATCH", "/api/items/1"), ("DELETE", "/api/items/1")],
)  # fmt: skip
def test_every_route_needs_a_token(client: FlaskClient, method: str, path: str) -> None:
    assert_error(client.open(path, method=method, json={"name": "x"}), 401)


def test_create_get_update_delete(client: FlaskClient, headers: Headers) -> None:
    response = client.post(
        "/api/items", json={"name": " pen ", "description": "blue"}, headers=headers
    )
    assert response.status_code == 201
    item = response.get_json()
    assert (item["name"], item["description"]) == ("pen", "blue")
    assert set(item) == {"id", "name", "description", "created_at", "updated_at"}
    assert item["created_at"].endswith("Z")  # UTC, with its zone
    assert response.headers["Location"] == f"/api/items/{item['id']}"

    assert client.get(f"/api/items/{item['id']}", headers=headers).get_json() == item

    response = client.patch(f"/api/items/{item['id']}", json={"description": None}, headers=headers)
    assert response.status_code == 200
    changed = response.get_json()
    assert (changed["name"], changed["description"]) == ("pen", None)
    assert changed["updated_at"] >= item["updated_at"]

    response = client.delete(f"/api/items/{item['id']}", headers=headers)
    assert response.status_code == 204 and response.data == b""
    assert_error(client.get(f"/api/items/{item['id']}", headers=headers), 404)


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"name": "n"}), ("DELETE", None)]
)
def test_unknown_id_is_404(
    client: FlaskClient, headers: Headers, method: str, body: object
) -> None:
    body_json = assert_error(
        client.open("/api/items/999999", method=method, json=body, headers=headers), 404
    )
    assert "999999" in str(body_json["message"])


def test_etag_304_and_if_match_412(client: FlaskClient, headers: Headers) -> None:
    item = create(client, headers, name="lamp")
    path = f"/api/items/{item['id']}"
    read = client.get(path, headers=headers)
    etag = read.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    unchanged = client.get(path, headers={**headers, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b""
    listing = client.get("/api/items", headers=headers)
    assert (
        client.get(
            "/api/items", headers={**headers, "If-None-Match": listing.headers["ETag"]}
        ).status_code
        == 304
    )

    changed = client.patch(path, json={"description": "new"}, headers={**headers, "If-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert client.get(path, headers={**headers, "If-None-Match": etag}).status_code == 200
    # A client still holding the first version may neither change nor delete the item.
    stale = {**headers, "If-Match": etag}
    body = assert_error(client.patch(path, json={"description": "mine"}, headers=stale), 412)
    assert "GET it again" in str(body["message"])
    assert_error(client.delete(path, headers=stale), 412)
    assert client.get(path, headers=headers).get_json()["description"] == "new"
    current = {**headers, "If-Match": changed.headers["ETag"]}
    assert client.delete(path, headers=current).status_code == 204


def test_duplicate_name_is_409_on_create_and_update(client: FlaskClient, headers: Headers) -> None:
    create(client, headers, name="pen")
    other = create(client, headers, name="cup")
    body = assert_error(client.post("/api/items", json={"name": "pen"}, headers=headers), 409)
    assert body["message"] == "This name is already taken by another item; choose another name."
    assert_error(
        client.patch(f"/api/items/{other['id']}", json={"name": "pen"}, headers=headers), 409
    )
    # Nothing changed, and the app keeps working after the rolled-back writes.
    names = [i["name"] for i in client.get("/api/items", headers=headers).get_json()["items"]]
    assert names == ["pen", "cup"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "x" * 81}, {"name"}),
        ({"name": 5}, {"name"}),
        ({"name": "ok", "description": "d" * 501}, {"description"}),
        ({"name": "ok", "colour": "red"}, {"colour"}),
    ],
)
def test_invalid_create_body_is_422_per_field(
    client: FlaskClient, headers: Headers, body: dict[str, object], fields: set[str]
) -> None:
    response = assert_error(client.post("/api/items", json=body, headers=headers), 422)
    assert {error["field"] for error in response["errors"]} == fields  # type: ignore[attr-defined]


@pytest.mark.parametrize("body", [{}, {"name": None}, {"name": ""}, {"id": 3}])
def test_invalid_update_body_is_422(client: FlaskClient, headers: Headers, body: object) -> None:
    item = create(client, headers, name="pen")
    response = assert_error(
        client.patch(f"/api/items/{item['id']}", json=body, headers=headers), 422
    )
    assert response["errors"]


def test_list_pages_through_items(client: FlaskClient, headers: Headers) -> None:
    for name in ("a", "b", "c"):
        create(client, headers, name=name)

    def page(query: str) -> dict[str, object]:
        response = client.get(f"/api/items?{query}", headers=headers)
        assert response.status_code == 200
        body: dict[str, object] = response.get_json()
        return body

    first = page("per_page=2")
    assert [i["name"] for i in first["items"]] == ["a", "b"]  # type: ignore[attr-defined]
    assert (first["page"], first["per_page"], first["total"]) == (1, 2, 3)
    assert [i["name"] for i in page("page=2&per_page=2")["items"]] == ["c"]  # type: ignore[attr-defined]
    beyond = page("page=5&per_page=2")
    assert (beyond["items"], beyond["total"]) == ([], 3)
    assert page("")["per_page"] == 20


@pytest.mark.parametrize(
    ("query", "field"),
    [("page=0", "page"), ("per_page=0", "per_page"), ("per_page=101", "per_page"),
     ("page=abc", "page"), ("sort=name", "sort")],
)  # fmt: skip
def test_bad_page_query_is_422(
    client: FlaskClient, headers: Headers, query: str, field: str
) -> None:
    body = assert_error(client.get(f"/api/items?{query}", headers=headers), 422)
    assert [error["field"] for error in body["errors"]] == [field]  # type: ignore[attr-defined]


@pytest.mark.parametrize("scheme", ["postgresql+psycopg2://postgres", "mysql+pymysql://root"])
def test_stopped_database_gives_503_quickly(
    make_app: Callable[..., Flask],
    auth_headers: Callable[[FlaskClient], Headers],
    scheme: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = "s3cret-db-pw"
    user, _, rest = scheme.partition("://")
    url = f"{user}://{rest}:{password}@127.0.0.1:{free_port()}/app"
    app = make_app(DATABASE_URL=url, RATELIMIT_ENABLED=False)
    client = app.test_client()
    headers = auth_headers(client)
    for method, path in [("GET", "/api/items"), ("POST", "/api/items"), ("GET", "/api/items/1")]:
        started = time.monotonic()
        response = client.open(path, method=method, json={"name": "pen"}, headers=headers)
        assert time.monotonic() - started < 5
        body = assert_error(response, 503)
        assert body["message"] == "The database is unavailable right now; try again in a moment."
    health = client.get("/healthcheck")
    assert health.status_code == 503
    assert {r["name"]: r["status"] for r in health.get_json()["results"]}["sql"] == "failure"
    assert password not in caplog.text


def test_development_creates_tables_on_first_request(
    make_app: Callable[..., Flask], auth_headers: Callable[[FlaskClient], Headers], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    client = make_app(DATABASE_URL=url, SQL_CREATE_TABLES=True).test_client()
    response = client.get("/api/items", headers=auth_headers(client))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["total"] == 0


def test_a_worker_that_loses_the_table_creation_race_still_answers(
    make_app: Callable[..., Flask],
    auth_headers: Callable[[FlaskClient], Headers],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two gunicorn workers on a fresh database: the other one's CREATE TABLE lands between
    # this one's check and its own, which fails with "table ... already exists".
    real = extension.db_create_all
    calls: list[int] = []

    def racing() -> None:
        calls.append(1)
        real()
        if len(calls) == 1:
            raise sa.exc.OperationalError("CREATE TABLE items", {}, Exception("already exists"))

    monkeypatch.setattr(extension, "db_create_all", racing)
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    client = make_app(DATABASE_URL=url, SQL_CREATE_TABLES=True).test_client()
    response = client.get("/api/items", headers=auth_headers(client))
    assert response.status_code == 200, response.get_json()
    assert len(calls) == 2


def test_tables_are_not_created_unless_asked(
    make_app: Callable[..., Flask], auth_headers: Callable[[FlaskClient], Headers], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    client = make_app(DATABASE_URL=url).test_client()  # TESTING: not created by default
    assert_error(client.get("/api/items", headers=auth_headers(client)), 500)


def test_mysql_server_that_never_answers_gives_503(
    make_app: Callable[..., Flask], auth_headers: Callable[[FlaskClient], Headers]
) -> None:
    # A listening socket that accepts connections and never says a word: a stopped MariaDB
    # process or a proxy with nothing behind it. Without a read timeout PyMySQL waits forever.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        app = make_app(
            DATABASE_URL=f"mysql+pymysql://root@127.0.0.1:{port}/app",
            SQL_QUERY_TIMEOUT_SECONDS=1,
            RATELIMIT_ENABLED=False,
        )
        client = app.test_client()
        headers = auth_headers(client)
        started = time.monotonic()
        response = client.get("/api/items", headers=headers)
        assert time.monotonic() - started < 5
        assert_error(response, 503)
