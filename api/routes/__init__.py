"""Blueprints: each module holds one group of routes; register them all here."""

from __future__ import annotations

from flask import Flask

from api.routes.api_keys import api_keys_bp, api_keys_cli
from api.routes.auth import auth_bp
from api.routes.items import items_bp
from api.routes.main import main_bp
from api.routes.notes import notes_bp
from api.routes.principals import principals_bp
from api.routes.users import users_bp


def register_blueprints(app: Flask) -> None:
    """Attach every blueprint to the app."""
    app.register_blueprint(main_bp)
    app.register_blueprint(items_bp)
    app.register_blueprint(notes_bp)
    app.register_blueprint(api_keys_bp)
    app.register_blueprint(principals_bp)
    app.cli.add_command(api_keys_cli)
    app.register_blueprint(auth_bp)
    app.register_blueprint(users_bp)
