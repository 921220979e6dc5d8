"""Code written for Python-Api-BoilerPlate runs here: the calls its test suites and README
make, in the same order and with the same keyword names, on SQLite, PostgreSQL, MariaDB and
a MongoDB wire-protocol server.

The one difference a modern stack forces on the SQL calls is an app context around them
(Flask-SQLAlchemy 3); on the Mongo side, ``find`` returns a list (pymongo 4 removed
``Cursor.count()``). See README, "Coming from Python-Api-BoilerPlate".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from pymongo.uri_parser import parse_uri
from sqlalchemy.engine import URL
from sqlalchemy_utils import database_exists

from api import create_app
from database.mongodb import setup_mongodb
from database.sql import db_create_all, db_drop_all, setup_sql_db
from database.sql.dbtype import DBType
from database.sql.models import Test
from tests.conftest import TEST_SECRET_KEY
from tests.support.mongo_server import mongo_uri
from tests.support.sql import database_gone, force_drop, plain, server_url, unique_name


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """The process environment create_app() reads, as a developer's shell would hold it."""
    for name, value in {
        "APP_ENV": "development",
        "SECRET_KEY": TEST_SECRET_KEY,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SESSION_TYPE": "filesystem",
        "DATABASE_URL": "",
        "MONGO_URI": "",
        "MONGO_DB": "",
    }.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture(params=[DBType.SQLITE, DBType.POSTGRESQL, DBType.MYSQL], ids=str)
def sql_server(request: pytest.FixtureRequest, environment: pytest.MonkeyPatch) -> DBType:
    """DATABASE_URL names the server (its admin database); SQLite is the default."""
    kind: DBType = request.param
    if kind is not DBType.SQLITE:
        environment.setenv("DATABASE_URL", plain(server_url(kind)))
    return kind


def original_style_name() -> str:
    """A name like the original's tests make: test_ and 8 hex digits."""
    return f"test_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def original_sql_app(sql_server: DBType) -> Iterator[Flask]:
    """``create_app(test_database=...)`` as the original's setUpClass calls it."""
    name = original_style_name()
    app = create_app(test_database=name)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    assert Path(url.database).name == name  # on the configured server (SQLite: instance/)
    try:
        yield app
    finally:
        force_drop(url)


def new_title() -> str:
    """A title no other row has."""
    return "Test that!" + uuid.uuid4().hex[:8]


def test_sql_calls_of_the_original(original_sql_app: Flask) -> None:
    app = original_sql_app
    url: URL = app.config["SQLALCHEMY_DATABASE_URI"]
    assert database_exists(url)  # created, with its tables, by create_app
    with app.app_context():
        test = Test(title=new_title())
        test.insert()
        assert test.id

        found = Test.query.filter_by(id=test.id).first()
        assert found.id == test.id
        assert Test.query.filter_by(title=test.title).first().title == test.title
        assert len(Test.query.filter_by(title=test.title).all()) > 0

        doomed = Test(title=new_title())
        doomed.insert()
        doomed.delete()
        assert Test.query.filter_by(title=doomed.title).all() == []
        assert Test.query.filter_by(id=doomed.id).all() == []

        changed = Test(title=new_title())
        changed.insert()
        changed.title = new_title()
        changed.update()
        assert Test.query.filter_by(id=changed.id).first().title == changed.title

        # tearDownClass: the URL straight from the config, as the original passes it.
        db_drop_all(testing=True, conn=app.config["SQLALCHEMY_DATABASE_URI"])
    assert database_gone(url)  # SQLite: the file in instance/ too


def test_test_database_must_be_a_plain_name(environment: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="not a plain name"):
        create_app(test_database="../outside")


