"""Exceptions shared by both data layers; ``api.errorhandler`` maps them to HTTP statuses."""

from __future__ import annotations


class DatabaseError(Exception):
    """Base class of every error the data layer raises on purpose."""


class NotFoundError(DatabaseError):
    """The requested record does not exist (HTTP 404)."""


class ConflictError(DatabaseError):
    """The write clashes with existing data, e.g. a unique key (HTTP 409)."""


class UnavailableError(DatabaseError):
    """The database server cannot be reached or timed out (HTTP 503)."""


class ConfigurationError(DatabaseError):
    """The database settings are wrong or a driver is missing; the message says what to do."""
