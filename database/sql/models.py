"""Models: ``ModelBase`` (insert/update/delete that commit or explain), the ``Identifier``
mixin, ``Test`` and ``Item``; the accounts' models are in ``database.sql.identity``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Integer,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
    and_,
    select,
)
from sqlalchemy import inspect as inspect_object
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, make_transient, mapped_column
from sqlalchemy.orm.attributes import NO_VALUE
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError

from database.errors import ConflictError, DatabaseError, NotFoundError
from database.sql.errors import translate, translated_errors
from database.sql.extension import db
from database.sql.paging import counted_page
from database.sql.types import UTCDateTime, aware_utc_now

__all__ = ["Identifier", "Item", "ModelBase", "Test", "current_actor", "set_actor_provider"]

SYSTEM_ACTOR = "system"
_actor_provider: Callable[[], str | None] = lambda: None  # noqa: E731


def utc_now() -> datetime:
    """Naive UTC: the same stored value on SQLite, PostgreSQL, MariaDB and MSSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


class ModelBase:
    """Mixin for ``db.Model`` classes: writes commit, roll back on failure, raise meaningfully.

    ``insert``, ``update`` and ``delete`` work in any order, on new records and on records
    loaded by a query. A unique-value clash raises ``ConflictError``, a record that is not
    stored (never inserted, deleted, or deleted by another process) ``NotFoundError``, a lost
    or refused connection ``UnavailableError``; the session is rolled back and stays usable.
    """

    def insert(self) -> Self:
        """Add this record and commit; a record deleted earlier is stored again."""
        if inspect_object(self).was_deleted:
            make_transient(self)  # keeps its values, so the same row is written again
        return self._write(db.session.add)

    def update(self) -> Self:
        """Commit the changes made to this record's attributes."""
        if inspect_object(self).was_deleted:
            raise NotFoundError(
                f"This {_label(type(self))} was deleted, so it cannot be updated; "
                "call insert() to store it again."
            )
        return self._write(db.session.add)

    def delete(self) -> None:
        """Delete this record and commit; its attributes stay readable afterwards."""
        state = inspect_object(self)
        if state.key is None or state.was_deleted:
            raise NotFoundError(
                f"This {_label(type(self))} is not stored (never inserted, or already "
                "deleted), so there is nothing to delete."
            )
        self._write(_delete)

    @classmethod
    def get_or_raise(cls, ident: object, for_update: bool = False) -> Self:
        """The record with this primary key, or ``NotFoundError``.

        ``for_update`` locks the row until the next commit (PostgreSQL, MariaDB, MSSQL), so a
        check made on it (e.g. ``If-Match``) still holds when the change is written.
        """
        found = None
        if _fits_primary_key(cls, ident):
            with translated_errors():
                found = db.session.get(cls, ident, with_for_update=for_update or None)
        if found is None:
            raise NotFoundError(f"No {_label(cls)} has the id {ident}; check the id.")
        return found

    @classmethod
    def page(cls, offset: int, limit: int) -> tuple[Sequence[Self], int]:
        """``limit`` records from ``offset`` in primary-key order, and the total count."""
        order = _table(cls).primary_key.columns
        with translated_errors():
            rows, total = counted_page(db.session, select(cls), order, offset, limit)
            return rows.scalars().all(), total

    def _write(self, step: Callable[[ModelBase], None]) -> Self:
        """Run ``step`` on this record and commit; on any failure roll back, then raise.

        Every database access of a write happens in here (a lazy load or an autoflush can
        fail too), so no failure leaves the session inside a broken transaction.
        """
        unique_values = self._unique_values()
        try:
            step(self)
            db.session.commit()
        except SQLAlchemyError as exc:
            db.session.rollback()
            error = self._error(exc, unique_values)
            if error is None:
                raise
            raise error from exc
        except BaseException:
            db.session.rollback()
            raise
        return self

    def _error(
        self, exc: SQLAlchemyError, unique_values: dict[tuple[str, ...], tuple[object, ...]]
    ) -> DatabaseError | None:
        """The data-layer error for a failed write, or None when it is a bug."""
        if isinstance(exc, IntegrityError):
            return self._conflict(unique_values)
        if isinstance(exc, ObjectDeletedError | StaleDataError):
            return NotFoundError(
                f"This {_label(type(self))} no longer exists in the database (another request "
                "deleted it); nothing was saved."
            )
        return translate(exc)

    def _unique_values(self) -> dict[tuple[str, ...], tuple[object, ...]]:
        """The values this record holds in each unique column set, to name a clash later.

        Read from what is already loaded, never from the database: a load here would run
        outside the write's error handling. Sets with an unloaded value are left out.
        """
        state = inspect_object(self)
        mapper = state.mapper
        values = {}
        for columns in _unique_column_sets(_table(type(self))):
            keys = tuple(mapper.get_property_by_column(column).key for column in columns)
            loaded = tuple(state.attrs[key].loaded_value for key in keys)
            if NO_VALUE not in loaded:
                values[keys] = loaded
        return values

    def _conflict(self, unique_values: dict[tuple[str, ...], tuple[object, ...]]) -> ConflictError:
        """Name the unique value that is taken when it can be found, else a general conflict."""
        model = type(self)
        label = _label(model)
        identity = inspect_object(self).identity
        try:
            for keys, values in unique_values.items():
                if any(value is None for value in values):
                    continue  # NULLs never clash in a unique column (an unset email)
                match: list[ColumnElement[bool]] = [
                    getattr(model, key) == value for key, value in zip(keys, values, strict=True)
                ]
                if identity is not None:
                    pk = _table(model).primary_key.columns
                    match.append(~and_(*(c == v for c, v in zip(pk, identity, strict=True))))
                if db.session.scalar(select(1).select_from(model).where(*match).limit(1)):
                    fields = " and ".join(keys)
                    return ConflictError(
                        f"This {fields} is already taken by another {label}; "
                        f"choose another {fields}.",
                        fields=keys,
                    )
        except SQLAlchemyError:
            db.session.rollback()
        return ConflictError(
            f"The {label} conflicts with existing data (a unique value or a reference), "
            "so nothing was saved."
        )


