"""Accounts for tests: an administrator and the headers of its access token."""

from __future__ import annotations

import uuid

from flask import Flask

from auth.credentials import auth_state
from database.sql.identity import Role, User

ADMIN_ROLE = "admin"


def admin_headers(app: Flask) -> dict[str, str]:
    """``Authorization`` for a new administrator of ``app`` (its tables must exist)."""
    with app.app_context():
        role = Role.query.filter_by(name=ADMIN_ROLE).one_or_none() or Role(name=ADMIN_ROLE).insert()
        user = User(username=f"admin-{uuid.uuid4().hex[:8]}", password_hash="unused", roles=[role])
        user.insert()
        state = auth_state(app)
        if state.family_check is None:
            # Until login families exist, any access token's family counts as alive.
            state.family_check = lambda claims: None
        token = state.codec.issue_access(
            user.id, uuid.uuid4().hex, user.username, [ADMIN_ROLE], [], 900
        )
    return {"Authorization": f"Bearer {token}"}
