"""Claims normalisation: each identity provider's token claims in the shape rules read.

A third-party token names the caller, its roles and its scopes under provider-specific
claims (``cognito:groups``, Hasura's namespaced JSON string, Auth0's namespaced custom
claims, Azure's ``scp``/``oid``, Keycloak's ``realm_access``). A *preset* says where each
provider keeps them; ``normalise`` turns a verified payload into ``sub``, ``roles`` and
``scopes`` (plus the original claims), so ``protected_route`` rules, ``requires_auth(roles=)``
and the access log work unchanged. Seed 002's helpers keep their names: ``normalize_claims``,
``get_claims`` and ``has_user_role``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from auth.credentials import authenticate
from auth.principal import current_principal, freeze

__all__ = [
    "HASURA_NAMESPACE",
    "PRESETS",
    "ClaimsMapping",
    "InvalidClaimsError",
    "NormalisedClaims",
    "freeze",
    "get_claims",
    "has_user_role",
    "mapping_for",
    "normalise",
    "normalize_claims",
    "thaw",
]

R = TypeVar("R")

HASURA_NAMESPACE = "https://hasura.io/jwt/claims"
# Registered claims are never replaced by a flattened custom claim of the same short name.
REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
# Keycloak's client roles live under the client id; "{client}" stands for each audience.
CLIENT_PLACEHOLDER = "{client}"


class InvalidClaimsError(ValueError):
    """The verified payload lacks what its preset needs (e.g. unreadable Hasura claims)."""


@dataclass(frozen=True)
class ClaimsMapping:
    """Where one issuer's tokens keep the subject, roles, scopes and display name.

    Each field lists claim names (a dotted name reads nested objects: ``realm_access.roles``);
    ``subject`` takes the first present, ``roles`` and ``scopes`` the union of all.
    """

    preset: str = ""
    subject: tuple[str, ...] = ("sub",)
    roles: tuple[str, ...] = ("roles",)
    scopes: tuple[str, ...] = ("scope",)
    scopes_separator: str = " "
    names: tuple[str, ...] = ("preferred_username", "username", "name", "email")


PRESETS: Mapping[str, ClaimsMapping] = MappingProxyType(
    {
        "cognito": ClaimsMapping(
            preset="cognito",
            roles=("cognito:groups",),
            # Access tokens carry "username", id tokens "cognito:username".
            names=("username", "cognito:username", "email"),
        ),
        "hasura": ClaimsMapping(
            preset="hasura",
            subject=("x-hasura-user-id", "sub"),
            roles=("x-hasura-allowed-roles",),
        ),
        "auth0": ClaimsMapping(
            preset="auth0",
            # With RBAC on, Auth0 lists the API's granted permissions in "permissions".
            scopes=("scope", "permissions"),
            names=("nickname", "name", "email"),
        ),
        "azure_b2c": ClaimsMapping(
            preset="azure_b2c",
            # "oid" is the user's object id in the directory, the same for every app.
            subject=("oid", "sub"),
            scopes=("scp",),
            names=("name", "emails", "email"),
        ),
        "keycloak": ClaimsMapping(
            preset="keycloak",
            roles=("realm_access.roles", f"resource_access.{CLIENT_PLACEHOLDER}.roles"),
        ),
    }
)


def mapping_for(
    preset: str,
    clients: Iterable[str] = (),
    subject_claim: str | None = None,
    roles_claim: str | None = None,
    scopes_claim: str | None = None,
    scopes_separator: str | None = None,
) -> ClaimsMapping:
    """The preset's mapping (generic when ``preset`` is empty) with the issuer's overrides.

    ``clients`` (the issuer's audiences) expand Keycloak's per-client role claims.
    """
    base = PRESETS[preset] if preset else ClaimsMapping()
    clients = tuple(clients)
    roles = tuple(
        path.replace(CLIENT_PLACEHOLDER, client)
        for path in base.roles
        for client in (clients if CLIENT_PLACEHOLDER in path else ("",))
    )
    return ClaimsMapping(
        preset=base.preset,
        subject=(subject_claim,) if subject_claim else base.subject,
        roles=(roles_claim,) if roles_claim else roles,
        scopes=(scopes_claim,) if scopes_claim else base.scopes,
        scopes_separator=scopes_separator or base.scopes_separator,
        names=base.names,
    )


@dataclass(frozen=True)
class NormalisedClaims:
    """What a verified token says about its caller, in the Principal's terms."""

    subject: str
    roles: frozenset[str]
    scopes: frozenset[str]
    name: str
    claims: dict[str, object]


def normalise(payload: Mapping[str, Any], mapping: ClaimsMapping) -> NormalisedClaims:
    """Read subject, roles, scopes and name from a verified payload; raise if it has no subject.

    ``claims`` holds the payload, the preset's flattened claims (Hasura's ``x-hasura-*``,
    Auth0's namespaced names without their namespace) and the normalised ``sub``, ``roles``
    and ``scopes`` that rules read.
    """
    claims = dict(payload)
    if mapping.preset == "hasura":
        _merge(claims, _hasura_claims(payload))
    elif mapping.preset == "auth0":
        _merge(claims, _unnamespaced(payload))
    subject = next(
        (value for path in mapping.subject if isinstance(value := _lookup(claims, path), str)),
        "",
    )
    if not subject:
        raise InvalidClaimsError(
            f"The token has no subject claim ({' or '.join(mapping.subject)})."
        )
    roles = frozenset(role for path in mapping.roles for role in _texts(_lookup(claims, path)))
    scopes = frozenset(
        scope
        for path in mapping.scopes
        for scope in _texts(_lookup(claims, path), mapping.scopes_separator)
    )
    name = next((text for path in mapping.names for text in _texts(_lookup(claims, path))), "")
    claims.update(sub=subject, roles=sorted(roles), scopes=sorted(scopes))
    return NormalisedClaims(subject, roles, scopes, name or subject, claims)


def _hasura_claims(payload: Mapping[str, Any]) -> dict[str, object]:
    """Hasura's namespace claim: an object, or (Hasura's "stringified" mode) a JSON string."""
    value = payload.get(HASURA_NAMESPACE)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidClaimsError(f"The {HASURA_NAMESPACE} claim is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidClaimsError(f"The token has no {HASURA_NAMESPACE} object.")
    # Hasura compares its claim names without regard to case; rules use the lower-case form.
    return {str(key).lower(): item for key, item in value.items()}


def _unnamespaced(payload: Mapping[str, Any]) -> dict[str, object]:
    """Auth0's namespaced custom claims (``https://example.com/roles``) under their short name."""
    return {
        key.rstrip("/").rsplit("/", 1)[-1]: value
        for key, value in payload.items()
        if key.startswith(("https://", "http://")) and key.rstrip("/").count("/") > 2
    }


def _merge(claims: dict[str, object], extra: Mapping[str, object]) -> None:
    """Add flattened claims without replacing a registered claim or one the token already has."""
    for key, value in extra.items():
        if key not in REGISTERED_CLAIMS and key not in claims:
            claims[key] = value


def _lookup(claims: Mapping[str, object], path: str) -> object:
    """The claim named ``path``, else the nested value its dots lead to, else None."""
    if path in claims:
        return claims[path]
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _texts(value: object, separator: str | None = None) -> list[str]:
    """A claim as a list of non-empty strings: a list's strings, or a string (split if asked)."""
    if isinstance(value, str):
        items = value.split(separator) if separator is not None else [value]
    elif isinstance(value, list | tuple):
        items = [item for item in value if isinstance(item, str)]
    else:
        return []
    return [item.strip() for item in items if item.strip()]


# --- immutable copies for the cached Principal -------------------------------------------


def thaw(value: object) -> Any:
    """A plain, mutable JSON copy of ``freeze``'s result (or of any JSON data)."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(item) for item in value]
    return value


# --- seed 002's helpers ----------------------------------------------------------------------


def get_claims() -> dict[str, object]:
    """The normalised claims of the request's caller as a plain dict; empty when anonymous."""
    principal = current_principal()
    if principal is None:
        return {}
    claims: dict[str, object] = thaw(principal.claims)
    return claims


def has_user_role(role: str, claims: Mapping[str, object]) -> bool:
    """True when normalised ``claims`` (``get_claims()``) grant ``role``."""
    return role in _texts(claims.get("roles"))


def normalize_claims(view: Callable[..., R]) -> Callable[..., R]:
    """Pass the caller's normalised claims to the view as ``claims=`` (401 without a credential).

    Under ``protected_route``/``requires_auth`` it reuses their Principal; alone, it
    authenticates the request itself with any kind of credential.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        if current_principal() is None:
            authenticate()
        return view(*args, claims=get_claims(), **kwargs)

    return wrapper
