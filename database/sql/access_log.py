"""The stored access log: one SQL table written in batches with SQLAlchemy Core, its own engine."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    create_engine,
    delete,
    insert,
    inspect,
    make_url,
    select,
)
from sqlalchemy.exc import DatabaseError

from database.sql.errors import translated_errors
from database.sql.paging import counted_page

TABLE_NAME = "access_log"
MAX_PATH = 2048
MAX_USER_AGENT = 256

metadata = MetaData()

# Times are naive UTC: the same values on SQLite, PostgreSQL and MariaDB.
access_log_table = Table(
    TABLE_NAME,
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("time", DateTime(), nullable=False, index=True),
    Column("method", String(16), nullable=False),
    Column("route", String(255)),
    Column("path", String(MAX_PATH), nullable=False),
    Column("status", SmallInteger(), nullable=False),
    Column("duration_ms", Float(), nullable=False),
    Column("remote_ip", String(64)),
    Column("uid", String(128)),
    Column("request_id", String(128), nullable=False),
    Column("user_agent", String(MAX_USER_AGENT)),
)


@dataclass(frozen=True)
class AccessLogQuery:
    """Which stored records to read: each field given narrows the search (times naive UTC)."""

    uid: str | None = None
    status_min: int | None = None
    status_max: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE conditions of this query."""
        table = access_log_table.c
        conditions: list[ColumnElement[bool]] = []
        if self.uid is not None:
            conditions.append(table.uid == self.uid)
        if self.status_min is not None:
            conditions.append(table.status >= self.status_min)
        if self.status_max is not None:
            conditions.append(table.status <= self.status_max)
        if self.since is not None:
            conditions.append(table.time >= self.since)
        if self.until is not None:
            conditions.append(table.time < self.until)
        return conditions


class AccessLogStore:
    """Writes and purges access records; creates its one table on first use (it is a log)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        self.engine = create_engine(parsed, pool_pre_ping=True)
        self._table_ready = False

    def _ensure_table(self) -> None:
        """CREATE TABLE IF NOT EXISTS; another worker creating it at the same moment is fine."""
        if self._table_ready:
            return
        try:
            metadata.create_all(self.engine, tables=[access_log_table])
        except DatabaseError:
            if not inspect(self.engine).has_table(TABLE_NAME):
                raise
        self._table_ready = True

    def write(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Insert a batch of records in one transaction."""
        if not rows:
            return
        self._ensure_table()
        with self.engine.begin() as connection:
            connection.execute(insert(access_log_table), list(rows))

    def purge(self, older_than: datetime) -> int:
        """Delete records from before ``older_than`` (naive UTC); return how many went."""
        self._ensure_table()
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(access_log_table).where(access_log_table.c.time < older_than)
            )
        return int(result.rowcount or 0)

    def search(
        self, query: AccessLogQuery, offset: int, limit: int
    ) -> tuple[list[dict[str, object]], int]:
        """One page of matching records, newest first, and how many match in all.

        A database that cannot be reached raises ``UnavailableError`` (a 503 page).
        """
        table = access_log_table
        matching = select(table).where(*query.conditions())
        newest_first = [table.c.time.desc(), table.c.id.desc()]
        with translated_errors():
            self._ensure_table()
            with self.engine.connect() as connection:
                page, total = counted_page(connection, matching, newest_first, offset, limit)
                rows = [dict(row) for row in page.mappings()]
        return rows, total

    def close(self) -> None:
        """Close the engine's connections."""
        self.engine.dispose()

    def describe(self) -> str:
        """The database URL with the password hidden, for messages."""
        return self.engine.url.render_as_string(hide_password=True)
