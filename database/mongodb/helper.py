"""The ``app.mongo`` helper: the familiar method names over one pymongo client."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from bson import ObjectId
from pymongo import MongoClient
from pymongo.collection import Collection

from database.mongodb.errors import translated

# find() returns at most this many documents unless a limit is given; use gettable() to
# stream larger results with a cursor.
DEFAULT_FIND_LIMIT = 1000
OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")

Document = dict[str, Any]
Query = Mapping[str, Any]
Projection = Mapping[str, Any] | Sequence[str]
Sort = Sequence[tuple[str, int]]

_NO_MATCH = object()  # an id that cannot exist: the lookup is skipped


class UpdateCounts(NamedTuple):
    """What an update did: documents matched and documents actually changed."""

    matched: int
    modified: int


def document_id(value: object) -> object:
    """A 24-hex string becomes an ObjectId; other plain ids pass; anything else matches nothing."""
    if isinstance(value, str) and OBJECT_ID.fullmatch(value):
        return ObjectId(value)
    if isinstance(value, ObjectId | str | uuid.UUID) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        return value
    # A dict here could carry an operator ({"$ne": null}); it is treated as "no such id".
    return _NO_MATCH


def _set(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``$set`` update for plain field values; operators are refused."""
    if not values:
        raise ValueError("Give at least one field to update.")
    operators = sorted(key for key in values if str(key).startswith("$"))
    if operators:
        raise ValueError(
            f"Update values are applied with $set; remove the operator keys {operators}."
        )
    return {"$set": dict(values)}


def _new_values(
    newval: Mapping[str, Any] | None, values: Mapping[str, Any] | None
) -> Mapping[str, Any]:
    """The update's new values, given as ``newval`` (the original's name) or ``values``."""
    if newval is not None and values is not None:
        raise TypeError("Give the new values once, as newval= (or values=), not both.")
    chosen = newval if newval is not None else values
    if chosen is None:
        raise TypeError("Give the new values to set, e.g. newval={'name': 'Ada'}.")
    return chosen


