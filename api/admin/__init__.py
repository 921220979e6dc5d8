"""Admin web pages at /admin: users, roles, logins, API keys and the stored access log.

Server-rendered HTML that works without JavaScript; every change is a POST carrying a CSRF
token (Flask-WTF); the pages have their own strict Content-Security-Policy (scripts and
styles from this app only) and call the same services as the API and the CLI. They are left
out of the OpenAPI document (a ``PageBlueprint``): they are for people, the API for programs.
"""

from __future__ import annotations

from flask import Flask

__all__ = ["init_app"]


# The before_request hook Flask-WTF's CSRFProtect.init_app registers for the whole app.
CSRF_APP_HOOK = "CSRFProtect.init_app.<locals>.csrf_protect"


def init_app(app: Flask) -> None:
    """Mount the pages at /admin with CSRF protection for their forms only."""
    # Imported here, not at the top: the pages use api.errorhandler, which may only be
    # imported after api.ops (they import each other), and create_app has loaded both by now.
    from api.admin import views  # noqa: F401 (registers the routes on the blueprint)
    from api.admin.blueprint import admin_bp, csrf, routing_error

    # The JSON API takes bearer tokens and API keys, which a browser never sends by itself,
    # so only the admin pages (cookie sessions) check CSRF tokens: require_admin calls
    # csrf.protect() for them; nothing is checked app-wide.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    # With the default check off, the app-wide hook init_app adds returns at once on every
    # request; removing it spares every API call a hook dispatch.
    app_hooks = app.before_request_funcs.get(None, [])
    app_hooks[:] = [hook for hook in app_hooks if hook.__qualname__ != CSRF_APP_HOOK]
    app.register_blueprint(admin_bp)
    for status in (404, 405):
        app.register_error_handler(status, routing_error)
