"""``setup_mongodb``: one lazily connecting client per process, attached as ``app.mongo``."""

from __future__ import annotations

import atexit
import logging
from typing import Any
from urllib.parse import quote_plus

from flask import Flask
from pymongo import MongoClient
from pymongo.errors import ConfigurationError as PyMongoConfigurationError
from pymongo.uri_parser import parse_uri

from database.errors import ConfigurationError
from database.hosts import join_host_port, split_host_port
from database.mongodb.helper import DEFAULT_FIND_LIMIT, MongoHelper
from database.mongodb.json import MongoJSONProvider

logger = logging.getLogger(__name__)

EXTENSION = "mongodb"
SCHEMES = ("mongodb://", "mongodb+srv://")
DEFAULT_DATABASE = "app"
DEFAULT_TIMEOUT_MS = 2000


def build_uri(
    host: str,
    username: str | None = None,
    password: str | None = None,
    port: int | None = None,
    database_name: str | None = None,
) -> str:
    """A connection string with escaped credentials.

    ``host`` may start with ``mongodb+srv://`` (DNS seed list, no port) or ``mongodb://``;
    a bare host name means ``mongodb://``. It may carry ports (``"h:27017"``) and list
    several hosts (``"h1:27017,h2:27017"``); ``port`` goes to hosts written without one.
    """
    scheme = "mongodb://"
    for prefix in SCHEMES:
        if host.startswith(prefix):
            scheme, host = prefix, host[len(prefix) :]
    host = host.rstrip("/")
    if not host:
        raise ConfigurationError("MongoDB host is empty; give a host name, e.g. 127.0.0.1.")
    hosts = [split_host_port(part, port) for part in host.split(",")]
    if scheme == "mongodb+srv://" and any(number is not None for _, number in hosts):
        raise ConfigurationError(
            "mongodb+srv:// addresses take no port; leave the port out of host and port."
        )
    host = ",".join(join_host_port(name, number) for name, number in hosts)
    credentials = ""
    if username:
        credentials = quote_plus(username)
        if password is not None:
            credentials += ":" + quote_plus(password)
        credentials += "@"
    return f"{scheme}{credentials}{host}/{quote_plus(database_name or '')}"


def _check_uri(uri: str) -> str | None:
    """Validate the URI; return the database named in it, if any. Never echoes the URI."""
    if not uri.startswith(SCHEMES):
        raise ConfigurationError(
            "MONGO_URI must start with mongodb:// or mongodb+srv://, "
            "e.g. mongodb://127.0.0.1:27017/app."
        )
    if uri.startswith("mongodb+srv://"):
        return None  # parsing would resolve DNS now; pymongo checks it when connecting
    try:
        parsed = parse_uri(uri)
    except (PyMongoConfigurationError, ValueError) as exc:
        raise ConfigurationError(
            "MONGO_URI is not a valid MongoDB connection string; check its host, port and "
            "that special characters in the user name and password are percent-encoded."
        ) from exc
    database: str | None = parsed.get("database")
    return database


def setup_mongodb(
    app: Flask,
    username: str | None = None,
    password: str | None = None,
    host: str | None = None,
    database_name: str | None = None,
    port: int | None = None,
    uri: str | None = None,
    **client_options: Any,
) -> MongoHelper:
    """Create the client (no connection or write yet) and attach the helper as ``app.mongo``.

    ``MONGO_URI`` in the settings wins over the arguments, so a deployment can point the app
    elsewhere without a code change; ``MONGO_DB`` likewise names the default database.
    ``client_options`` go to ``MongoClient`` (e.g. ``tls=True``, ``maxPoolSize=50``).
    """
    if EXTENSION in app.extensions:
        raise RuntimeError(
            "setup_mongodb(app) was already called for this app; call it once per app."
        )
    configured_uri = str(app.config.get("MONGO_URI") or "")
    if configured_uri:
        uri = configured_uri
    elif uri is None:
        if host is None:
            raise ConfigurationError(
                "MongoDB is not configured: set MONGO_URI (e.g. mongodb://127.0.0.1:27017/app) "
                "or pass host= to setup_mongodb."
            )
        uri = build_uri(host, username, password, port, database_name)
    uri_database = _check_uri(uri)
    database = (
        str(app.config.get("MONGO_DB") or "") or database_name or uri_database or DEFAULT_DATABASE
    )
    timeout_ms = int(app.config.get("MONGO_TIMEOUT_MS") or DEFAULT_TIMEOUT_MS)
    options: dict[str, Any] = {
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "socketTimeoutMS": timeout_ms * 5,
        "connect": False,  # nothing happens at start-up; safe to fork afterwards
        "appname": app.import_name,
        "tz_aware": True,
    }
    options.update(client_options)
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, **options)
    except PyMongoConfigurationError as exc:
        raise ConfigurationError(
            f"MongoDB client options were refused: {type(exc).__name__}; check MONGO_URI "
            "and the options passed to setup_mongodb."
        ) from exc
    limit = int(app.config.get("MONGO_FIND_LIMIT") or DEFAULT_FIND_LIMIT)
    helper = MongoHelper(client, database, limit)
    app.extensions[EXTENSION] = helper
    app.mongo = helper  # type: ignore[attr-defined]
    app.json = MongoJSONProvider(app)
    atexit.register(client.close)
    logger.info("MongoDB configured (database %s).", database)
    return helper
