"""Server-side sessions: written when changed, left alone when not, never the client's id."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask, jsonify, session
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from api.sessions import KEY_PREFIX, cookie_value
from tests.conftest import get_token

# Far below SESSION_LIFETIME_SECONDS (a day): a write would reset the key's TTL to a day.
SHORT_TTL = 1000


@pytest.fixture
def redis_app(make_app: Callable[..., Flask], redis_url: str) -> Iterator[Flask]:
    """The app on the Redis store, with a view that changes the session."""
    app = make_app(SESSION_TYPE="redis", REDIS_URL=redis_url)

    @app.post("/t/session/<value>")
    def remember(value: str) -> object:
        session["note"] = value
        return jsonify(ok=True)

    yield app
    app.extensions["session_cache"].close()


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session store."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def session_key(client: FlaskClient) -> str:
    """The store key of the client's session."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    return KEY_PREFIX + cookie.value


def test_an_unchanged_session_is_not_written(redis_app: Flask, store: redis.Redis) -> None:
    client = redis_app.test_client()
    token = get_token(client)
    key = session_key(client)
    store.expire(key, SHORT_TTL)
    response = client.get("/api/restricted", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    # Not written: the TTL still counts down from SHORT_TTL; no cookie is sent again.
    assert 0 < store.ttl(key) <= SHORT_TTL
    assert "Set-Cookie" not in response.headers
    # The answer depends on the cookie, so shared caches must key on it.
    assert response.headers["Vary"] == "Cookie"


def test_a_changed_session_is_written(redis_app: Flask, store: redis.Redis) -> None:
    client = redis_app.test_client()
    token = get_token(client)
    key = session_key(client)
    store.expire(key, SHORT_TTL)
    assert client.post("/t/session/hello").status_code == 200
    assert store.ttl(key) > SHORT_TTL
    assert b"hello" in store.get(key)
    # The token still works: the write kept the session's uid.
    response = client.get("/api/restricted", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_logout_deletes_the_stored_session(redis_app: Flask, store: redis.Redis) -> None:
    client = redis_app.test_client()
    get_token(client)
    key = session_key(client)
    response = client.delete("/api/session")
    assert response.status_code == 200
    assert store.exists(key) == 0
    assert "session=;" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("store_type", ["filesystem", "redis"])
def test_anonymous_requests_store_nothing_and_set_no_cookie(
    make_app: Callable[..., Flask], redis_url: str, store_type: str
) -> None:
    app = make_app(SESSION_TYPE=store_type, REDIS_URL=redis_url)
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers
    if store_type == "redis":
        app.extensions["session_cache"].close()


@pytest.mark.parametrize("store_type", ["filesystem", "redis"])
def test_an_unknown_session_id_is_never_adopted(
    make_app: Callable[..., Flask], redis_url: str, store_type: str
) -> None:
    app = make_app(SESSION_TYPE=store_type, REDIS_URL=redis_url)
    client = app.test_client()
    planted = f"planted-{uuid.uuid4().hex}"  # unique: no stored session has this id
    client.set_cookie("session", planted)
    get_token(client)
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.value != planted
    assert len(cookie.value) >= 40  # a fresh 32-byte id
    if store_type == "redis":
        app.extensions["session_cache"].close()


@pytest.mark.parametrize(
    "header",
    [
        "theme=dark; session={sid}",
        'session={sid}; other="quoted; value"',
        "session={sid}; session=second-one-is-ignored",
        "  session = {sid} ;lang=en",
    ],
)
def test_the_session_cookie_is_found_among_others(redis_app: Flask, header: str) -> None:
    client = redis_app.test_client()
    token = get_token(client)
    sid = session_key(client).removeprefix(KEY_PREFIX)
    other = redis_app.test_client(use_cookies=False)  # only the raw header below
    response = other.get(
        "/api/restricted",
        headers={"Authorization": f"Bearer {token}", "Cookie": header.format(sid=sid)},
    )
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    "header",
    [
        "session=abc", "session=", "session=a=b", 'session="abc"', "session=abc ",
        " session=abc", "session =abc", "session=abc;x=1", "x=1; session=abc", "sessionx=1",
        "session", "session=abc\\", "session=ab\tc", "session=\xe9", "session=\xc3\xa9",
        "session=abc; session=def", "SESSION=abc", 'session="a\\"b"', 'session="\\351"',
        "a=\xe9; session=x", "",
    ],
)  # fmt: skip
def test_the_cookie_is_read_as_request_cookies_reads_it(header: str) -> None:
    environ = EnvironBuilder().get_environ()
    environ["HTTP_COOKIE"] = header  # as a WSGI server hands it over: latin-1 text
    assert cookie_value(header, "session") == Request(environ).cookies.get("session")


def test_a_cookie_that_is_not_utf8_gets_a_new_session(redis_app: Flask) -> None:
    client = redis_app.test_client(use_cookies=False)
    response = client.get("/api/public", headers={"Cookie": "theme=\xe9; session=\xe9"})
    assert response.status_code == 200
    assert "session=" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("session_type", ["filesystem", "redis"])
def test_sessions_are_built_as_flask_session_builds_them(
    make_app: Callable[..., Flask], redis_url: str, session_type: str
) -> None:
    # The lean session class sets in one call what Flask-Session's constructor sets: if a
    # Flask-Session release adds state there, this fails instead of the sessions going wrong.
    app = make_app(SESSION_TYPE=session_type, REDIS_URL=redis_url)
    lean = app.session_interface.session_class
    library = lean.__mro__[2]  # Lazy<name> -> LazySid -> Flask-Session's own class
    assert library.__module__.startswith("flask_session")
    for args, kwargs in (((), {}), ((), {"permanent": True}), (({"uid": "u1"},), {"sid": "s1"})):
        ours, theirs = lean(*args, **kwargs), library(*args, **kwargs)
        assert (
            (ours.modified, ours.accessed) == (theirs.modified, theirs.accessed) == (False, False)
        )
        assert dict(ours) == dict(theirs)
        assert ours.permanent == theirs.permanent  # a read: both are now accessed
        assert (ours.modified, ours.accessed) == (theirs.modified, theirs.accessed) == (False, True)
        assert {*vars(ours)} - {"_sid"} == {*vars(theirs)} - {"sid"}
        if "sid" in kwargs:
            assert ours.sid == theirs.sid
        ours["k"], theirs["k"] = 1, 1
        assert (ours.modified, ours.accessed) == (theirs.modified, theirs.accessed) == (True, True)
    if session_type == "redis":
        app.extensions["session_cache"].close()
