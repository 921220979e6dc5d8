"""``flask users``, ``flask roles``, ``flask auth purge`` on SQLite, and the login rehash; the
error handling that ``flask api-keys`` shares with them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from argon2 import PasswordHasher, Type
from flask import Flask
from flask.testing import FlaskCliRunner

from database.sql import db, db_create_all
from database.sql.identity import RefreshFamily, User
from database.sql.types import aware_utc_now
from tests.support.accounts import OTHER_PASSWORD, PASSWORD, login
from tests.support.services import free_port


@pytest.fixture
def cli_app(make_app: Callable[..., Flask]) -> Flask:
    """An app on a fresh SQLite file (the development default), tables created."""
    app = make_app(RATELIMIT_ENABLED="0")
    with app.app_context():
        db_create_all()
    return app


@pytest.fixture
def runner(cli_app: Flask) -> FlaskCliRunner:
    """The app's CLI runner."""
    return cli_app.test_cli_runner()


def run(runner: FlaskCliRunner, *args: str, input: str | None = None, code: int = 0) -> str:
    """Run ``flask <args>``; assert the exit code; return the output."""
    result = runner.invoke(args=list(args), input=input)
    assert result.exit_code == code, result.output
    return result.output


def test_no_account_exists_until_one_is_created(runner: FlaskCliRunner) -> None:
    assert run(runner, "users", "list").splitlines()[1:] == []


def test_roles_and_users_lifecycle(cli_app: Flask, runner: FlaskCliRunner) -> None:
    assert "Created role admin" in run(runner, "roles", "create", "admin", "--scope", "users:write")
    run(runner, "roles", "create", "staff", "--description", "Office staff")
    assert run(runner, "roles", "list").splitlines() == [
        "admin: scopes users:write",
        "staff: scopes none; Office staff",
    ]
    out = run(runner, "users", "create", "Ada", "--role", "admin", "--password-stdin",
              input=PASSWORD + "\n")  # fmt: skip
    assert "Created user ada" in out and "admin" in out and PASSWORD not in out
    # Prompted twice when not read from stdin.
    run(runner, "users", "create", "bea", "--email", "bea@example.org",
        input=f"{PASSWORD}\n{PASSWORD}\n")  # fmt: skip
    listing = run(runner, "users", "list")
    assert "ada" in listing and "bea@example.org" in listing and "never" in listing

    assert run(runner, "users", "roles", "bea", "--add", "staff", "--add", "admin",
               "--remove", "admin").strip() == "bea: staff"  # fmt: skip
    client = cli_app.test_client()
    tokens = login(client, "bea")
    run(runner, "users", "set-password", "bea", "--password-stdin", input=OTHER_PASSWORD + "\n")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/auth/me", headers=headers).status_code == 401
    assert login(client, "bea", OTHER_PASSWORD)

    run(runner, "users", "deactivate", "bea")
    response = client.post("/api/auth/login", json={"username": "bea", "password": OTHER_PASSWORD})
    assert response.status_code == 401
    run(runner, "users", "delete", "bea", input="n\n", code=1)  # confirmation refused
    assert "Deleted bea" in run(runner, "users", "delete", "bea", "--yes")
    assert "bea" not in run(runner, "users", "list")


