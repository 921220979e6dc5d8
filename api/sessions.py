"""Server-side sessions (Flask-Session): a file store under instance/ or Redis."""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, Request, Response
from flask.sessions import SessionInterface
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.sansio.http import parse_cookie

if TYPE_CHECKING:
    from flask_session.base import ServerSideSession, ServerSideSessionInterface

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


def _mark_changed(session: Any) -> None:
    """A session's ``on_update``: what Flask-Session's own closure does, made once."""
    session.modified = True
    session.accessed = True


class LazySid:
    """Mixin for a session class: the id is drawn when first read, not for every request.

    A request without a session cookie gets a new, empty session that is almost never saved
    (only a login or a token issue writes one), so drawing 32 random bytes for it up front was
    wasted on every anonymous call. The session is also built in one call: Flask-Session's
    constructor went through seven (its own, werkzeug's ``CallbackDict``, a closure made per
    session, the ``permanent`` setter and the change callback it fires), about 1.5 us of every
    request.
    """

    _sid: str | None = None
    sid_length = 32

    def __init__(
        self,
        initial: dict[str, Any] | None = None,
        sid: str | None = None,
        permanent: bool | None = None,
    ) -> None:
        """The state ``ServerSideSession.__init__`` leaves, set directly."""
        data = cast("dict[str, Any]", self)  # a dict: the class is mixed into a dict subclass
        dict.__init__(data, initial or ())
        self.on_update = _mark_changed
        self._sid = sid
        if permanent:
            dict.__setitem__(data, "_permanent", True)
        self.modified = False
        self.accessed = False

    @property
    def sid(self) -> str:
        """The session id, drawn on first use."""
        if self._sid is None:
            self._sid = secrets.token_urlsafe(self.sid_length)
        return self._sid

    @sid.setter
    def sid(self, value: str | None) -> None:
        self._sid = value


def lean(interface_class: type[ServerSideSessionInterface]) -> type[Any]:
    """A Flask-Session interface class that does no work on the paths that write nothing.

    Same store, cookie and ``Vary`` as Flask-Session, with three savings on every request:
    the cookie is read from the one Cookie header without building ``request.cookies``; a
    new session's id is drawn only when the session is saved (``LazySid``); and a session that
    is neither changed nor refreshed (``SESSION_REFRESH_EACH_REQUEST``) is not handed to
    Flask-Session's ``save_session``, which computes the cookie's domain, path and name first.
    """

    class Lean(interface_class):
        def __init__(self, app: Flask, **kwargs: Any) -> None:
            # Session ids are never signed here (use_signer stays False): open_session reads
            # the cookie's value as the id.
            super().__init__(app, **kwargs)
            base = interface_class.session_class
            self.session_class = type(
                f"Lazy{base.__name__}", (LazySid, base), {"sid_length": self.sid_length}
            )
            self.cookie_name = app.config["SESSION_COOKIE_NAME"]

        def open_session(self, app: Flask, request: Request) -> ServerSideSession:
            """The stored session named by the cookie, else a new empty one."""
            sid = cookie_value(request.environ.get("HTTP_COOKIE"), self.cookie_name)
            if sid:
                data = self._retrieve_session_data(self._get_store_id(sid))
                if data is not None:
                    return self.session_class(data, sid=sid)
            # No cookie, or one naming no stored session: a new id (drawn when saved), never
            # the client's, so a planted id cannot become someone's session.
            return self.session_class(permanent=self.permanent)

        def save_session(self, app: Flask, session: ServerSideSession, response: Response) -> None:
            """Write (or delete) the session when it changed; otherwise only add ``Vary``."""
            if session.modified or (app.config["SESSION_REFRESH_EACH_REQUEST"] and session):
                super().save_session(app, session, response)
            elif session.accessed:
                vary_on_cookie(response)

    Lean.__name__ = Lean.__qualname__ = f"Lean{interface_class.__name__}"
    return Lean


# Characters after which werkzeug's cookie parser must decide (quotes, separators, spaces).
NEEDS_PARSER = re.compile(r'[ \t";]')


def cookie_value(header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a Cookie header, exactly as ``request.cookies`` has it.

    A WSGI request has at most one Cookie header, which is what ``request.cookies`` parses
    too, without going through every header of the environ first. An API client usually sends
    the session cookie alone: ``name=value`` with a plain value is read directly; any other
    header goes to werkzeug's parser (a MultiDict: the first of repeated names wins).
    """
    if not header:
        return None
    if header.startswith(name) and header[len(name) : len(name) + 1] == "=":
        plain = header[len(name) + 1 :]
        if not NEEDS_PARSER.search(plain):
            return plain
    value = parse_cookie(header).get(name)
    return value if isinstance(value, str) else None


def vary_on_cookie(response: Response) -> None:
    """``Vary: Cookie``, as Flask-Session adds it, without parsing an absent Vary header."""
    if response.headers.getlist("Vary"):
        response.vary.add("Cookie")
    else:
        response.headers.add("Vary", "Cookie")


def _file_sessions(app: Flask) -> SessionInterface:
    """cachelib's file store in instance/sessions, files readable by this user only."""
    from cachelib.file import FileSystemCache
    from flask_session.cachelib import CacheLibSessionInterface

    directory = os.path.join(app.instance_path, SESSION_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    store = FileSystemCache(directory, threshold=FILE_STORE_THRESHOLD, mode=0o600)
    interface: SessionInterface = lean(CacheLibSessionInterface)(app, client=store)
    return interface


def _redis_sessions(app: Flask) -> SessionInterface:
    """Redis with short timeouts and a tracked local cache; store failures become 503."""
    import redis
    from flask_session.redis import RedisSessionInterface

    from api.session_cache import SessionCache
    from auth.tracked_cache import redis_client

    class RedisSessions(lean(RedisSessionInterface)):  # type: ignore[misc]
        """Flask-Session's Redis store, read through ``SessionCache``, errors answered as 503."""

        def _retrieve_session_data(self, store_id: str) -> dict[str, object] | None:
            cached = cache.get(store_id)
            if cached is not None:
                return cached
            # Absent sessions are not cached: made-up ids would push out real ones.
            stamp = cache.stamp()
            try:
                data = super()._retrieve_session_data(store_id)
            except redis.RedisError as exc:
                raise ServiceUnavailable(STORE_DOWN) from exc
            if data is not None:
                cache.put(store_id, data, stamp)
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

    client = redis_client(app)
    assert client is not None  # the settings refuse SESSION_TYPE=redis without REDIS_URL
    interface = RedisSessions(app, client=client, key_prefix=KEY_PREFIX)
    cache = SessionCache(client, KEY_PREFIX)
    app.extensions["session_redis"] = client
    app.extensions["session_cache"] = cache
    return interface