@pytest.mark.parametrize("kind", [DBType.POSTGRESQL, DBType.MYSQL], ids=str)
def test_sql_host_with_its_port(kind: DBType, tmp_path: Path) -> None:
    server = server_url(kind)
    app = Flask(__name__, instance_path=str(tmp_path))
    setup_sql_db(
        app,
        dbtype=kind,
        username=server.username,
        password=server.password,
        host=f"{server.host}:{server.port}",
        database_name=unique_name(),
    )
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    try:
        with app.app_context():
            db_create_all()
            assert Test(title=new_title()).insert().id
            db_drop_all(testing=True)
        assert not database_exists(url)
    finally:
        force_drop(url)


@pytest.fixture
def original_mongo_app(environment: pytest.MonkeyPatch) -> Iterator[Flask]:
    """``create_app(test_database=...)`` with MongoDB configured (MONGO_URI)."""
    environment.setenv("MONGO_URI", mongo_uri())
    name = original_style_name()
    app = create_app(test_database=name)
    assert app.mongo.database_name == name  # type: ignore[attr-defined]
    try:
        yield app
    finally:
        app.mongo.client.drop_database(app.mongo.database_name)
        with app.app_context():
            db_drop_all(testing=True)  # the SQLite test database create_app made


def test_mongo_calls_of_the_original(original_mongo_app: Flask) -> None:
    mongo = original_mongo_app.mongo  # type: ignore[attr-defined]
    table = "ttest_" + uuid.uuid4().hex[:8]
    row = {"name": new_title()}

    inserted = mongo.insert_row(table_name=table, row=row)
    assert inserted
    assert mongo.bulk_insert(table_name=table, rows=[row])
    assert mongo.findbyid(table_name=table, id=inserted)["_id"] == inserted
    assert mongo.findbyid(table_name=table, id=inserted, filter={"_id": 1}) == {"_id": inserted}
    assert mongo.findone(table_name=table, query=row)["name"] == row["name"]
    assert len(mongo.findone(table_name=table)) > 0
    assert mongo.findone(table_name=table, query=row, filter={"_id": 0}) == row
    assert mongo.find(table_name=table, query=row)[0]["name"] == row["name"]
    assert len(list(mongo.find(table_name=table))) > 0  # was: .count() on a pymongo 3 cursor
    assert mongo.find(table_name=table, query=row, filter={"_id": 0}) == [row, row]

    for delete in ("deletebyid", "deleteone", "deletemany"):
        gone = mongo.insert_row(table_name=table, row={"name": new_title()})
        if delete == "deletebyid":
            mongo.deletebyid(table_name=table, id=gone)
        else:
            getattr(mongo, delete)(table_name=table, query={"_id": gone})
        assert mongo.findbyid(table_name=table, id=gone) is None

    for update in ("updatebyid", "updateone", "updatemany"):
        name, name2 = new_title(), new_title()
        new_id = mongo.insert_row(table_name=table, row={"name": name})
        if update == "updatebyid":
            mongo.updatebyid(table_name=table, id=new_id, newval={"name": name2})
        else:
            getattr(mongo, update)(table_name=table, query={"name": name}, newval={"name": name2})
        assert len(mongo.findone(table_name=table, query={"name": name2})) > 0

    # The test database holds the rows; db_name= reaches another one; dropcoll empties.
    assert table in mongo.client[mongo.database_name].list_collection_names()
    other = mongo.database_name + "_other"
    mongo.insert_row(table_name=table, row=row, db_name=other)
    assert mongo.gettable(table_name=table, db_name=other).count_documents({}) == 1
    mongo.client.drop_database(other)
    mongo.dropcoll(table_name=table)
    assert mongo.findone(table_name=table) is None


def test_mongo_host_with_its_port() -> None:
    parsed = parse_uri(mongo_uri())
    host, port = parsed["nodelist"][0]
    app = Flask(__name__)
    mongo = setup_mongodb(
        app,
        username=parsed["username"],
        password=parsed["password"],
        host=f"{host}:{port}",
        database_name=unique_name(),
    )
    try:
        assert mongo.findbyid(table_name="t", id=mongo.insert_row(table_name="t", row={"n": 1}))
    finally:
        mongo.client.drop_database(mongo.database_name)
        mongo.client.close()
