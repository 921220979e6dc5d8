"""API keys over HTTP (administrators: /api/api-keys; users, their own: /api/auth/api-keys)
and on the command line (``flask api-keys create|list|revoke``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import click
from flask import Blueprint, Response, jsonify
from flask.cli import AppGroup
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.cli import explained
from api.errorhandler import RequestValidationError
from api.ops.accesslog import parse_age
from api.validation import operation
from auth.apikeys import ApiKeyError, IssuedKey, api_keys
from auth.auth import require_principal
from auth.policies import protected_route
from auth.users import ADMIN_ROLE, find_user
from database.sql.identity import ApiKey, User

api_keys_bp = Blueprint("api_keys", __name__)

Scopes: list[str] = Field(default_factory=list, max_length=50)
ExpiresDays = Field(default=None, ge=1, le=3650)


class OwnKeyCreate(BaseModel):
    """Body of POST /api/auth/api-keys: a key for the caller."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Scopes
    expires_in_days: int | None = ExpiresDays


class KeyCreate(OwnKeyCreate):
    """Body of POST /api/api-keys: a key for a user (``owner``) or a service (``service``)."""

    owner: str | None = Field(default=None, min_length=1, max_length=150)
    service: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def one_owner(self) -> KeyCreate:
        """Exactly one of owner and service."""
        if (self.owner is None) == (self.service is None):
            raise ValueError("Send exactly one of owner (a username) or service (a name).")
        return self


class KeyListQuery(BaseModel):
    """``?owner=<username>&include_revoked=true`` for GET /api/api-keys."""

    model_config = ConfigDict(extra="forbid")

    owner: str | None = Field(default=None, min_length=1, max_length=150)
    include_revoked: bool = False


class KeyOut(BaseModel):
    """An API key as the API shows it: never its secret or hash."""

    id: str
    name: str
    owner: str | None
    service: str | None
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyList(BaseModel):
    """Keys, newest first."""

    api_keys: list[KeyOut]


class KeyCreated(KeyOut):
    """A key just created: ``key`` is the full key, shown this once."""

    key: str


def key_json(record: ApiKey) -> dict[str, object]:
    """Serialise a key through its output schema."""
    out = KeyOut(
        id=record.id,
        name=record.name,
        owner=record.owner.username if record.owner is not None else None,
        service=record.owner_service,
        scopes=sorted(record.scope_set),
        created_at=record.created_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        last_used_at=record.last_used_at,
    )
    return out.model_dump(mode="json")


def created(issued: IssuedKey) -> tuple[Response, int, dict[str, str]]:
    """201 with the key itself, shown this once; never cached."""
    body = {**key_json(issued.record), "key": issued.secret}
    return jsonify(body), 201, {"Cache-Control": "no-store"}


def calling_user() -> User:
    """The user behind the request's user token."""
    return User.get_or_raise(require_principal().subject)


def lifetime(days: int | None) -> timedelta | None:
    """The requested lifetime, or None for the default."""
    return timedelta(days=days) if days is not None else None


# --- a user's own keys -----------------------------------------------------------------------


@api_keys_bp.get("/api/auth/api-keys")
@protected_route(credentials="user")
@operation(responses={200: KeyList})
def list_own_keys() -> Response:
    """The caller's keys that are not revoked."""
    return jsonify(api_keys=[key_json(k) for k in api_keys().listed(owner=calling_user())])


@api_keys_bp.post("/api/auth/api-keys")
@protected_route(credentials="user")
@operation(responses={201: KeyCreated})
def create_own_key(body: OwnKeyCreate) -> tuple[Response, int, dict[str, str]]:
    """A new key for the caller, with at most the caller's scopes."""
    issued = _create(body, owner=calling_user())
    return created(issued)


@api_keys_bp.delete("/api/auth/api-keys/<key_id>")
@protected_route(credentials="user")
@operation(responses={204: None})
def revoke_own_key(key_id: str) -> tuple[str, int]:
    """Revoke one of the caller's keys: 204, or 404 when it is not theirs."""
    api_keys().revoke(key_id, owner=calling_user())
    return "", 204


# --- administration --------------------------------------------------------------------------


