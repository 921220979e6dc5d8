"""Login families across processes: gunicorn workers, a second instance, the purge lock."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask

from auth import families, users
from database.errors import NotFoundError
from database.sql import db, db_create_all
from database.sql.dbtype import DBType
from database.sql.identity import RefreshFamily, User
from database.sql.locks import scoped_lock_name, try_database_lock
from database.sql.types import aware_utc_now
from tests.conftest import TEST_SECRET_KEY
from tests.support.accounts import OTHER_PASSWORD, PASSWORD, bearer, close_caches, login, make_user
from tests.support.gunicorn import Server, gunicorn
from tests.support.operations import redis_url_or_skip
from tests.support.sql import created_database, plain

THREADS = 8


@contextmanager
def served(app: Flask, tmp_path: Path, *extra_args: str) -> Iterator[Server]:
    """gunicorn (2 workers) on the same database, Redis and SECRET_KEY as ``app``."""
    env = {
        "APP_ENV": "development",
        "SECRET_KEY": TEST_SECRET_KEY,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": app.config["DATABASE_URL"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SQL_CREATE_TABLES": "0",
        "RATELIMIT_ENABLED": "0",
        "LOG_FORMAT": "json",
    }
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2, extra_args=extra_args) as server:
        yield server


def api_login(server: Server) -> dict[str, str]:
    """Log ada in over HTTP."""
    response = requests.post(
        f"{server.url}/api/auth/login", json={"username": "ada", "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


@pytest.mark.slow
def test_concurrent_refreshes_of_one_token_have_exactly_one_winner(
    accounts_app: Flask, tmp_path: Path
) -> None:
    make_user(accounts_app, "ada")
    # Threaded workers: eight refreshes really run at once, two processes deep.
    with served(accounts_app, tmp_path, "--threads", "4") as server:
        token = api_login(server)["refresh_token"]
        start = threading.Barrier(THREADS)

        def exchange(_: int) -> requests.Response:
            start.wait()
            return requests.post(
                f"{server.url}/api/auth/refresh", json={"refresh_token": token}, timeout=10
            )

        with ThreadPoolExecutor(THREADS) as pool:
            responses = list(pool.map(exchange, range(THREADS)))
        winners = [r for r in responses if r.status_code == 200]
        assert len(winners) == 1, [r.text for r in responses]
        assert {r.json()["code"] for r in responses if r.status_code != 200} == {
            "refresh_token_spent"
        }
        # The losers did not revoke the login: the winner's tokens carry on.
        again = requests.post(
            f"{server.url}/api/auth/refresh",
            json={"refresh_token": winners[0].json()["refresh_token"]},
            timeout=10,
        )
        assert again.status_code == 200, again.text
    assert "Traceback" not in server.log()


def me_statuses(server: Server, token: str, calls: int = 16) -> list[int]:
    """GET /api/auth/me ``calls`` times, four at a time, until both workers have answered.

    The kernel may hand every connection to one worker on a busy machine, so batches are
    repeated (up to ten) until the access log shows a second worker for this status.
    """
    headers = {"Authorization": f"Bearer {token}"}

    def call(_: int) -> int:
        return requests.get(f"{server.url}/api/auth/me", headers=headers, timeout=10).status_code

    statuses: list[int] = []
    for _ in range(10):
        with ThreadPoolExecutor(4) as pool:
            statuses += pool.map(call, range(calls))
        time.sleep(0.5)  # access lines are written in batches (an idle worker's within 1 s)
        if len(me_workers(server).get(statuses[-1], set())) >= 2:
            break
    return statuses


def me_workers(server: Server) -> dict[int, set[int]]:
    """Status -> the pids of the workers that answered /api/auth/me with it."""
    lines = [json.loads(line) for line in server.log().splitlines() if '"api.access"' in line]
    found: dict[int, set[int]] = {}
    for line in lines:
        if line["route"] == "/api/auth/me":
            found.setdefault(line["status"], set()).add(line["pid"])
    return found


@pytest.mark.slow
def test_logout_on_one_worker_is_seen_by_the_other_and_by_another_instance(
    accounts_app: Flask, make_accounts_app: Callable[..., Flask], tmp_path: Path
) -> None:
    make_user(accounts_app, "ada")
    second_instance = make_accounts_app()
    local = second_instance.test_client()
    with served(accounts_app, tmp_path) as server:
        tokens = api_login(server)
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert set(me_statuses(server, tokens["access_token"])) == {200}
        cache = second_instance.extensions["auth_families"]
        hits = cache.hits
        assert [local.get("/api/auth/me", headers=headers).status_code for _ in range(3)] == [
            200
        ] * 3
        assert cache.hits >= hits + 2  # the other instance answers from its cache now

        logout = requests.post(f"{server.url}/api/auth/logout", headers=headers, timeout=10)
        assert logout.status_code == 204
        assert set(me_statuses(server, tokens["access_token"])) == {401}
        refused = local.get("/api/auth/me", headers=headers)
        assert refused.status_code == 401 and refused.get_json()["code"] == "token_revoked"
    # Each of the two workers answered 200 before the logout and 401 after it.
    served_by = me_workers(server)
    lines = [json.loads(line) for line in server.log().splitlines() if '"api.access"' in line]
    assert len(served_by[200]) == 2 and served_by[401] == served_by[200], served_by
    assert all(
        line["user"] == "ada"
        for line in lines
        if line["status"] == 200 and line["route"] == "/api/auth/me"
    )


def add_families(app: Flask, alive: int, finished: int) -> None:
    """Logins of ada: ``alive`` current ones, ``finished`` revoked or expired 30 days ago."""
    with app.app_context():
        user = User.by_username("ada")
        assert user is not None
        for _ in range(alive + finished):
            families.issue(user)
        month_ago = aware_utc_now() - timedelta(days=30)
        rows = db.session.scalars(db.select(RefreshFamily).limit(finished)).all()
        for index, family in enumerate(rows):
            if index % 2:
                family.revoked_at = month_ago
            else:
                family.expires_at = month_ago
        db.session.commit()


def family_count(app: Flask) -> int:
    """How many families the database holds."""
    with app.app_context():
        return int(db.session.scalar(db.select(db.func.count()).select_from(RefreshFamily)) or 0)


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_concurrent_purges_delete_each_row_once(
    accounts_app: Flask, make_accounts_app: Callable[..., Flask], batch_size: int
) -> None:
    make_user(accounts_app, "ada")
    add_families(accounts_app, alive=5, finished=20)
    instances = [accounts_app, make_accounts_app()]
    start = threading.Barrier(2)

    def run(app: Flask) -> int | None:
        with app.app_context():
            start.wait()
            return families.purge(timedelta(days=7), batch_size)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, instances))
    assert sum(result or 0 for result in results) == 20, results
    assert family_count(accounts_app) == 5


@contextmanager
def held_elsewhere(app: Flask, kind: DBType) -> Iterator[None]:
    """Hold the purge lock the way another host's run would: the database's, or Redis's."""
    with app.app_context():
        if kind is DBType.SQLITE:
            import redis

            client = redis.Redis.from_url(app.config["REDIS_URL"])
            lock = client.lock(scoped_lock_name(families.PURGE_LOCK), timeout=60)
            assert lock.acquire(blocking=False)
            try:
                yield
            finally:
                lock.release()
                client.close()
        else:
            with try_database_lock(families.PURGE_LOCK) as held:
                assert held is True
                yield


