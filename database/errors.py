"""Exceptions shared by both data layers; ``api.errorhandler`` maps them to HTTP statuses."""

from __future__ import annotations


class DatabaseError(Exception):
    """Base class of every error the data layer raises on purpose."""


class NotFoundError(DatabaseError):
    """The requested record does not exist (HTTP 404)."""


class ConflictError(DatabaseError):
    """The write clashes with existing data, e.g. a unique key (HTTP 409).

    ``fields`` names the attributes whose values are taken, when known, so that a form can
    show the message next to the right field.
    """

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


class UnavailableError(DatabaseError):
    """The database server cannot be reached or timed out (HTTP 503)."""


class ConfigurationError(DatabaseError):
    """The database settings are wrong or a driver is missing; the message says what to do."""
