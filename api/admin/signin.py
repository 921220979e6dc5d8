"""Who is using the admin pages: an administrator's login kept in the server-side session.

The admin pages share the app's server-side session (Flask-Session, cookie ``session``:
HttpOnly, SameSite=Lax, Secure in production) with the API's session tokens. Logging in
regenerates the session id (no fixation) and starts a login of the user's, a refresh-token
family that hands out no token, whose id the session keeps with the user's id. Every admin
request checks that login and the user's admin role in the database, so a logout, a password
or role change, a deactivation or "revoke all logins" ends the browser session too.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, request, session
from flask_session.base import ServerSideSessionInterface

from auth import families, users
from auth.principal import USER, Principal
from database.errors import NotFoundError
from database.sql.identity import User

ADMIN_USER = "admin_user"
ADMIN_LOGIN = "admin_login"
CSRF_TOKEN = "csrf_token"  # noqa: S105 (Flask-WTF's key in the session, not a secret)


class NotAnAdministrator(PermissionError):
    """A signed-in user who lacks the admin role (a 403 page)."""


def sign_in(user: User) -> None:
    """Start an admin session for ``user`` (already authenticated, with the admin role)."""
    _new_session_id()
    # A fresh CSRF token for the new privilege level.
    session.pop(CSRF_TOKEN, None)
    lifetime = timedelta(seconds=int(current_app.config["SESSION_LIFETIME_SECONDS"]))
    session[ADMIN_LOGIN] = families.start_login(
        user, lifetime, request.user_agent.string, request.remote_addr
    )
    session[ADMIN_USER] = user.id


def sign_out() -> None:
    """End the admin session: its login is revoked and the session id replaced."""
    login_id = session.pop(ADMIN_LOGIN, None)
    session.pop(ADMIN_USER, None)
    session.pop(CSRF_TOKEN, None)
    if isinstance(login_id, str):
        families.revoke_family(login_id, families.LOGOUT)
    _new_session_id()


def current_login_id() -> str | None:
    """The id of this browser's admin login, if any (to mark it in the logins list)."""
    login_id = session.get(ADMIN_LOGIN)
    return login_id if isinstance(login_id, str) else None


def signed_in_admin() -> User | None:
    """The administrator of this session, or None when no live admin login is in it.

    Raises ``NotAnAdministrator`` for a live login whose user lost the admin role. Sets the
    request's Principal, so that the access log, rate limits and ``created_by`` name the
    administrator.
    """
    user_id, login_id = session.get(ADMIN_USER), current_login_id()
    if not isinstance(user_id, str) or login_id is None:
        return None
    user = _live_user(user_id, login_id)
    if user is None:
        session.pop(ADMIN_USER, None)
        session.pop(ADMIN_LOGIN, None)
        return None
    if users.ADMIN_ROLE not in user.role_names:
        raise NotAnAdministrator(
            f"{user.username} no longer has the {users.ADMIN_ROLE} role; these pages are for "
            "administrators."
        )
    g.principal = Principal(
        kind=USER,
        subject=user.id,
        roles=user.role_names,
        scopes=user.scope_set,
        issuer=str(current_app.config["TOKEN_ISSUER"]),
        credential_id=login_id,
        name=user.username,
    )
    return user


def _live_user(user_id: str, login_id: str) -> User | None:
    """The active user behind a login that is still alive, else None."""
    if not families.login_alive(login_id):
        return None
    try:
        user = users.get_user(user_id)
    except NotFoundError:
        return None
    return user if user.is_active else None


def _new_session_id() -> None:
    """Give the session a new id and delete the stored old one (Flask-Session 0.8)."""
    interface = current_app.session_interface
    if not isinstance(interface, ServerSideSessionInterface):
        raise RuntimeError("The admin pages need the server-side session (api.sessions).")
    interface.regenerate(session)