@pytest.mark.parametrize("kind", [DBType.POSTGRESQL, DBType.MYSQL, DBType.SQLITE], ids=str)
def test_a_run_finding_the_lock_taken_exits_at_once(
    make_app: Callable[..., Flask], tmp_path: Path, kind: DBType
) -> None:
    with created_database(kind, str(tmp_path)) as url:
        settings = {"DATABASE_URL": plain(url), "REDIS_URL": redis_url_or_skip()}
        holder, runner = make_app(**settings), make_app(**settings)
        try:
            with holder.app_context():
                db_create_all()
            make_user(holder, "ada")
            add_families(holder, alive=1, finished=2)
            with held_elsewhere(holder, kind), runner.app_context():
                assert families.purge(timedelta(days=7)) is None
            assert family_count(holder) == 3
            with runner.app_context():
                assert families.purge(timedelta(days=7)) == 2
        finally:
            for app in (holder, runner):
                close_caches(app)


# --- logins as the admin pages see them (services on SQLite) ---------------------------------


@pytest.fixture
def logins_app(make_app: Callable[..., Flask]) -> Flask:
    """An app on its own SQLite file with ada and bea."""
    app = make_app(RATELIMIT_ENABLED="0")
    with app.app_context():
        db_create_all()
    make_user(app, "ada")
    make_user(app, "bea")
    return app


def test_a_tokenless_login_lives_until_revoked_or_expired(logins_app: Flask) -> None:
    with logins_app.app_context():
        ada = users.find_user("ada")
        family_id = families.start_login(ada, timedelta(hours=1), "Browser/1.0", "192.0.2.7")
        assert families.login_alive(family_id)
        (login,) = families.user_logins(ada.id)
        assert (login.id, login.user_agent, login.remote_ip) == (
            family_id,
            "Browser/1.0",
            "192.0.2.7",
        )
        assert families.login_state(login) == families.ACTIVE
        assert (
            timedelta(minutes=59)
            < login.absolute_expires_at - aware_utc_now()
            <= timedelta(hours=1)
        )
        assert (
            families.login_state(login, now=aware_utc_now() + timedelta(hours=2))
            == families.EXPIRED
        )
        # Ended like any login: a password change revokes it.
        users.set_password(ada, OTHER_PASSWORD)
        assert not families.login_alive(family_id)
        assert families.login_state(families.user_logins(ada.id)[0]) == families.REVOKED
        assert not families.login_alive("00000000-0000-0000-0000-000000000000")
        expired = families.start_login(ada, timedelta(0))
        assert not families.login_alive(expired)


def test_one_login_of_a_user_is_revoked_and_only_theirs(logins_app: Flask) -> None:
    client = logins_app.test_client()
    first, second = login(client, "ada"), login(client, "ada")
    with logins_app.app_context():
        ada, bea = users.find_user("ada"), users.find_user("bea")
        _newest, oldest = families.user_logins(ada.id)
        assert families.user_logins(bea.id) == []
        with pytest.raises(NotFoundError):
            families.revoke_user_login(bea.id, oldest.id)
        families.revoke_user_login(ada.id, oldest.id)
        assert [f.revoked_reason for f in families.user_logins(ada.id)] == [
            None,
            families.BY_ADMINISTRATOR,
        ]
    assert client.get("/api/auth/me", headers=bearer(first)).status_code == 401
    assert client.get("/api/auth/me", headers=bearer(second)).status_code == 200


def test_usernames_and_the_admin_role(logins_app: Flask) -> None:
    with logins_app.app_context():
        ada = users.find_user("ada")
        assert users.usernames([ada.id, "unknown", ada.id]) == {ada.id: "ada"}
        assert users.usernames([]) == {}
        assert users.ensure_admin_role() is True
        assert users.ensure_admin_role() is False
        assert [role.name for role in users.list_roles()] == [users.ADMIN_ROLE]
