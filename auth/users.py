"""User and role services: the one place account rules live, for the API, the CLI and admin pages.

Every function commits its change and raises the project's own errors: ``InvalidInput``
(422, a refused value), ``ConflictError`` (409, a taken username or email, or a change that
would leave no active administrator),
``NotFoundError`` (404), ``AuthError`` (401, failed login). A change that alters what a
user's tokens say or allow (password, roles, deactivation, deletion, rename) revokes the
user's logins everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from auth.apikeys import api_keys
from auth.errors import INVALID_CREDENTIALS, AuthError, InvalidInput
from auth.families import revoke_user_families
from auth.passwords import (
    MAX_LENGTH,
    hash_password,
    needs_rehash,
    require_valid_password,
    verify_dummy,
    verify_password,
)
from database.errors import ConflictError, NotFoundError
from database.sql.identity import (
    EMAIL_LENGTH,
    USERNAME_LENGTH,
    RefreshFamily,
    Role,
    User,
    join_scopes,
)
from database.sql.types import aware_utc_now

__all__ = [
    "ADMIN_ROLE",
    "change_own_password",
    "change_roles",
    "create_role",
    "create_user",
    "deactivate_user",
    "delete_user",
    "ensure_admin_role",
    "find_user",
    "get_user",
    "list_roles",
    "list_users",
    "normalise_username",
    "set_password",
    "set_roles",
    "update_user",
    "usernames",
    "verify_login",
]

# Lower-case ASCII letters, digits and . _ @ -, starting with a letter or digit: no look-alike
# characters, nothing that needs escaping in a URL or a log line.
USERNAME = re.compile(rf"[a-z0-9][a-z0-9._@-]{{2,{USERNAME_LENGTH - 1}}}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
ROLE_NAME = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
SCOPE = re.compile(r"[!#-\[\]-~]+")  # RFC 6749 scope-token characters

# The role the administration routes and pages require.
ADMIN_ROLE = "admin"
ADMIN_DESCRIPTION = "Administrators: manage users, roles and API keys."

# Revocation reasons (refresh_families.revoked_reason).
PASSWORD_CHANGED = "password changed"  # noqa: S105 (a reason, not a password)
ROLES_CHANGED = "roles changed"
DEACTIVATED = "deactivated"
RENAMED = "renamed"
DELETED = "deleted"


def normalise_username(username: str) -> str:
    """Usernames are compared and stored in lower case, without surrounding spaces."""
    return username.strip().lower()


def _valid_username(username: str) -> str:
    """The normalised username, or ``InvalidInput``."""
    name = normalise_username(username)
    if not USERNAME.fullmatch(name):
        raise InvalidInput(
            "username",
            f"The username must be 3 to {USERNAME_LENGTH} characters: letters, digits and "
            ". _ @ -, starting with a letter or a digit.",
        )
    return name


def _valid_email(email: str | None) -> str | None:
    """The email in lower case (None stays None), or ``InvalidInput``."""
    if email is None or not email.strip():
        return None
    address = email.strip().lower()
    if len(address) > EMAIL_LENGTH or not EMAIL.fullmatch(address):
        raise InvalidInput("email", f"{address!r} is not an email address such as ada@example.com.")
    return address


def _roles(names: Iterable[str]) -> list[Role]:
    """The roles called ``names``; every unknown name is refused with how to create it."""
    wanted = sorted({name.strip() for name in names})
    found = Role.by_names(wanted)
    missing = sorted(set(wanted) - {role.name for role in found})
    if missing:
        raise InvalidInput(
            "roles",
            [
                f"There is no role {name!r}; create it with: flask roles create {name}"
                for name in missing
            ],
        )
    return found


# --- users -------------------------------------------------------------------------------


def create_user(
    username: str,
    password: str,
    email: str | None = None,
    roles: Iterable[str] = (),
    is_active: bool = True,
) -> User:
    """Create an account; the password must pass the policy. 409 if the name is taken."""
    name = _valid_username(username)
    require_valid_password(password, name)
    user = User(
        username=name,
        email=_valid_email(email),
        password_hash=hash_password(password),
        is_active=is_active,
        roles=_roles(roles),
    )
    return user.insert()


def get_user(user_id: str) -> User:
    """The user with this id, or ``NotFoundError``."""
    return User.get_or_raise(user_id)


def find_user(username: str) -> User:
    """The user called ``username``, or ``NotFoundError``."""
    user = User.by_username(normalise_username(username))
    if user is None:
        raise NotFoundError(f"There is no user called {normalise_username(username)!r}.")
    return user


def list_users(text: str | None, offset: int, limit: int) -> tuple[Sequence[User], int]:
    """One page of users whose username or email contains ``text``, and the total count."""
    return User.search(text.strip() if text else None, offset, limit)


def usernames(user_ids: Iterable[str]) -> dict[str, str]:
    """The username of each known user id (for showing ids to people)."""
    return User.names_by_ids(user_ids)


def verify_login(username: str, password: str) -> User:
    """The active user with these credentials, or ``AuthError`` invalid_credentials.

    Unknown, inactive and wrong-password logins fail alike and take the same time: an
    unknown username still costs one password verification, against a dummy hash.
    """
    name = normalise_username(username)
    user = User.by_username(name) if USERNAME.fullmatch(name) else None
    if user is None:
        verify_dummy(password)
        raise AuthError(INVALID_CREDENTIALS)
    if not verify_password(user.password_hash, password) or not user.is_active:
        raise AuthError(INVALID_CREDENTIALS)
    if needs_rehash(user.password_hash):
        # The hashing parameters changed since this hash was made; upgrade it while the
        # password is at hand.
        user.password_hash = hash_password(password)
    user.last_login = aware_utc_now()
    return user.update()


def update_user(
    user: User,
    *,
    username: str | None = None,
    email: str | None = None,
    clear_email: bool = False,
    is_active: bool | None = None,
) -> User:
    """Change the given fields; a rename or deactivation ends the user's logins."""
    if is_active is False:
        _keep_an_active_admin(user, "deactivating them", "is_active")
    reason = None
    name = _valid_username(username) if username is not None else user.username
    if name != user.username:
        user.username = name
        reason = RENAMED
    if clear_email:
        user.email = None
    elif email is not None:
        user.email = _valid_email(email)
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        reason = reason or (None if is_active else DEACTIVATED)
    user.update()
    if reason is not None:
        revoke_user_families(user.id, reason)
    if is_active is not None:
        _owner_changed(user.id)  # the user's API keys follow the account's state
    return user


