"""The public names of DESIGN.md: users type them, so a rename must fail a test.

Signatures are pinned whole (parameter names, order, kinds and defaults), without the
annotations, which may be refined freely.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from api import create_app
from api.errorhandler import set_handler
from auth.auth import AuthError, create_enc_token, decrypt, requires_auth
from database.mongodb import MongoHelper, setup_mongodb
from database.sql import db_create_all, db_drop_all, setup_sql_db
from database.sql.dbtype import DBType
from database.sql.models import ModelBase, Test

MONGO = MongoHelper


def shape(function: Callable[..., object]) -> str:
    """The signature as written, without annotations."""
    signature = inspect.signature(function)
    bare = [
        parameter.replace(annotation=parameter.empty) for parameter in signature.parameters.values()
    ]
    return str(signature.replace(parameters=bare, return_annotation=signature.empty))


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (create_app, "(test_config=None, test_database=None)"),
        (set_handler, "(app)"),
        (requires_auth, "(permission='', *, roles=None)"),
        (create_enc_token, "(permissions=())"),
        (decrypt, "(token)"),
        (AuthError.__init__, "(self, error, status_code=401)"),
        (db_create_all, "()"),
        (db_drop_all, "(testing=False, conn=None)"),
        (
            setup_sql_db,
            "(app, dbtype=<DBType.SQLITE: 'sqlite'>, username=None, password=None, host=None, "
            "database_name=None, port=None, **options)",
        ),
        (ModelBase.insert, "(self)"),
        (ModelBase.update, "(self)"),
        (ModelBase.delete, "(self)"),
        (
            setup_mongodb,
            "(app, username=None, password=None, host=None, database_name=None, port=None, "
            "uri=None, **client_options)",
        ),
        (MONGO.gettable, "(self, table_name, db_name=None)"),
        (MONGO.insert_row, "(self, table_name, row, db_name=None)"),
        (MONGO.bulk_insert, "(self, table_name, rows, db_name=None, ordered=True)"),
        (MONGO.findbyid, "(self, table_name, id, filter=None, db_name=None)"),
        (MONGO.findone, "(self, table_name, query=None, filter=None, db_name=None)"),
        (
            MONGO.find,
            "(self, table_name, query=None, filter=None, db_name=None, sort=None, skip=0, "
            "limit=None)",
        ),
        (MONGO.deletebyid, "(self, table_name, id, db_name=None)"),
        (MONGO.deleteone, "(self, table_name, query, db_name=None)"),
        (MONGO.deletemany, "(self, table_name, query, db_name=None)"),
        (MONGO.updatebyid, "(self, table_name, id, newval=None, db_name=None, *, values=None)"),
        (MONGO.updateone, "(self, table_name, query, newval=None, db_name=None, *, values=None)"),
        (MONGO.updatemany, "(self, table_name, query, newval=None, db_name=None, *, values=None)"),
        (MONGO.dropcoll, "(self, table_name, db_name=None)"),
    ],
    ids=lambda value: getattr(value, "__qualname__", "") if callable(value) else "",
)
def test_signature(function: Callable[..., object], expected: str) -> None:
    assert shape(function) == expected


def test_auth_error_keeps_its_parts() -> None:
    error = AuthError({"code": "x", "description": "y"}, 401)
    assert (error.error, error.status_code) == ({"code": "x", "description": "y"}, 401)


def test_sql_types_and_models() -> None:
    assert [member.name for member in DBType] == ["POSTGRESQL", "MYSQL", "MSSQL", "SQLITE"]
    assert issubclass(Test, ModelBase)
    assert list(Test.__table__.columns.keys()) == ["id", "title"]