class MongoHelper:
    """CRUD helpers; every method takes ``table_name`` and an optional ``db_name``."""

    def __init__(
        self,
        client: MongoClient[Document],
        database_name: str,
        find_limit: int = DEFAULT_FIND_LIMIT,
    ) -> None:
        self.client = client
        self.database_name = database_name
        self.find_limit = find_limit

    def __repr__(self) -> str:
        return f"MongoHelper(database_name={self.database_name!r})"

    def gettable(self, table_name: str, db_name: str | None = None) -> Collection[Document]:
        """The pymongo collection, for anything the helper does not cover."""
        return self.client[db_name or self.database_name][table_name]

    @translated
    def ping(self) -> None:
        """Raise UnavailableError unless the server answers (used by /healthcheck)."""
        self.client.admin.command("ping")

    @translated
    def insert_row(
        self, table_name: str, row: Mapping[str, Any], db_name: str | None = None
    ) -> Any:
        """Insert one document; return its ``_id``."""
        return self.gettable(table_name, db_name).insert_one(dict(row)).inserted_id

    @translated
    def bulk_insert(
        self,
        table_name: str,
        rows: Iterable[Mapping[str, Any]],
        db_name: str | None = None,
        ordered: bool = True,
    ) -> list[Any]:
        """Insert many documents; return their ids in order."""
        documents = [dict(row) for row in rows]
        if not documents:
            return []
        result = self.gettable(table_name, db_name).insert_many(documents, ordered=ordered)
        return list(result.inserted_ids)

    @translated
    def findbyid(
        self,
        table_name: str,
        id: object,
        filter: Projection | None = None,
        db_name: str | None = None,
    ) -> Document | None:
        """The document with this ``_id`` (string or ObjectId), or None (also for invalid ids)."""
        key = document_id(id)
        if key is _NO_MATCH:
            return None
        return self.gettable(table_name, db_name).find_one({"_id": key}, filter)

    @translated
    def findone(
        self,
        table_name: str,
        query: Query | None = None,
        filter: Projection | None = None,
        db_name: str | None = None,
    ) -> Document | None:
        """The first document matching ``query``, or None."""
        return self.gettable(table_name, db_name).find_one(dict(query or {}), filter)

    @translated
    def find(
        self,
        table_name: str,
        query: Query | None = None,
        filter: Projection | None = None,
        db_name: str | None = None,
        sort: Sort | None = None,
        skip: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        """Matching documents as a list, at most ``limit`` (default ``find_limit``)."""
        if skip < 0 or (limit is not None and limit < 1):
            raise ValueError("skip must be 0 or more and limit 1 or more.")
        cursor = self.gettable(table_name, db_name).find(dict(query or {}), filter)
        if sort:
            cursor = cursor.sort(list(sort))
        return list(cursor.skip(skip).limit(limit or self.find_limit))

    @translated
    def count(self, table_name: str, query: Query | None = None, db_name: str | None = None) -> int:
        """How many documents match ``query``."""
        return self.gettable(table_name, db_name).count_documents(dict(query or {}))

    @translated
    def deletebyid(self, table_name: str, id: object, db_name: str | None = None) -> int:
        """Delete the document with this ``_id``; return 1, or 0 when there was none."""
        key = document_id(id)
        if key is _NO_MATCH:
            return 0
        return self.gettable(table_name, db_name).delete_one({"_id": key}).deleted_count

    @translated
    def deleteone(self, table_name: str, query: Query, db_name: str | None = None) -> int:
        """Delete the first document matching ``query``; return the number deleted."""
        return self.gettable(table_name, db_name).delete_one(dict(query)).deleted_count

    @translated
    def deletemany(self, table_name: str, query: Query, db_name: str | None = None) -> int:
        """Delete every document matching ``query`` (``{}`` for all); return the number."""
        return self.gettable(table_name, db_name).delete_many(dict(query)).deleted_count

    @translated
    def updatebyid(
        self,
        table_name: str,
        id: object,
        newval: Mapping[str, Any] | None = None,
        db_name: str | None = None,
        *,
        values: Mapping[str, Any] | None = None,
    ) -> UpdateCounts:
        """``$set`` the new values (``newval``, or ``values``) on the document with this ``_id``."""
        update = _set(_new_values(newval, values))
        key = document_id(id)
        if key is _NO_MATCH:
            return UpdateCounts(0, 0)
        return self._update(table_name, {"_id": key}, update, db_name, many=False)

    @translated
    def updateone(
        self,
        table_name: str,
        query: Query,
        newval: Mapping[str, Any] | None = None,
        db_name: str | None = None,
        *,
        values: Mapping[str, Any] | None = None,
    ) -> UpdateCounts:
        """``$set`` the new values on the first document matching ``query``."""
        update = _set(_new_values(newval, values))
        return self._update(table_name, query, update, db_name, many=False)

    @translated
    def updatemany(
        self,
        table_name: str,
        query: Query,
        newval: Mapping[str, Any] | None = None,
        db_name: str | None = None,
        *,
        values: Mapping[str, Any] | None = None,
    ) -> UpdateCounts:
        """``$set`` the new values on every document matching ``query``."""
        update = _set(_new_values(newval, values))
        return self._update(table_name, query, update, db_name, many=True)

    def _update(
        self, table_name: str, query: Query, update: dict[str, Any], db_name: str | None, many: bool
    ) -> UpdateCounts:
        """Run update_one or update_many and report its counts."""
        collection = self.gettable(table_name, db_name)
        run = collection.update_many if many else collection.update_one
        result = run(dict(query), update)
        return UpdateCounts(result.matched_count, result.modified_count)

    @translated
    def dropcoll(self, table_name: str, db_name: str | None = None) -> None:
        """Drop the collection (no error when it does not exist)."""
        self.gettable(table_name, db_name).drop()
