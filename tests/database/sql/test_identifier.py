"""The Identifier mixin: UUID ids, aware UTC times, and who made each change."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask, g

from auth.principal import Principal
from database.sql import db, db_create_all
from database.sql.dbtype import DBType
from database.sql.identity import User
from tests.support.sql import created_database, plain


@pytest.fixture(params=[DBType.SQLITE, DBType.POSTGRESQL, DBType.MYSQL], ids=str)
def sql_app(
    request: pytest.FixtureRequest, make_app: Callable[..., Flask], tmp_path
) -> Iterator[Flask]:
    """The app on a fresh database of each kind."""
    with created_database(request.param, str(tmp_path)) as url:
        app = make_app(DATABASE_URL=plain(url))
        with app.app_context():
            db_create_all()
        yield app
        with app.app_context():
            db.engine.dispose()


def acting_as(app: Flask, subject: str):
    """A request context whose Principal is ``subject``."""
    context = app.test_request_context("/")
    context.push()
    g.principal = Principal(kind="user", subject=subject)
    return context


def test_ids_times_and_actors(sql_app: Flask) -> None:
    with sql_app.app_context():
        made = User(username="outside", password_hash="x").insert()
        assert (made.created_by, made.modified_by) == ("system", "system")

    context = acting_as(sql_app, "admin-7")
    try:
        before = datetime.now(UTC) - timedelta(seconds=1)
        user = User(username="ann", password_hash="x").insert()
        assert uuid.UUID(user.id).version == 4
        user_id = user.id
    finally:
        context.pop()

    context = acting_as(sql_app, "editor-9")
    try:
        user = db.session.get(User, user_id)
        assert user is not None
        first_modified = user.modified
        user.email = "ann@example.org"
        user.update()
    finally:
        context.pop()

    with sql_app.app_context():
        stored = db.session.get(User, user_id)
        assert stored is not None
        assert (stored.created_by, stored.modified_by) == ("admin-7", "editor-9")
        for moment in (stored.created, stored.modified):
            assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
            assert before <= moment <= datetime.now(UTC) + timedelta(seconds=1)
        assert stored.modified >= first_modified
