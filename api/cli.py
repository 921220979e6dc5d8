"""Account commands: ``flask users ...``, ``flask roles ...``, ``flask auth purge``; their
``explained`` also runs the service calls of ``flask api-keys ...``.

No account is ever created for you: the first administrator is made with
``flask users create NAME --role admin`` (which creates the ``admin`` role if it is missing).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask
from flask.cli import AppGroup

from api.ops.accesslog import parse_age
from auth import families, users
from auth.apikeys import ApiKeyError
from auth.errors import InvalidInput
from database.errors import DatabaseError
from database.sql import create_tables_if_due

users_cli = AppGroup("users", help="Manage user accounts (none exists until you create one).")
roles_cli = AppGroup("roles", help="Manage roles (admin and your own).")
auth_cli = AppGroup("auth", help="Maintenance of logins (refresh-token families).")


def init_app(app: Flask) -> None:
    """Add the command groups to ``flask``."""
    for group in (users_cli, roles_cli, auth_cli):
        app.cli.add_command(group)


@contextmanager
def explained() -> Iterator[None]:
    """Run a command's service calls: the tables first where development creates them on first
    use (a fresh clone), and the services' refusals (a bad value, an unknown name, a database
    outage) as one-line errors (exit status 1)."""
    try:
        create_tables_if_due()
        yield
    except (InvalidInput, ApiKeyError, DatabaseError) as exc:
        raise click.ClickException(str(exc)) from None


def _read_password(from_stdin: bool) -> str:
    """One line from standard input (for scripts), or typed twice at a hidden prompt."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("No password on standard input; send it as one line.")
        return password
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of prompting.",
)


@users_cli.command("create")
@click.argument("username")
@click.option("--role", "roles", multiple=True, help="A role to give (repeat for several).")
@click.option("--email", default=None, help="The user's email address (optional, unique).")
@PASSWORD_STDIN
def create_user_command(
    username: str, roles: tuple[str, ...], email: str | None, password_stdin: bool
) -> None:
    """Create a user; the password is prompted for twice unless --password-stdin."""
    password = _read_password(password_stdin)
    with explained():
        _ensure_admin_role(roles)
        user = users.create_user(username, password, email=email, roles=roles)
    click.echo(f"Created user {user.username} ({user.id}) with roles: {_names(user.role_names)}.")


@users_cli.command("list")
def list_users_command() -> None:
    """List every user: name, email, active, roles, last login."""
    with explained():
        found, _ = users.list_users(None, 0, sys.maxsize)
    rows = [("USERNAME", "EMAIL", "ACTIVE", "ROLES", "LAST LOGIN (UTC)")]
    rows += [
        (
            user.username,
            user.email or "-",
            "yes" if user.is_active else "no",
            _names(user.role_names),
            user.last_login.strftime("%Y-%m-%d %H:%M") if user.last_login else "never",
        )
        for user in found
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


@users_cli.command("set-password")
@click.argument("username")
@PASSWORD_STDIN
def set_password_command(username: str, password_stdin: bool) -> None:
    """Set a user's password; every login of the user ends."""
    with explained():
        user = users.find_user(username)
        users.set_password(user, _read_password(password_stdin))
    click.echo(f"Password of {user.username} changed; the user's logins were ended.")


@users_cli.command("roles")
@click.argument("username")
@click.option("--add", "add", multiple=True, help="A role to add (repeat for several).")
@click.option("--remove", "remove", multiple=True, help="A role to remove (repeat for several).")
def roles_command(username: str, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Add or remove roles; with neither, show the user's roles."""
    with explained():
        user = users.find_user(username)
        _ensure_admin_role(add)
        if add or remove:
            users.change_roles(user, add=add, remove=remove)
    click.echo(f"{user.username}: {_names(user.role_names)}")


@users_cli.command("deactivate")
@click.argument("username")
def deactivate_command(username: str) -> None:
    """Disable an account: it cannot log in, and its logins end."""
    with explained():
        user = users.deactivate_user(users.find_user(username))
    click.echo(f"Deactivated {user.username}; the user's logins were ended.")


@users_cli.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_command(username: str, yes: bool) -> None:
    """Delete an account and its logins."""
    with explained():
        user = users.find_user(username)
        if not yes:
            click.confirm(f"Delete the user {user.username} for good?", abort=True)
        users.delete_user(user)
    click.echo(f"Deleted {user.username}.")


@roles_cli.command("create")
@click.argument("name")
@click.option("--description", default=None, help="What the role is for.")
@click.option("--scope", "scopes", multiple=True, help="A scope the role grants (repeatable).")
def create_role_command(name: str, description: str | None, scopes: tuple[str, ...]) -> None:
    """Create a role."""
    with explained():
        role = users.create_role(name, description, scopes)
    click.echo(f"Created role {role.name} with scopes: {_names(role.scope_set)}.")


@roles_cli.command("list")
def list_roles_command() -> None:
    """List the roles and the scopes each grants."""
    with explained():
        roles = users.list_roles()
    for role in roles:
        click.echo(
            f"{role.name}: scopes {_names(role.scope_set)}; {role.description or ''}".rstrip("; ")
        )


@auth_cli.command("purge")
@click.option(
    "--older-than",
    "older_than",
    default="7d",
    show_default=True,
    help="Delete logins revoked or expired longer ago than this: 7d, 12h or 90m.",
)
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
def purge_command(older_than: str, batch_size: int) -> None:
    """Delete finished logins in batches; safe to run from every host at once (cron)."""
    with explained():
        deleted = families.purge(parse_age(older_than), batch_size)
    if deleted is None:
        click.echo("Another purge is running (it holds the lock); nothing done here.")
    else:
        click.echo(f"Deleted {deleted} finished logins (refresh-token families).")


def _ensure_admin_role(roles: tuple[str, ...]) -> None:
    """The built-in admin role is made when first given, so the first administrator takes one
    command; any other unknown role is still refused (a typo must not create a role)."""
    if users.ADMIN_ROLE in roles and users.ensure_admin_role():
        click.echo(f"Created the role {users.ADMIN_ROLE} (it did not exist yet).")


def _names(names: frozenset[str]) -> str:
    """A set of names for a message."""
    return ", ".join(sorted(names)) or "none"
