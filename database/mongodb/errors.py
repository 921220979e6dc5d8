"""pymongo's exceptions turned into the data layer's (database.errors), with safe messages."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pymongo.errors import ConnectionFailure, DuplicateKeyError

from database.errors import ConflictError, UnavailableError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

UNAVAILABLE = "MongoDB is unavailable; try again shortly."


def conflict_message(error: DuplicateKeyError) -> str:
    """Name the clashing fields (never their values: they may be personal data)."""
    key_value = (error.details or {}).get("keyValue") or {}
    fields = ", ".join(sorted(str(name) for name in key_value)) or "unique key"
    return f"A document with the same {fields} already exists; choose another value."


def translated(method: Callable[P, R]) -> Callable[P, R]:
    """Raise ConflictError for duplicate keys and UnavailableError for an unreachable server."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except DuplicateKeyError as exc:
            raise ConflictError(conflict_message(exc)) from exc
        except ConnectionFailure as exc:
            # Server selection timeouts, refused connections, network timeouts, failovers.
            logger.warning("MongoDB unavailable: %s", type(exc).__name__)
            raise UnavailableError(UNAVAILABLE) from exc

    return wrapper
