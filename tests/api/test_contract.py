"""Contract fuzzing: schemathesis drives every operation of /openapi.json against the app.

Each generated request carries the credential the operation accepts (an API key holding every
scope, a session token with its cookie, or an administrator's access token); each response
must not be a server error and must match the document (status, content type, schema).
Bounded to a few seconds per operation.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from api.routes.docs import canonical_document
from auth.apikeys import api_keys
from database.sql import db_create_all
from tests.conftest import TEST_SECRET_KEY
from tests.support.mongo_server import mongo_uri, unique_database_name
from tests.support.users import admin_headers

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EVERY_SCOPE = ["principal:read", "items:read", "items:write", "deploy"]


@pytest.fixture(scope="module")
def contract_app() -> Iterator[Flask]:
    """The app on a fresh SQLite file and Mongo database, rate limits off."""
    with tempfile.TemporaryDirectory() as instance:
        app = create_app(
            {
                "TESTING": True,
                "SECRET_KEY": TEST_SECRET_KEY,
                "INSTANCE_PATH": instance,
                "SESSION_TYPE": "filesystem",
                "RATELIMIT_ENABLED": "0",
                "MONGO_URI": mongo_uri(),
                "MONGO_DB": unique_database_name(),
            }
        )
        with app.app_context():
            db_create_all()
        yield app


@pytest.fixture(scope="module")
def credentials(contract_app: Flask) -> dict[str, dict[str, str]]:
    """Headers for each kind of credential the document declares."""
    with contract_app.app_context():
        key = api_keys().create("fuzzer", EVERY_SCOPE, service="contract").secret
    client = contract_app.test_client()
    token = client.get("/api/public").get_json()["token"]
    cookie = client.get_cookie("session")
    assert cookie is not None
    return {
        "apiKey": {"X-Api-Key": key},
        "sessionToken": {"Authorization": f"Bearer {token}", "Cookie": f"session={cookie.value}"},
        "userToken": admin_headers(contract_app),
    }


# The committed document's operations (schemathesis's lazy fixture loader does not work with
# pytest 9); each case is sent to the module's app in-process.
schema = schemathesis.openapi.from_dict(canonical_document())


_turns = itertools.count()


def headers_for(case: Any, credentials: dict[str, dict[str, str]]) -> dict[str, str]:
    """A credential the operation accepts, taking each accepted kind in turn, so every kind
    (API key, user token, session token) is fuzzed on every operation that takes it."""
    options = case.operation.definition.raw.get("security") or []
    offered = [name for name in ("apiKey", "userToken", "sessionToken")
               if any(name in option for option in options)]  # fmt: skip
    if not offered:
        return {}
    return credentials[offered[next(_turns) % len(offered)]]


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_honours_the_document(
    case: Any, contract_app: Flask, credentials: dict[str, dict[str, str]]
) -> None:
    headers = headers_for(case, credentials)
    if case.operation.path == "/api/auth/logout":
        # A login of its own: ending the shared one would starve the other cases.
        headers = admin_headers(contract_app)
    case.call_and_validate(headers=headers, checks=CHECKS, app=contract_app)
