"""SQLAlchemy's exceptions turned into the data layer's own (conflict, unavailable)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from database.errors import ConflictError, DatabaseError, UnavailableError

logger = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = "The database is unavailable right now; try again in a moment."
CONFLICT_MESSAGE = "The change conflicts with existing data (a value that must be unique, or a "
CONFLICT_MESSAGE += "reference), so nothing was saved."
# SQLite and PyMySQL raise OperationalError for mistakes in the SQL too (a missing table or
# column: a bug, 500), so their error codes decide. Only these are conditions that pass:
# SQLite's primary result codes BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN, PROTOCOL ...
SQLITE_OUTAGE_CODES = frozenset({5, 6, 7, 10, 13, 14, 15})
# ... MySQL client errors (2000-2999: cannot connect, server gone away, lost connection) and
# these server errors: too many connections (1040, 1203), shutting down (1053), access denied
# or unknown database at connect (1044, 1045, 1049), host blocked (1129), network (1158-1161),
# lock wait timeout and deadlock (1205, 1213), user limit (1226), read-only during a failover
# (1290, 1836), connection killed (1927), statement timeouts (1969, 3024), idle disconnect (4031).
MYSQL_CLIENT_ERRORS = range(2000, 3000)
MYSQL_OUTAGE_CODES = frozenset(
    {1040, 1044, 1045, 1049, 1053, 1129, 1158, 1159, 1160, 1161, 1203, 1205, 1213, 1226,
     1290, 1836, 1927, 1969, 3024, 4031}
)  # fmt: skip


def translate(exc: SQLAlchemyError) -> DatabaseError | None:
    """The data-layer exception for ``exc``, or None when it is a bug rather than a condition."""
    if isinstance(exc, IntegrityError):
        return ConflictError(CONFLICT_MESSAGE)
    if _is_outage(exc):
        # The driver's text names host and port, never the password.
        logger.warning("Database unavailable: %s", str(getattr(exc, "orig", exc)).strip())
        return UnavailableError(UNAVAILABLE_MESSAGE)
    return None


def _is_outage(exc: SQLAlchemyError) -> bool:
    """Lost or refused connections, timeouts, locks: conditions that pass with time."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        return exc.orig is None or _is_outage_code(exc.orig)
    return isinstance(exc, InterfaceError | DisconnectionError | PoolTimeoutError)


def _is_outage_code(error: BaseException) -> bool:
    """Whether a driver's OperationalError is an outage (psycopg2's and pyodbc's always are)."""
    sqlite_code = getattr(error, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return (sqlite_code & 0xFF) in SQLITE_OUTAGE_CODES  # the low byte is the primary code
    is_pymysql = type(error).__module__.startswith("pymysql") and error.args
    mysql_code = error.args[0] if is_pymysql else None
    if isinstance(mysql_code, int):
        return mysql_code in MYSQL_CLIENT_ERRORS or mysql_code in MYSQL_OUTAGE_CODES
    return True


@contextmanager
def translated_errors() -> Iterator[None]:
    """Raise the data-layer exception instead of SQLAlchemy's where one applies."""
    try:
        yield
    except SQLAlchemyError as exc:
        translated = translate(exc)
        if translated is None:
            raise
        raise translated from exc
