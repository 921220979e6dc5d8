"""The SQL data layer on each available database: insert, query, update, delete, conflicts.

Runs under pytest and under ``python -m unittest discover -p sql_test.py``. Each class
creates one database test_<hex> (SQLite always; PostgreSQL and MariaDB/MySQL from
POSTGRES_TEST_URL / MYSQL_TEST_URL, defaulting to the local servers; MSSQL when MSSQL_URL is
set) and drops it afterwards, even when a test fails.
"""

from __future__ import annotations

import os
import tempfile
import unittest
import uuid
from typing import TYPE_CHECKING, ClassVar

from flask import Flask
from sqlalchemy import delete

from database.errors import ConflictError, NotFoundError
from database.sql import db, db_create_all, db_drop_all, setup_sql_db
from database.sql.dbtype import DBType
from database.sql.models import Item, Test
from tests.support.sql import new_database_url, plain

# The cases live in a mixin so that only the per-database classes are collected; type
# checkers see it as the TestCase it always ends up in.
if TYPE_CHECKING:
    CasesBase = unittest.TestCase
else:
    CasesBase = object


class SqlCrudCases(CasesBase):
    """The cases every database runs; subclasses name the database in ``kind``."""

    kind: ClassVar[DBType]
    app: ClassVar[Flask]

    @classmethod
    def setUpClass(cls) -> None:
        directory = tempfile.mkdtemp(prefix="sql_test_")
        cls.addClassCleanup(os.rmdir, directory)  # last: empty once the database is dropped
        url = new_database_url(cls.kind, directory)
        cls.app = Flask(__name__, instance_path=directory)
        if cls.kind is DBType.MSSQL:
            # Keep the query of MSSQL_URL (driver, TrustServerCertificate...).
            cls.app.config["DATABASE_URL"] = plain(url)
            setup_sql_db(cls.app)
        else:
            setup_sql_db(
                cls.app,
                dbtype=cls.kind,
                username=url.username,
                password=url.password,
                host=url.host,
                port=url.port,
                database_name=url.database,
            )
        # Registered before creating anything: the database goes even if set-up fails midway.
        cls.addClassCleanup(cls._drop_database)
        with cls.app.app_context():
            db_create_all()

    @classmethod
    def _drop_database(cls) -> None:
        with cls.app.app_context():
            db_drop_all(testing=True)

    def setUp(self) -> None:
        context = self.app.app_context()
        context.push()
        self.addCleanup(context.pop)
        for model in (Test, Item):
            model.query.delete()
        db.session.commit()

    def test_insert_then_query(self) -> None:
        row = Test(title="first").insert()
        self.assertIsNotNone(row.id)
        db.session.expunge_all()
        found = Test.query.filter_by(title="first").one()
        self.assertEqual((found.id, found.title), (row.id, "first"))

    def test_update_changes_the_stored_row(self) -> None:
        row = Test(title="before").insert()
        row.title = "after"
        row.update()
        db.session.expunge_all()
        self.assertEqual([t.title for t in Test.query.all()], ["after"])

    def test_delete_removes_the_row(self) -> None:
        row = Test(title="doomed").insert()
        row_id = row.id
        row.delete()
        self.assertIsNone(db.session.get(Test, row_id))
        with self.assertRaises(NotFoundError):
            Test.get_or_raise(row_id)

    def test_delete_right_after_insert(self) -> None:
        Item(name="pen").insert().delete()
        self.assertEqual(Item.query.count(), 0)

    def test_insert_update_delete_on_a_fresh_record(self) -> None:
        row = Test(title="a").insert()
        row.update()  # nothing changed: still fine
        row.title = "b"
        row.update()
        row.delete()
        # The deleted record keeps its values, as the original's tests read them.
        self.assertEqual((row.id is not None, row.title), (True, "b"))
        self.assertEqual(Test.query.filter_by(id=row.id).all(), [])

    def test_update_and_delete_on_a_loaded_record(self) -> None:
        row_id = Test(title="a").insert().id
        db.session.expunge_all()
        loaded = Test.query.filter_by(id=row_id).one()
        loaded.title = "b"
        loaded.update()
        db.session.expunge_all()
        loaded = Test.query.filter_by(title="b").one()
        loaded.delete()
        self.assertEqual(Test.query.count(), 0)

    def test_insert_after_delete_stores_the_record_again(self) -> None:
        row = Test(title="back").insert()
        row_id = row.id
        row.delete()
        row.insert()
        db.session.expunge_all()
        self.assertEqual([(t.id, t.title) for t in Test.query.all()], [(row_id, "back")])

    def test_deleting_what_is_not_stored_is_not_found(self) -> None:
        with self.assertRaises(NotFoundError):
            Test(title="never inserted").delete()
        row = Test(title="once").insert()
        row.delete()
        with self.assertRaises(NotFoundError):
            row.delete()
        with self.assertRaises(NotFoundError) as caught:
            row.update()
        self.assertIn("insert()", str(caught.exception))
        self.assert_session_usable()

    def test_row_deleted_by_someone_else_is_not_found(self) -> None:
        row = Test(title="gone").insert()
        with db.engine.begin() as other:  # another connection, as another process would
            other.execute(delete(Test).where(Test.id == row.id))
        row.title = "changed"
        with self.assertRaises(NotFoundError):
            row.update()
        with self.assertRaises(NotFoundError):
            row.delete()
        self.assert_session_usable()

    def assert_session_usable(self) -> None:
        """No transaction left half-done: the next write and read work."""
        title = f"after-{uuid.uuid4().hex}"
        Test(title=title).insert()
        self.assertEqual(Test.query.filter_by(title=title).count(), 1)

    def test_unique_clash_is_a_conflict_and_the_session_survives(
        self,
    ) -> None:
        Test(title="taken").insert()
        with self.assertRaises(ConflictError) as caught:
            Test(title="taken").insert()
        self.assertIn("title is already taken", str(caught.exception))
        self.assertEqual(caught.exception.fields, ("title",))  # forms put it by that field
        # Rolled back: nothing half-written, and the same session keeps working.
        self.assertEqual(Test.query.filter_by(title="taken").count(), 1)
        Test(title="free").insert()
        self.assertEqual(Test.query.count(), 2)

    def test_update_into_a_taken_value_is_a_conflict(
        self,
    ) -> None:
        Test(title="one").insert()
        other = Test(title="two").insert()
        other.title = "one"
        with self.assertRaises(ConflictError):
            other.update()
        db.session.expunge_all()
        self.assertEqual(sorted(t.title for t in Test.query.all()), ["one", "two"])

    def test_text_round_trips_every_character(self) -> None:
        title = "caf\u00e9 \u4e2d\u6587 \U0001f680"  # 4-byte UTF-8 needs utf8mb4 on MySQL
        Test(title=title).insert()
        db.session.expunge_all()
        self.assertEqual(Test.query.one().title, title)

    def test_page_counts_and_orders(self) -> None:
        for name in ("a", "b", "c"):
            Item(name=name).insert()
        items, total = Item.page(offset=1, limit=5)
        self.assertEqual(([item.name for item in items], total), (["b", "c"], 3))


class SQLiteCrudTest(SqlCrudCases, unittest.TestCase):
    """SQLite: always available."""

    kind = DBType.SQLITE


class PostgreSQLCrudTest(SqlCrudCases, unittest.TestCase):
    """PostgreSQL from POSTGRES_TEST_URL (default: the local server)."""

    kind = DBType.POSTGRESQL


class MySQLCrudTest(SqlCrudCases, unittest.TestCase):
    """MariaDB or MySQL from MYSQL_TEST_URL (default: the local server)."""

    kind = DBType.MYSQL


class MSSQLCrudTest(SqlCrudCases, unittest.TestCase):
    """SQL Server from MSSQL_URL; skipped when it is not set."""

    kind = DBType.MSSQL


if __name__ == "__main__":
    unittest.main()
