"""SQL data layer: ``setup_sql_db``, ``db_create_all``, ``db_drop_all`` (Flask-SQLAlchemy).

Names are loaded on first use, so importing a light submodule (``database.sql.access_log``)
does not load Flask-SQLAlchemy and Flask-Migrate.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from database.sql.extension import (
        create_tables_if_due,
        create_tables_on_first_request,
        db,
        db_create_all,
        db_drop_all,
        ping_check,
        setup_sql_db,
    )

__all__ = [
    "create_tables_if_due",
    "create_tables_on_first_request",
    "db",
    "db_create_all",
    "db_drop_all",
    "ping_check",
    "setup_sql_db",
]


def __getattr__(name: str) -> object:
    """Import ``database.sql.extension`` when one of its names is first asked for."""
    if name in __all__:
        return getattr(import_module("database.sql.extension"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
