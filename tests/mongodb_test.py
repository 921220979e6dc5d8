"""The MongoDB helper against a real wire-protocol server.

Runs under pytest and under ``python -m unittest discover -p mongodb_test.py``. Uses
MONGO_URI when set (a real MongoDB), else starts SecantusDB on a free loopback port. Each
class works in uniquely named databases, dropped afterwards even when a test fails.
"""

from __future__ import annotations

import time
import unittest

from bson import ObjectId
from flask import Flask
from pymongo.collection import Collection

from database.errors import ConflictError, UnavailableError
from database.mongodb import MongoHelper, UpdateCounts, setup_mongodb
from tests.support.mongo_server import mongo_uri, unique_database_name
from tests.support.services import free_port

TABLE = "people"


class MongoHelperTest(unittest.TestCase):
    """Every helper method, on a fresh database and a second one for ``db_name=``."""

    mongo: MongoHelper
    other_db: str

    @classmethod
    def setUpClass(cls) -> None:
        app = Flask(__name__)
        app.config.update(MONGO_TIMEOUT_MS=3000)
        cls.mongo = setup_mongodb(app, uri=mongo_uri(), database_name=unique_database_name())
        cls.other_db = unique_database_name()
        cls.addClassCleanup(cls.mongo.client.close)
        cls.addClassCleanup(cls.mongo.client.drop_database, cls.other_db)
        cls.addClassCleanup(cls.mongo.client.drop_database, cls.mongo.database_name)

    def setUp(self) -> None:
        self.mongo.dropcoll(TABLE)
        self.mongo.dropcoll(TABLE, db_name=self.other_db)

    def test_insert_row_returns_the_new_id(self) -> None:
        new_id = self.mongo.insert_row(TABLE, {"name": "Ada", "age": 36})
        self.assertIsInstance(new_id, ObjectId)
        self.assertEqual(self.mongo.findbyid(TABLE, new_id)["name"], "Ada")

    def test_row_is_not_modified_by_insert(self) -> None:
        row = {"name": "Ada"}
        self.mongo.insert_row(TABLE, row)
        self.assertNotIn("_id", row)

    def test_bulk_insert_returns_ids_in_order(self) -> None:
        ids = self.mongo.bulk_insert(TABLE, [{"n": 1}, {"n": 2}, {"n": 3}])
        self.assertEqual(len(ids), 3)
        self.assertEqual([self.mongo.findbyid(TABLE, i)["n"] for i in ids], [1, 2, 3])
        self.assertEqual(self.mongo.bulk_insert(TABLE, []), [])

    def test_findbyid_accepts_string_and_objectid(self) -> None:
        new_id = self.mongo.insert_row(TABLE, {"name": "Grace"})
        self.assertEqual(self.mongo.findbyid(TABLE, str(new_id))["_id"], new_id)
        self.assertEqual(self.mongo.findbyid(TABLE, new_id)["_id"], new_id)

    def test_invalid_or_unknown_ids_find_nothing(self) -> None:
        self.mongo.insert_row(TABLE, {"name": "Grace"})
        for bad in ("nope", "123", "z" * 24, str(ObjectId()), {"$ne": None}, ["x"], True):
            with self.subTest(id=bad):
                self.assertIsNone(self.mongo.findbyid(TABLE, bad))
                self.assertEqual(self.mongo.deletebyid(TABLE, bad), 0)
                self.assertEqual(self.mongo.updatebyid(TABLE, bad, {"a": 1}), UpdateCounts(0, 0))
        self.assertEqual(self.mongo.count(TABLE), 1)

    def test_non_objectid_ids_work(self) -> None:
        self.mongo.insert_row(TABLE, {"_id": 7, "name": "int id"})
        self.mongo.insert_row(TABLE, {"_id": "custom-key", "name": "string id"})
        self.assertEqual(self.mongo.findbyid(TABLE, 7)["name"], "int id")
        self.assertEqual(self.mongo.findbyid(TABLE, "custom-key")["name"], "string id")

    def test_projection_on_reads(self) -> None:
        new_id = self.mongo.insert_row(TABLE, {"name": "Ada", "age": 36, "city": "London"})
        self.assertEqual(
            self.mongo.findbyid(TABLE, new_id, filter={"_id": 0, "name": 1}), {"name": "Ada"}
        )
        self.assertEqual(
            self.mongo.findone(TABLE, {"name": "Ada"}, filter={"_id": 0, "age": 1}), {"age": 36}
        )
        found = self.mongo.find(TABLE, {"city": "London"}, filter={"_id": 0, "city": 1})
        self.assertEqual(found, [{"city": "London"}])

    def test_findone_returns_none_when_nothing_matches(self) -> None:
        self.assertIsNone(self.mongo.findone(TABLE, {"name": "nobody"}))

    def test_find_sort_skip_limit(self) -> None:
        self.mongo.bulk_insert(TABLE, [{"n": n} for n in (3, 1, 4, 5, 2)])
        ascending = self.mongo.find(TABLE, sort=[("n", 1)], filter={"_id": 0})
        self.assertEqual([d["n"] for d in ascending], [1, 2, 3, 4, 5])
        page = self.mongo.find(TABLE, sort=[("n", -1)], skip=1, limit=2)
        self.assertEqual([d["n"] for d in page], [4, 3])
        self.assertEqual(len(self.mongo.find(TABLE, {"n": {"$gt": 2}})), 3)
        with self.assertRaises(ValueError):
            self.mongo.find(TABLE, skip=-1)

    def test_find_is_bounded_by_the_default_limit(self) -> None:
        self.mongo.bulk_insert(TABLE, [{"n": n} for n in range(8)])
        bounded = MongoHelper(self.mongo.client, self.mongo.database_name, find_limit=5)
        self.assertEqual(len(bounded.find(TABLE)), 5)
        self.assertEqual(len(bounded.find(TABLE, limit=8)), 8)

    def test_update_counts(self) -> None:
        ids = self.mongo.bulk_insert(TABLE, [{"n": 1, "k": "a"}, {"n": 2, "k": "a"}, {"n": 3}])
        self.assertEqual(self.mongo.updatebyid(TABLE, str(ids[0]), {"seen": True}), (1, 1))
        self.assertEqual(self.mongo.updatebyid(TABLE, ids[0], {"seen": True}), (1, 0))
        self.assertEqual(self.mongo.updateone(TABLE, {"k": "a"}, {"k": "b"}), (1, 1))
        self.assertEqual(self.mongo.updatemany(TABLE, {}, {"flag": 1}), (3, 3))
        self.assertEqual(self.mongo.updatemany(TABLE, {"k": "none"}, {"flag": 2}), (0, 0))
        self.assertEqual(self.mongo.findbyid(TABLE, ids[2])["flag"], 1)

    def test_new_values_as_newval_or_values(self) -> None:
        new_id = self.mongo.insert_row(TABLE, {"n": 1, "k": "a"})
        self.assertEqual(self.mongo.updatebyid(TABLE, id=new_id, newval={"n": 2}), (1, 1))
        self.assertEqual(self.mongo.updateone(TABLE, query={"k": "a"}, newval={"n": 3}), (1, 1))
        self.assertEqual(self.mongo.updatemany(TABLE, query={}, newval={"n": 4}), (1, 1))
        self.assertEqual(self.mongo.updatemany(TABLE, {}, values={"n": 5}), (1, 1))
        self.assertEqual(self.mongo.findbyid(TABLE, new_id)["n"], 5)
        with self.assertRaisesRegex(TypeError, "not both"):
            self.mongo.updateone(TABLE, {}, newval={"n": 6}, values={"n": 6})
        with self.assertRaisesRegex(TypeError, "newval="):
            self.mongo.updatebyid(TABLE, new_id)
        self.assertEqual(self.mongo.findbyid(TABLE, new_id)["n"], 5)

    def test_update_refuses_operators_and_empty_values(self) -> None:
        new_id = self.mongo.insert_row(TABLE, {"n": 1})
        with self.assertRaises(ValueError):
            self.mongo.updatebyid(TABLE, new_id, {"$unset": {"n": ""}})
        with self.assertRaises(ValueError):
            self.mongo.updateone(TABLE, {}, {})
        self.assertEqual(self.mongo.findbyid(TABLE, new_id)["n"], 1)

    def test_delete_counts(self) -> None:
        ids = self.mongo.bulk_insert(TABLE, [{"k": "a"}, {"k": "a"}, {"k": "b"}, {"k": "c"}])
        self.assertEqual(self.mongo.deletebyid(TABLE, str(ids[3])), 1)
        self.assertEqual(self.mongo.deletebyid(TABLE, ids[3]), 0)
        self.assertEqual(self.mongo.deleteone(TABLE, {"k": "a"}), 1)
        self.assertEqual(self.mongo.deletemany(TABLE, {"k": {"$in": ["a", "b"]}}), 2)
        self.assertEqual(self.mongo.deletemany(TABLE, {}), 0)

    def test_db_name_overrides_the_database(self) -> None:
        other_id = self.mongo.insert_row(TABLE, {"where": "other"}, db_name=self.other_db)
        self.assertIsNone(self.mongo.findbyid(TABLE, other_id))
        self.assertEqual(
            self.mongo.findbyid(TABLE, other_id, db_name=self.other_db)["where"], "other"
        )
        self.assertEqual(len(self.mongo.find(TABLE, db_name=self.other_db)), 1)
        self.assertEqual(self.mongo.updateone(TABLE, {}, {"x": 1}, db_name=self.other_db), (1, 1))
        self.assertEqual(self.mongo.deletemany(TABLE, {}, db_name=self.other_db), 1)
        self.assertEqual(self.mongo.count(TABLE, db_name=self.other_db), 0)

    def test_dropcoll_and_gettable(self) -> None:
        self.mongo.insert_row(TABLE, {"n": 1})
        table = self.mongo.gettable(TABLE)
        self.assertIsInstance(table, Collection)
        self.assertEqual(table.name, TABLE)
        self.mongo.dropcoll(TABLE)
        self.assertNotIn(TABLE, self.mongo.client[self.mongo.database_name].list_collection_names())
        self.mongo.dropcoll(TABLE)  # dropping a missing collection is not an error

    def test_duplicate_key_is_a_conflict(self) -> None:
        self.mongo.gettable(TABLE).create_index("email", unique=True)
        self.mongo.insert_row(TABLE, {"email": "ada@example.org"})
        with self.assertRaises(ConflictError) as caught:
            self.mongo.insert_row(TABLE, {"email": "ada@example.org"})
        self.assertIn("email", str(caught.exception))
        self.assertNotIn("ada@example.org", str(caught.exception))
        self.assertEqual(self.mongo.count(TABLE), 1)


class UnreachableServerTest(unittest.TestCase):
    """A closed port gives UnavailableError within the configured timeout."""

    def test_unavailable_quickly(self) -> None:
        app = Flask(__name__)
        app.config.update(MONGO_TIMEOUT_MS=500)
        mongo = setup_mongodb(app, host="127.0.0.1", port=free_port(), database_name="x")
        self.addCleanup(mongo.client.close)
        started = time.monotonic()
        with self.assertRaises(UnavailableError) as caught:
            mongo.insert_row(TABLE, {"n": 1})
        self.assertLess(time.monotonic() - started, 3)
        self.assertEqual(str(caught.exception), "MongoDB is unavailable; try again shortly.")


if __name__ == "__main__":
    unittest.main()
