"""The last-administrator guard of ``auth.users`` under concurrency, on PostgreSQL and MariaDB."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from auth import users
from database.errors import ConflictError
from database.sql import db, db_create_all
from database.sql.dbtype import DBType
from database.sql.identity import User
from tests.support.accounts import close_caches, make_user
from tests.support.operations import redis_url_or_skip
from tests.support.sql import created_database, plain

# Sessions of the test database waiting for a row lock. MariaDB's innodb_trx misses a wait
# that starts while the optimizer reads a unique key ("Statistics"), so there the query
# still running its locking read is what counts.
LOCK_WAITS = {
    DBType.POSTGRESQL: "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = :name AND wait_event_type = 'Lock'",
    DBType.MYSQL: "SELECT count(*) FROM information_schema.processlist "
    "WHERE db = :name AND command = 'Query' AND info LIKE '%FOR UPDATE' "
    "AND id <> CONNECTION_ID()",
}


def wait_for_a_lock_wait(url: URL, kind: DBType, timeout: float = 10.0) -> None:
    """Return once a session of the database waits for a lock; fail after ``timeout``."""
    engine = create_engine(url)
    try:
        deadline = time.monotonic() + timeout
        with engine.connect() as connection:
            while time.monotonic() < deadline:
                waiting = connection.scalar(text(LOCK_WAITS[kind]), {"name": url.database})
                connection.rollback()  # a fresh view on the next poll (repeatable read)
                if waiting:
                    return
                time.sleep(0.05)
    finally:
        engine.dispose()
    pytest.fail("The second change never waited for the first one's lock.")


@pytest.mark.parametrize("kind", [DBType.POSTGRESQL, DBType.MYSQL], ids=str)
def test_two_admins_removing_each_other_at_once_leave_one(
    make_app: Callable[..., Flask], tmp_path: Path, kind: DBType
) -> None:
    with created_database(kind, str(tmp_path)) as url:
        app = make_app(DATABASE_URL=plain(url), REDIS_URL=redis_url_or_skip())
        try:
            with app.app_context():
                db_create_all()
            ada_id = make_user(app, "ada", roles=("admin",))
            bea_id = make_user(app, "bea", roles=("admin",))

            def remove_ada() -> None:
                with app.app_context():
                    ada = users.find_user("ada")  # read before bea's removal commits
                    users.set_roles(ada, [])

            with app.app_context(), ThreadPoolExecutor(1) as pool:
                # bea's removal, as set_roles makes it, held open before its commit.
                assert User.locked_active_with_role(users.ADMIN_ROLE) == {ada_id, bea_id}
                bea = users.find_user("bea")
                bea.roles = []
                db.session.flush()
                second = pool.submit(remove_ada)
                wait_for_a_lock_wait(url, kind)
                assert not second.done()
                db.session.commit()
                with pytest.raises(ConflictError, match="ada is the last active administrator"):
                    second.result(timeout=10)
            with app.app_context():
                assert User.locked_active_with_role(users.ADMIN_ROLE) == {ada_id}
        finally:
            close_caches(app)
