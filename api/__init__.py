"""Application factory: ``flask run`` (FLASK_APP=api) and gunicorn call ``create_app()``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask import Request as FlaskRequest
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

import auth.apikeys
import auth.auth
import auth.issuers
from api import admin, cli, ops, sessions
from api.errorhandler import set_handler
from api.ops import logs, register_check, requestid
from api.ops.monitoring import monitoring_bp
from api.routes import docs, register_blueprints
from api.settings import (
    DEVELOPMENT,
    SETTINGS_BY_NAME,
    ConfigError,
    load_or_create_secret_key,
    load_settings,
    read_environment,
)
from auth import families
from auth.principal import current_subject
from database.sql import create_tables_on_first_request, db_create_all, ping_check, setup_sql_db
from database.sql.models import set_actor_provider
from database.sql.urls import with_database

__all__ = ["ConfigError", "create_app"]

ENSURE_SYNC_CACHE = 4096


class ApiRequest(FlaskRequest):
    """Request whose JSON failures are short sentences (no parser internals)."""

    def on_json_loading_failed(self, e: ValueError | None) -> object:
        """400 for a body that is not JSON, 415 when it is not sent as JSON."""
        if e is None:
            raise UnsupportedMediaType(
                "Send the body as JSON with the header 'Content-Type: application/json'."
            )
        raise BadRequest("The request body is not valid JSON.")

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """As Flask's, but a body nested too deeply for the parser is not JSON either (not a 500).

        Python's parser raises RecursionError, not ValueError, for a few thousand nested
        brackets; werkzeug only catches ValueError.
        """
        try:
            return super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            if silent:
                return None
            return self.on_json_loading_failed(ValueError("nested too deeply"))


class ApiFlask(Flask):
    """Flask, with the sync wrapper of each hook and view looked up once, not per request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's answer for ``func``, remembered (Flask asks for every hook on every request).

        Only the app's registered functions (views, hooks, error handlers) come here; the
        cache holds at most ``ENSURE_SYNC_CACHE`` of them, in case an extension passes new
        callables each time.
        """
        known = self._sync_functions.get(func)
        if known is None:
            known = super().ensure_sync(func)
            if len(self._sync_functions) < ENSURE_SYNC_CACHE:
                self._sync_functions[func] = known
        return known


def create_app(
    test_config: Mapping[str, object] | None = None, test_database: str | None = None
) -> Flask:
    """Build the app from the environment (and .env), or from ``test_config`` in tests.

    Keys of ``test_config`` that are setting names replace the environment's values (and
    .env is not read); other keys go straight into ``app.config``. ``test_database`` names
    the database to use on the configured servers, as the original project's tests did: the
    SQL database (created now, with its tables, if missing) and, when MONGO_URI is set, the
    default MongoDB database.
    """
    overrides = dict(test_config or {})
    environ: dict[str, object] = dict(read_environment(use_dotenv=test_config is None))
    environ.update({k: v for k, v in overrides.items() if k in SETTINGS_BY_NAME})
    config = load_settings(environ)
    if test_database is not None:
        config["DATABASE_URL"] = with_database(str(config["DATABASE_URL"]), test_database)
        config["MONGO_DB"] = test_database

    instance_path = str(config.pop("INSTANCE_PATH") or "")
    app = ApiFlask(
        __name__,
        instance_path=os.path.abspath(instance_path) if instance_path else None,
        instance_relative_config=True,
    )
    app.request_class = ApiRequest
    app.config.update(config)
    app.config.update({k: v for k, v in overrides.items() if k not in SETTINGS_BY_NAME})
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = load_or_create_secret_key(Path(app.instance_path))
    # Unhandled errors go through our handler (a logged, detail-free 500), also under TESTING.
    app.config["PROPAGATE_EXCEPTIONS"] = False

    logs.init_app(app)
    set_handler(app)
    sessions.init_app(app)
    auth.auth.init_app(app)
    _init_issuers(app)
    _configure_cors(app)
    # Data layers and operations batteries are initialised here.
    _init_sql(app, create_now=test_database is not None)
    _init_accounts(app)
    _init_mongodb(app)
    auth.apikeys.init_app(app)
    ops.init_app(app)
    register_blueprints(app)
    admin.init_app(app)
    docs.init_app(app)  # last: the OpenAPI document describes every route registered above
    return app


def _init_sql(app: Flask, create_now: bool = False) -> None:
    """The SQL database from DATABASE_URL (default: SQLite in instance/), with its health check.

    To choose the database in code instead, pass it here, e.g.
    ``setup_sql_db(app, dbtype=DBType.POSTGRESQL, username=..., password=..., host=...,
    database_name=...)``; DATABASE_URL still wins when it is set.
    """
    setup_sql_db(app)
    # Identifier columns (created_by, modified_by) name the request's Principal.
    set_actor_provider(current_subject)
    create_tables = app.config["SQL_CREATE_TABLES"]
    if create_tables is None:
        create_tables = app.config["APP_ENV"] == DEVELOPMENT and not app.testing
    if create_tables:
        create_tables_on_first_request(app, exempt_blueprints=(monitoring_bp.name,))
    if create_now:
        with app.app_context():
            db_create_all()
    register_check(app, "sql", ping_check(app))


def _init_accounts(app: Flask) -> None:
    """Users' logins: the family check behind access tokens, and the account commands."""
    families.init_app(app)
    cli.init_app(app)


def _init_issuers(app: Flask) -> None:
    """Third-party tokens (TOKEN_ISSUERS), each JWKS issuer's key set checked as jwks:<name>."""
    verifier = auth.issuers.init_app(app)
    if verifier is not None:
        for name, key_set in verifier.key_sets.items():
            register_check(app, f"jwks:{name}", key_set.check)


def _init_mongodb(app: Flask) -> None:
    """MongoDB from MONGO_URI, with its health check; without it the Mongo routes answer 503.

    To configure it in code instead, call ``setup_mongodb(app, host=..., username=...,
    password=..., database_name=...)`` here; MONGO_URI still wins when it is set.
    """
    if not app.config["MONGO_URI"]:
        return
    from database.mongodb import setup_mongodb

    helper = setup_mongodb(app)
    register_check(app, "mongodb", helper.ping)


# What a browser app on another origin may send (credentials, JSON bodies, conditional
# writes and reads) and read back (besides the headers every browser lets it read).
CORS_REQUEST_HEADERS = (
    "Authorization", "Content-Type", "X-Api-Key", "If-Match", "If-None-Match", requestid.HEADER,
)  # fmt: skip
CORS_RESPONSE_HEADERS = (
    requestid.HEADER, "ETag", "Location", "Retry-After", "Deprecation", "Sunset", "Link",
)  # fmt: skip


def _configure_cors(app: Flask) -> None:
    """CORS only for the listed origins; no CORS headers at all when none are set."""
    origins = app.config["CORS_ORIGINS"]
    if not origins:
        return
    from flask_cors import CORS

    CORS(
        app,
        origins=list(origins),
        supports_credentials=app.config["CORS_ALLOW_CREDENTIALS"],
        allow_headers=list(CORS_REQUEST_HEADERS),
        expose_headers=list(CORS_RESPONSE_HEADERS),
    )
