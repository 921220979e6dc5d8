"""User administration (role ``admin``): list, create, read, change, delete, password, roles."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, jsonify, url_for
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.routes.auth import MAX_SECRET_INPUT
from api.validation import PageQuery, operation, page_response
from auth import users
from auth.auth import role_required
from database.sql.identity import User

users_bp = Blueprint("users", __name__, url_prefix="/api/users")

admin_only = role_required([users.ADMIN_ROLE])
Password = Field(min_length=1, max_length=MAX_SECRET_INPUT)
RoleNames: list[str] = Field(default_factory=list, max_length=100)


class UserQuery(PageQuery):
    """``?q=&page=&per_page=``: ``q`` searches usernames and emails."""

    q: str | None = Field(default=None, max_length=254)


class UserCreate(BaseModel):
    """Body of POST /api/users."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=254)
    password: str = Password
    email: str | None = Field(default=None, max_length=254)
    roles: list[str] = RoleNames
    is_active: bool = True


class UserUpdate(BaseModel):
    """Body of PATCH /api/users/<id>: the fields to change (``email: null`` removes it)."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(default=None, min_length=1, max_length=254)
    email: str | None = Field(default=None, max_length=254)
    is_active: bool | None = None

    @model_validator(mode="after")
    def has_a_field(self) -> UserUpdate:
        """An empty body changes nothing and is most likely a mistake."""
        if not self.model_fields_set:
            raise ValueError("Send at least one of the fields username, email or is_active.")
        for name in ("username", "is_active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; leave it out to keep it.")
        return self


class PasswordSet(BaseModel):
    """Body of PUT /api/users/<id>/password."""

    model_config = ConfigDict(extra="forbid")

    password: str = Password


class RolesSet(BaseModel):
    """Body of PUT /api/users/<id>/roles: the complete list of role names."""

    model_config = ConfigDict(extra="forbid")

    roles: list[str] = RoleNames


class UserOut(BaseModel):
    """A user as the API returns it (never the password hash)."""

    id: str
    username: str
    email: str | None
    is_active: bool
    roles: list[str]
    scopes: list[str]
    created: datetime
    modified: datetime
    last_login: datetime | None


class UserPage(BaseModel):
    """One page of users."""

    items: list[UserOut]
    page: int
    per_page: int
    total: int


def user_json(user: User) -> dict[str, object]:
    """Serialise a user through its output schema."""
    return UserOut(
        id=user.id,
        username=user.username,
        email=user.email,
        is_active=user.is_active,
        roles=sorted(user.role_names),
        scopes=sorted(user.scope_set),
        created=user.created,
        modified=user.modified,
        last_login=user.last_login,
    ).model_dump(mode="json")


@users_bp.get("")
@admin_only
@operation(responses={200: UserPage, 304: None})
def list_users(query: UserQuery) -> Response:
    """One page of users by username, with the total; ``q`` filters."""
    found, total = users.list_users(query.q, query.offset, query.per_page)
    return page_response(query, found, total, user_json)


@users_bp.post("")
@admin_only
@operation(responses={201: UserOut}, errors=(409,))
def create_user(body: UserCreate) -> tuple[Response, int, dict[str, str]]:
    """Create a user: 201 with its Location; 409 when the username or email is taken."""
    user = users.create_user(
        body.username, body.password, email=body.email, roles=body.roles, is_active=body.is_active
    )
    return jsonify(user_json(user)), 201, {"Location": url_for("users.get_user", user_id=user.id)}


@users_bp.get("/<user_id>")
@admin_only
@operation(responses={200: UserOut})
def get_user(user_id: str) -> Response:
    """One user, or 404."""
    return jsonify(user_json(users.get_user(user_id)))


@users_bp.patch("/<user_id>")
@admin_only
@operation(responses={200: UserOut}, errors=(409,))
def update_user(user_id: str, body: UserUpdate) -> Response:
    """Change username, email or is_active; renaming or deactivating ends the user's logins."""
    fields = body.model_fields_set
    user = users.update_user(
        users.get_user(user_id),
        username=body.username,
        email=body.email,
        clear_email="email" in fields and body.email is None,
        is_active=body.is_active,
    )
    return jsonify(user_json(user))


@users_bp.delete("/<user_id>")
@admin_only
@operation(responses={204: None}, errors=(409,))
def delete_user(user_id: str) -> tuple[str, int]:
    """Delete a user and end their logins: 204; 404; 409 for the last active admin."""
    users.delete_user(users.get_user(user_id))
    return "", 204


@users_bp.put("/<user_id>/password")
@admin_only
@operation(responses={204: None})
def set_password(user_id: str, body: PasswordSet) -> tuple[str, int]:
    """Set a user's password (policy applies); every login of the user ends."""
    users.set_password(users.get_user(user_id), body.password)
    return "", 204


@users_bp.put("/<user_id>/roles")
@admin_only
@operation(responses={200: UserOut}, errors=(409,))
def set_roles(user_id: str, body: RolesSet) -> Response:
    """Replace a user's roles (their logins end); 409 when that leaves no active admin."""
    return jsonify(user_json(users.set_roles(users.get_user(user_id), body.roles)))
