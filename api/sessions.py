"""Server-side sessions (Flask-Session): a file store under instance/ or Redis."""

from __future__ import annotations

import os
from datetime import timedelta

from flask import Flask
from flask.sessions import SessionInterface
from werkzeug.exceptions import ServiceUnavailable

SESSION_DIR = "sessions"
STORE_DOWN = "The session store is unavailable; try again shortly."
KEY_PREFIX = "session:"
FILE_STORE_THRESHOLD = 10_000


def init_app(app: Flask) -> None:
    """Configure the session cookie and install the store chosen by SESSION_TYPE."""
    app.config.update(
        SESSION_PERMANENT=True,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=app.config["SESSION_LIFETIME_SECONDS"]),
        # Saving an unchanged session on every request would double the store traffic of
        # every authenticated call; it is written when it changes.
        SESSION_REFRESH_EACH_REQUEST=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["APP_ENV"] == "production",
    )
    if app.config["SESSION_TYPE"] == "redis":
        app.session_interface = _redis_sessions(app)
    else:
        app.session_interface = _file_sessions(app)


def _file_sessions(app: Flask) -> SessionInterface:
    """cachelib's file store in instance/sessions, files readable by this user only."""
    from cachelib.file import FileSystemCache
    from flask_session.cachelib import CacheLibSessionInterface

    directory = os.path.join(app.instance_path, SESSION_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    store = FileSystemCache(directory, threshold=FILE_STORE_THRESHOLD, mode=0o600)
    return CacheLibSessionInterface(app, client=store)


def _redis_sessions(app: Flask) -> SessionInterface:
    """Redis with short timeouts and a tracked local cache; store failures become 503."""
    import redis
    from flask_session.redis import RedisSessionInterface

    from api.session_cache import SessionCache

    class RedisSessions(RedisSessionInterface):
        """Flask-Session's Redis store, read through ``SessionCache``, errors answered as 503."""

        def _retrieve_session_data(self, store_id: str) -> dict[str, object] | None:
            cached = cache.get(store_id)
            if cached is not None:
                return cached
            try:
                data = super()._retrieve_session_data(store_id)
            except redis.RedisError as exc:
                raise ServiceUnavailable(STORE_DOWN) from exc
            if data is not None:
                cache.put(store_id, data)
            return data

        def _upsert_session(self, lifetime, session, store_id: str) -> None:
            cache.evict(store_id)
            try:
                super()._upsert_session(lifetime, session, store_id)
            except redis.RedisError as exc:
                raise ServiceUnavailable(STORE_DOWN) from exc

        def _delete_session(self, store_id: str) -> None:
            cache.evict(store_id)
            try:
                super()._delete_session(store_id)
            except redis.RedisError as exc:
                raise ServiceUnavailable(STORE_DOWN) from exc

    client = redis.Redis.from_url(
        app.config["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2
    )
    interface = RedisSessions(app, client=client, key_prefix=KEY_PREFIX)
    cache = SessionCache(client, KEY_PREFIX)
    app.extensions["session_redis"] = client
    app.extensions["session_cache"] = cache
    return interface
