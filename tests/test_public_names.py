"""The public names of DESIGN.md: users type them, so a rename must fail a test."""

from __future__ import annotations

import inspect

import pytest

from api import create_app
from api.errorhandler import set_handler
from auth.auth import AuthError, create_enc_token, decrypt, requires_auth
from database.mongodb import MongoHelper, setup_mongodb
from database.sql import db_create_all, db_drop_all, setup_sql_db
from database.sql.dbtype import DBType
from database.sql.models import ModelBase, Test


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_app_factory_and_error_handler() -> None:
    assert parameters(create_app) == ["test_config", "test_database"]
    assert parameters(set_handler) == ["app"]


def test_auth_names() -> None:
    assert parameters(requires_auth) == ["permission"]
    assert inspect.signature(requires_auth).parameters["permission"].default == ""
    assert parameters(decrypt) == ["token"]
    assert callable(create_enc_token)
    error = AuthError({"code": "x", "description": "y"}, 401)
    assert (error.error, error.status_code) == ({"code": "x", "description": "y"}, 401)


def test_sql_names() -> None:
    assert parameters(setup_sql_db)[:7] == [
        "app", "dbtype", "username", "password", "host", "database_name", "port",
    ]  # fmt: skip
    assert parameters(db_drop_all) == ["testing", "conn"]
    assert parameters(db_create_all) == []
    assert {member.name for member in DBType} == {"POSTGRESQL", "MYSQL", "MSSQL", "SQLITE"}
    assert all(hasattr(ModelBase, name) for name in ("insert", "update", "delete"))
    assert issubclass(Test, ModelBase)


def test_mongo_names() -> None:
    assert parameters(setup_mongodb)[:7] == [
        "app", "username", "password", "host", "database_name", "port", "uri",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "reads"),
    [
        ("insert_row", False), ("bulk_insert", False), ("findbyid", True), ("findone", True),
        ("find", True), ("deletebyid", False), ("deleteone", False), ("deletemany", False),
        ("updatebyid", False), ("updateone", False), ("updatemany", False),
        ("dropcoll", False), ("gettable", False),
    ],
)  # fmt: skip
def test_mongo_helper_methods(method: str, reads: bool) -> None:
    names = parameters(getattr(MongoHelper, method))
    assert names[:2] == ["self", "table_name"] and "db_name" in names
    assert ("filter" in names) is reads
