"""setup_mongodb and URI building: escaping, schemes, settings precedence (no server needed)."""

from __future__ import annotations

from urllib.parse import unquote_plus

import pytest
from flask import Flask

from api.settings import ConfigError, load_settings
from database.errors import ConfigurationError
from database.mongodb import build_uri, setup_mongodb


def test_credentials_are_escaped() -> None:
    uri = build_uri("db.example.org", "us@er:/", "p@ss:/%?#", port=27018, database_name="app")
    assert uri.startswith("mongodb://")
    credentials, rest = uri[len("mongodb://") :].rsplit("@", 1)
    user, password = credentials.split(":")
    assert (unquote_plus(user), unquote_plus(password)) == ("us@er:/", "p@ss:/%?#")
    assert rest == "db.example.org:27018/app"


def test_srv_host_is_kept_and_refuses_a_port() -> None:
    assert build_uri("mongodb+srv://cluster0.example.net", "u", "p") == (
        "mongodb+srv://u:p@cluster0.example.net/"
    )
    with pytest.raises(ConfigurationError, match="no port"):
        build_uri("mongodb+srv://cluster0.example.net", port=27017)


def test_no_credentials() -> None:
    assert build_uri("127.0.0.1", port=27017) == "mongodb://127.0.0.1:27017/"


def make(config: dict[str, object] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    return app


def test_settings_win_over_arguments_and_name_the_database() -> None:
    app = make({"MONGO_URI": "mongodb://127.0.0.1:1/fromuri", "MONGO_DB": "fromsetting"})
    helper = setup_mongodb(app, host="elsewhere", database_name="fromcode")
    assert helper.database_name == "fromsetting"
    assert app.mongo is helper and app.extensions["mongodb"] is helper
    assert list(helper.client.topology_description.server_descriptions()) == [("127.0.0.1", 1)]
    helper.client.close()


@pytest.mark.parametrize(
    ("config", "kwargs", "expected"),
    [
        ({"MONGO_URI": "mongodb://127.0.0.1:1/fromuri"}, {}, "fromuri"),
        ({}, {"host": "127.0.0.1", "database_name": "fromcode"}, "fromcode"),
        ({}, {"uri": "mongodb://127.0.0.1:1"}, "app"),
    ],
)
def test_database_name_fallbacks(config: dict, kwargs: dict, expected: str) -> None:
    helper = setup_mongodb(make(config), **kwargs)
    assert helper.database_name == expected
    helper.client.close()


def test_nothing_configured_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="MONGO_URI"):
        setup_mongodb(make())


@pytest.mark.parametrize("uri", ["postgresql://x", "mongodb://user:secret@host:notaport/db"])
def test_bad_uri_is_refused_without_echoing_it(uri: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        setup_mongodb(make(), uri=uri)
    assert "secret" not in str(caught.value)


def test_double_registration_is_refused() -> None:
    app = make()
    helper = setup_mongodb(app, uri="mongodb://127.0.0.1:1")
    with pytest.raises(RuntimeError, match="already"):
        setup_mongodb(app, uri="mongodb://127.0.0.1:1")
    helper.client.close()


def test_settings_refuse_a_uri_of_another_kind() -> None:
    with pytest.raises(ConfigError, match="MONGO_URI"):
        load_settings({"MONGO_URI": "redis://127.0.0.1:6379"})


def test_objectid_and_datetime_serialise_in_responses() -> None:
    from datetime import UTC, datetime

    from bson import ObjectId

    app = make()
    helper = setup_mongodb(app, uri="mongodb://127.0.0.1:1")
    oid = ObjectId()
    with app.app_context():
        text = app.json.dumps({"id": oid, "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)})
    assert text == f'{{"at": "2026-01-02T03:04:05+00:00", "id": "{oid}"}}'
    helper.client.close()