@api_keys_bp.get("/api/api-keys")
@protected_route(roles=[ADMIN_ROLE], credentials="user")
@operation(responses={200: KeyList}, errors=(404,))
def list_keys(query: KeyListQuery) -> Response:
    """Every key (or one user's), newest first."""
    owner = find_user(query.owner) if query.owner else None
    keys = api_keys().listed(owner=owner, include_revoked=query.include_revoked)
    return jsonify(api_keys=[key_json(k) for k in keys])


@api_keys_bp.post("/api/api-keys")
@protected_route(roles=[ADMIN_ROLE], credentials="user")
@operation(responses={201: KeyCreated}, errors=(404,))
def create_key(body: KeyCreate) -> tuple[Response, int, dict[str, str]]:
    """A new key for a user or a named service."""
    owner = find_user(body.owner) if body.owner else None
    return created(_create(body, owner=owner, service=body.service))


@api_keys_bp.delete("/api/api-keys/<key_id>")
@protected_route(roles=[ADMIN_ROLE], credentials="user")
@operation(responses={204: None})
def revoke_key(key_id: str) -> tuple[str, int]:
    """Revoke any key: 204, or 404."""
    api_keys().revoke(key_id)
    return "", 204


def _create(data: OwnKeyCreate, owner: User | None, service: str | None = None) -> IssuedKey:
    """Create through the service; its refusals are 422 with the reason."""
    creator = require_principal().subject
    try:
        return api_keys().create(
            data.name,
            data.scopes,
            owner=owner,
            service=service,
            expires_in=lifetime(data.expires_in_days),
            created_by=creator,
        )
    except ApiKeyError as exc:
        raise RequestValidationError([{"field": "body", "message": str(exc)}], str(exc)) from None


# --- command line ----------------------------------------------------------------------------

api_keys_cli = AppGroup("api-keys", help="Create, list and revoke API keys.")


@api_keys_cli.command("create")
@click.argument("name")
@click.option("--owner", help="Username of the user the key acts for.")
@click.option("--service", help="Name of the service the key belongs to (instead of --owner).")
@click.option("--scope", "scopes", multiple=True, help="A scope the key grants; repeat it.")
@click.option(
    "--expires", default=None, help="Lifetime: 90d, 12h or 30m (default API_KEY_TTL_DAYS)."
)
def create_command(
    name: str, owner: str | None, service: str | None, scopes: tuple[str, ...], expires: str | None
) -> None:
    """Create a key and print it once: store it now, it cannot be shown again."""
    if not owner and not service:
        raise click.UsageError("Give --owner USERNAME or --service NAME.")
    expires_in = parse_age(expires) if expires else None
    with explained():
        issued = api_keys().create(
            name,
            scopes,
            owner=find_user(owner) if owner else None,
            service=service,
            expires_in=expires_in,
            created_by="cli",
        )
    record = issued.record
    click.echo(
        f"Created API key {record.id} ({record.name}), expires {record.expires_at:%Y-%m-%d}."
    )
    click.echo("The key is shown only this once; store it now:")
    click.echo(issued.secret)


@api_keys_cli.command("list")
@click.option("--owner", help="Only this user's keys.")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
def list_command(owner: str | None, include_revoked: bool) -> None:
    """List keys: id, name, owner, scopes, expiry, last use (never the keys themselves)."""
    with explained():
        user = find_user(owner) if owner else None
        keys = api_keys().listed(owner=user, include_revoked=include_revoked)
    if not keys:
        click.echo("No API keys.")
    for record in keys:
        who = (
            record.owner.username if record.owner is not None else f"service:{record.owner_service}"
        )
        state = "revoked" if record.revoked_at is not None else "active"
        used = f"{record.last_used_at:%Y-%m-%d %H:%M}" if record.last_used_at else "never"
        click.echo(
            f"{record.id}  {record.name}  {who}  [{' '.join(sorted(record.scope_set))}]  "
            f"expires {record.expires_at:%Y-%m-%d}  {state}  last used {used}"
        )


@api_keys_cli.command("revoke")
@click.argument("key_id")
def revoke_command(key_id: str) -> None:
    """Revoke a key: refused from the next request on, on every worker and instance."""
    with explained():
        record = api_keys().revoke(key_id)
    click.echo(f"Revoked API key {record.id} ({record.name}).")