@pytest.mark.parametrize(
    ("args", "input", "message"),
    [
        (("users", "create", "ada", "--password-stdin"), "password123\n", "too common"),
        (("users", "create", "ada", "--password-stdin"), "\n", "No password"),
        (("users", "create", "ada", "--role", "ghost", "--password-stdin"), PASSWORD + "\n",
         "flask roles create ghost"),
        (("users", "create", "a b", "--password-stdin"), PASSWORD + "\n", "username must be"),
        (("users", "set-password", "nobody", "--password-stdin"), PASSWORD + "\n", "no user"),
        (("roles", "create", "Bad Name"), None, "role name"),
        (("auth", "purge", "--older-than", "soon"), None, "not an age"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_errors(
    runner: FlaskCliRunner, args: tuple[str, ...], input: str | None, message: str
) -> None:
    result = runner.invoke(args=list(args), input=input)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_duplicate_names_are_refused(runner: FlaskCliRunner) -> None:
    run(runner, "roles", "create", "staff")
    assert "already taken" in run(runner, "roles", "create", "staff", code=1)
    run(runner, "users", "create", "ada", "--password-stdin", input=PASSWORD + "\n")
    out = run(runner, "users", "create", "ADA", "--password-stdin", input=PASSWORD + "\n", code=1)
    assert "already taken" in out


def test_purge_command(cli_app: Flask, runner: FlaskCliRunner) -> None:
    run(runner, "users", "create", "ada", "--password-stdin", input=PASSWORD + "\n")
    client = cli_app.test_client()
    login(client, "ada")
    ended = login(client, "ada")
    client.post("/api/auth/logout", headers={"Authorization": f"Bearer {ended['access_token']}"})
    assert "Deleted 0 finished logins" in run(runner, "auth", "purge")  # revoked just now
    with cli_app.app_context():
        db.session.execute(
            db.update(RefreshFamily)
            .where(RefreshFamily.revoked_at.is_not(None))
            .values(revoked_at=aware_utc_now() - timedelta(hours=2))
        )
        db.session.commit()
    out = run(runner, "auth", "purge", "--older-than", "1h", "--batch-size", "5")
    assert "Deleted 1 finished logins" in out
    with cli_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(RefreshFamily)) == 1


def test_login_rehashes_a_password_hashed_with_old_parameters(
    cli_app: Flask, runner: FlaskCliRunner
) -> None:
    run(runner, "users", "create", "ada", "--password-stdin", input=PASSWORD + "\n")
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(PASSWORD)
    with cli_app.app_context():
        user = User.by_username("ada")
        assert user is not None
        user.password_hash = old
        db.session.commit()
    login(cli_app.test_client(), "ada")
    with cli_app.app_context():
        user = User.by_username("ada")
        assert user is not None and user.last_login is not None
        assert user.password_hash != old
        assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_the_first_administrator_takes_one_command_on_a_fresh_database(
    make_app: Callable[..., Flask],
) -> None:
    # A fresh clone in development: no tables yet, no role; the README's one command works.
    runner = make_app(SQL_CREATE_TABLES="1").test_cli_runner()
    out = run(runner, "users", "create", "root", "--role", "admin", "--password-stdin",
              input=PASSWORD + "\n")  # fmt: skip
    assert "Created the role admin" in out and "Created user root" in out
    assert "root" in run(runner, "users", "list")
    # Only the built-in admin role is made on demand: a misspelt one is still refused.
    out = run(runner, "users", "roles", "root", "--add", "admni", code=1)
    assert "flask roles create admni" in out
    assert "Created the role" not in run(runner, "users", "roles", "root", "--add", "admin")


@pytest.mark.parametrize(
    ("args", "code", "output"),
    [
        (("users", "list"), 0, "USERNAME"),
        (("api-keys", "list"), 0, "No API keys."),
        (("api-keys", "create", "k", "--owner", "nobody"), 1, "There is no user called 'nobody'"),
        (("api-keys", "revoke", "doesnotexist"), 1, "No API key has the id 'doesnotexist'"),
    ],
)
def test_commands_create_the_tables_of_a_fresh_database_first(
    make_app: Callable[..., Flask], args: tuple[str, ...], code: int, output: str
) -> None:
    # A fresh clone in development: the first command, whichever it is, finds its tables.
    runner = make_app(SQL_CREATE_TABLES="1").test_cli_runner()
    assert output in run(runner, *args, code=code)


@pytest.mark.parametrize(
    "args", [("users", "list"), ("roles", "create", "staff"), ("api-keys", "list"),
             ("api-keys", "create", "k", "--service", "ci"), ("api-keys", "revoke", "k")],
)  # fmt: skip
def test_a_database_outage_is_a_one_line_error(
    make_app: Callable[..., Flask], args: tuple[str, ...]
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/app"  # nothing listens there
    runner = make_app(DATABASE_URL=url, SQL_CREATE_TABLES="1").test_cli_runner()
    result = runner.invoke(args=list(args))
    assert result.exit_code == 1, result.output
    assert result.output == "Error: The database is unavailable right now; try again in a moment.\n"


@pytest.mark.parametrize(
    "args",
    [
        ("users", "roles", "root", "--remove", "admin"),
        ("users", "deactivate", "root"),
        ("users", "delete", "root", "--yes"),
    ],
    ids=["roles", "deactivate", "delete"],
)
def test_the_last_active_administrator_stays(runner: FlaskCliRunner, args: tuple[str, ...]) -> None:
    run(runner, "users", "create", "root", "--role", "admin", "--password-stdin",
        input=PASSWORD + "\n")  # fmt: skip
    out = run(runner, *args, code=1)
    assert "root is the last active administrator" in out and "Traceback" not in out
    assert "Give another active user the admin role first." in out
    listed = run(runner, "users", "list").splitlines()[1].split()
    assert listed == ["root", "-", "yes", "admin", "never"]
    # With a second active administrator the same command goes through.
    run(runner, "users", "create", "ada", "--role", "admin", "--password-stdin",
        input=PASSWORD + "\n")  # fmt: skip
    run(runner, *args)
