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
# SQLite reports mistakes in the SQL as OperationalError too; those are bugs (500), not outages.
SQLITE_PROGRAMMING_ERRORS = ("no such table", "no such column", "syntax error", "has no column")


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
        text = str(exc.orig).lower()
        return not any(marker in text for marker in SQLITE_PROGRAMMING_ERRORS)
    return isinstance(exc, InterfaceError | DisconnectionError | PoolTimeoutError)


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