def set_actor_provider(provider: Callable[[], str | None]) -> None:
    """Tell ``Identifier`` who is acting: ``provider()`` returns the caller's subject or None.

    The app sets it once (api/__init__.py) to read the request's Principal; the data layer
    itself knows nothing of requests.
    """
    global _actor_provider
    _actor_provider = provider


def current_actor() -> str:
    """Who is writing: the request's Principal subject, else ``system`` (CLI, jobs, tests)."""
    return _actor_provider() or SYSTEM_ACTOR


def new_uuid() -> str:
    """A random UUID as its 36-character string."""
    return str(uuid.uuid4())


class Identifier:
    """Mixin: a string UUID primary key and who/when columns, kept by SQLAlchemy itself.

    ``created`` and ``modified`` are timezone-aware UTC; ``created_by`` and ``modified_by``
    hold the subject of the Principal making the request (``system`` outside a request).
    """

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=aware_utc_now, nullable=False)
    created_by: Mapped[str] = mapped_column(String(255), default=current_actor, nullable=False)
    modified: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=aware_utc_now, onupdate=aware_utc_now, nullable=False
    )
    modified_by: Mapped[str] = mapped_column(
        String(255), default=current_actor, onupdate=current_actor, nullable=False
    )


# The widest value each integer column type holds on every supported database.
INTEGER_LIMITS = ((SmallInteger, 2**15), (BigInteger, 2**63), (Integer, 2**31))


def _fits_primary_key(model: type, ident: object) -> bool:
    """False for an integer no row can have (too large for the key's column): not found, and
    never an overflow error from the driver."""
    columns = list(_table(model).primary_key.columns)
    if len(columns) != 1 or not isinstance(ident, int) or isinstance(ident, bool):
        return True
    for column_type, limit in INTEGER_LIMITS:
        if isinstance(columns[0].type, column_type):
            return -limit <= ident < limit
    return True


def _table(model: type) -> Table:
    """The model's table."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def _label(model: type) -> str:
    """How messages name a model: its class name in lower case."""
    return model.__name__.lower()


def _unique_column_sets(table: Table) -> list[tuple[Column[Any], ...]]:
    """The column sets of the table's unique constraints and unique indexes."""
    sets = [tuple(c.columns) for c in table.constraints if isinstance(c, UniqueConstraint)]
    sets += [tuple(index.columns) for index in table.indexes if index.unique]
    return sets


def _delete(record: ModelBase) -> None:
    """Mark a stored record for deletion, loading its expired attributes first.

    After a commit the attributes are expired; loading them before the DELETE keeps them
    readable afterwards, and finds a row another process deleted (ObjectDeletedError).
    """
    db.session.add(record)  # attaches a record loaded in another session; no-op otherwise
    for key in list(inspect_object(record).expired_attributes):
        getattr(record, key)
    db.session.delete(record)


class Test(ModelBase, db.Model):  # type: ignore[name-defined]
    """The model the design names: an integer id and a unique title."""

    __test__ = False  # not a pytest test class, despite the name
    __tablename__ = "test"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)


class Item(ModelBase, db.Model):  # type: ignore[name-defined]
    """The example resource behind /api/items: copy it for your own models."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    description: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(), default=utc_now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(), default=utc_now, onupdate=utc_now, nullable=False
    )
