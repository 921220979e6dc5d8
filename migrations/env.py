"""Alembic environment for Flask-Migrate: the app's engine and models' metadata (``flask db``)."""

from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

# Tables that live in the same database but are not managed by these migrations: the access
# log creates its own table (database/sql/access_log.py).
UNMANAGED_TABLES = {"access_log"}

config = context.config
# Keep the app's loggers working when migrations run inside it (flask_migrate.upgrade()).
if config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db


def include_name(name, type_, parent_names):
    """Leave unmanaged tables out of autogenerate, so it never proposes to drop them."""
    return not (type_ == "table" and name in UNMANAGED_TABLES)


def run_migrations_offline():
    """``flask db upgrade --sql``: write the SQL instead of running it."""
    url = target_db.engine.url.render_as_string(hide_password=False)
    context.configure(
        url=url,
        target_metadata=target_db.metadata,
        literal_binds=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Run the migrations on the app's engine."""

    def process_revision_directives(context, revision, directives):
        # `flask db migrate` with no model changes writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    conf_args = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("include_name", include_name)
    with target_db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