def _owner_changed(user_id: str) -> None:
    """Every process re-reads the user's API keys (their scopes and state follow the user)."""
    api_keys().forget_owner(user_id)


def deactivate_user(user: User) -> User:
    """Disable the account (it cannot log in) and end its logins."""
    return update_user(user, is_active=False)


def delete_user(user: User) -> None:
    """Delete the account and its logins; its access tokens are refused at once."""
    _keep_an_active_admin(user, "deleting them")
    user_id = user.id
    revoke_user_families(user_id, DELETED)
    RefreshFamily.delete_for_user(user_id)
    key_ids = api_keys().delete_owner_keys(user_id)
    user.delete()  # commits the deletions above too
    api_keys().announce(key_ids)


def set_password(user: User, password: str, keep_family: str | None = None) -> User:
    """Set a new password (it must pass the policy) and end every login but ``keep_family``."""
    require_valid_password(password, user.username)
    user.password_hash = hash_password(password)
    user.update()
    revoke_user_families(user.id, PASSWORD_CHANGED, keep=keep_family)
    return user


def change_own_password(user: User, current: str, new: str, family: str) -> None:
    """The user's own change: the current password must be right; other logins end."""
    if len(current) > MAX_LENGTH or not verify_password(user.password_hash, current):
        raise InvalidInput("current_password", "The current password is wrong.")
    if new == current:
        raise InvalidInput("new_password", "The new password must differ from the current one.")
    require_valid_password(new, user.username, field="new_password")
    set_password(user, new, keep_family=family)


def set_roles(user: User, names: Iterable[str]) -> User:
    """Give the user exactly these roles; their logins end so tokens carry the new ones."""
    roles = _roles(names)
    wanted = {role.name for role in roles}
    if wanted != user.role_names:
        if ADMIN_ROLE not in wanted:
            _keep_an_active_admin(user, f"taking the {ADMIN_ROLE} role from them", "roles")
        user.roles = roles
        user.update()
        revoke_user_families(user.id, ROLES_CHANGED)
        _owner_changed(user.id)  # the user's API keys are capped by the new scopes
    return user


def change_roles(user: User, add: Iterable[str] = (), remove: Iterable[str] = ()) -> User:
    """Add and remove roles by name (removing one the user lacks is not an error)."""
    _roles(remove)  # a misspelt name is refused rather than silently ignored
    names = (user.role_names | {name.strip() for name in add}) - {name.strip() for name in remove}
    return set_roles(user, names)


def _keep_an_active_admin(user: User, change: str, field: str | None = None) -> None:
    """Refuse (409) ``change`` when ``user`` is the last active administrator.

    The one guard against locking everyone out of the administration, for the API, the admin
    pages and the CLI alike. It runs before the change touches anything; its lock is held
    until the change commits, so two administrators removing each other at once cannot both
    succeed.
    """
    if not (user.is_active and ADMIN_ROLE in user.role_names):
        return  # the common case costs no query
    if User.locked_active_with_role(ADMIN_ROLE) == {user.id}:
        raise ConflictError(
            f"{user.username} is the last active administrator, so {change} would leave no "
            f"one who can manage users and roles. Give another active user the {ADMIN_ROLE} "
            "role first.",
            fields=(field,) if field else (),
        )


# --- roles -----------------------------------------------------------------------------------


def create_role(name: str, description: str | None = None, scopes: Iterable[str] = ()) -> Role:
    """Create a role granting ``scopes``; 409 if the name is taken."""
    role_name = name.strip()
    if not ROLE_NAME.fullmatch(role_name):
        raise InvalidInput(
            "name",
            "A role name is 1 to 64 characters: lower-case letters, digits and _ . : -, "
            "starting with a letter.",
        )
    scope_set = {scope.strip() for scope in scopes if scope.strip()}
    bad = sorted(scope for scope in scope_set if not SCOPE.fullmatch(scope))
    if bad:
        raise InvalidInput("scopes", f"These scopes have characters a scope cannot hold: {bad}.")
    return Role(name=role_name, description=description, scopes=join_scopes(scope_set)).insert()


def list_roles() -> Sequence[Role]:
    """Every role, by name."""
    return Role.all_by_name()


def ensure_admin_role() -> bool:
    """Create the built-in ``admin`` role when it is missing; True when it was created."""
    if Role.by_name(ADMIN_ROLE) is not None:
        return False
    create_role(ADMIN_ROLE, ADMIN_DESCRIPTION)
    return True
