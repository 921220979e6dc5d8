"""``flask db upgrade`` on a fresh database builds exactly the models' tables (and downgrades)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

import database.sql.identity  # (the accounts' models fill db.metadata too)
import database.sql.models  # noqa: F401 (the models fill db.metadata)
from database.sql import db
from database.sql.dbtype import DBType
from tests.support.sql import created_database, plain

REPO_ROOT = Path(__file__).resolve().parents[3]
NOT_MODELS = {"alembic_version", "access_log"}


def flask_db(database_url: str, instance: Path, *arguments: str) -> None:
    """Run ``flask db <arguments>`` the way a deployment does: a new process, DATABASE_URL set."""
    env = {
        **os.environ,
        "FLASK_APP": "api",
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "migration-test-secret-key-0123456789abcdef",
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "db", *arguments],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def schema(database_url: str) -> dict[str, set[str]]:
    """Table name -> column names, leaving out tables that are not models."""
    engine = create_engine(database_url)
    try:
        inspector = inspect(engine)
        return {
            table: {column["name"] for column in inspector.get_columns(table)}
            for table in inspector.get_table_names()
            if table not in NOT_MODELS
        }
    finally:
        engine.dispose()


MODELS = {name: set(table.columns.keys()) for name, table in db.metadata.tables.items()}


@pytest.mark.parametrize("kind", [DBType.SQLITE, DBType.POSTGRESQL, DBType.MYSQL], ids=str)
def test_upgrade_builds_the_models_tables(kind: DBType, tmp_path: Path) -> None:
    with created_database(kind, str(tmp_path)) as url:
        database_url = plain(url)
        # `check` fails if the models differ from the migrated schema (types, nullability...).
        flask_db(database_url, tmp_path, "upgrade")
        assert schema(database_url) == MODELS
        flask_db(database_url, tmp_path, "check")
        if kind is DBType.SQLITE:
            flask_db(database_url, tmp_path, "downgrade", "base")
            assert schema(database_url) == {}
