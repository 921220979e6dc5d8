"""Connection URLs and engine options for each supported database, built with ``URL.create``."""

from __future__ import annotations

import os
import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from database.errors import ConfigurationError
from database.hosts import split_host_port
from database.sql.dbtype import DBType

DEFAULT_SQLITE_FILE = "app.db"
# A database name that needs no quoting on any supported server (and no path for SQLite).
PLAIN_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
MSSQL_INSTALL_HINT = (
    "install the unixODBC library and a SQL Server ODBC driver: `apt-get install unixodbc` "
    "plus Microsoft's msodbcsql18 (see Microsoft's 'Install the ODBC driver for SQL Server "
    "(Linux)' page), or the free `apt-get install tdsodbc` with MSSQL_ODBC_DRIVER=FreeTDS"
)


def describe(url: URL) -> str:
    """The URL with its password hidden: the only form that goes into logs and messages."""
    return url.render_as_string(hide_password=True)


def build_url(
    dbtype: DBType | str,
    *,
    username: str | None = None,
    password: str | None = None,
    host: str | None = None,
    database_name: str | None = None,
    port: int | None = None,
    instance_path: str = "instance",
    odbc_driver: str = "ODBC Driver 18 for SQL Server",
) -> URL:
    """The URL for these parts; credentials are escaped by ``URL.create``, never by hand.

    ``host`` may carry the port (``"db.internal:5432"``), as in the original project.
    """
    kind = DBType.parse(dbtype)
    if kind is DBType.SQLITE:
        given = [name for name, value in (("username", username), ("password", password),
                 ("host", host), ("port", port)) if value not in (None, "")]  # fmt: skip
        if given:
            raise ConfigurationError(
                f"SQLite is a file and takes no {', '.join(given)}; pass "
                "dbtype=DBType.POSTGRESQL (or another server type) to connect to a server."
            )
        return URL.create(kind.drivername, database=sqlite_path(database_name, instance_path))
    if not database_name:
        raise ConfigurationError(
            f"{kind.label} needs database_name; pass it to setup_sql_db or set DATABASE_URL."
        )
    if port is not None and not (isinstance(port, int) and 0 < port < 65536):
        raise ConfigurationError(f"The port {port!r} is not valid; give a number from 1 to 65535.")
    if host:
        host, port = split_host_port(host, port)
    url = URL.create(
        kind.drivername,
        username=username or None,
        password=password or None,
        host=host or None,
        port=port,
        database=database_name,
    )
    return with_driver_defaults(url, odbc_driver)


def with_database(database_url: str, name: str) -> str:
    """``DATABASE_URL`` naming the database ``name`` on the same server instead.

    An empty DATABASE_URL (the SQLite default) gives the SQLite file ``name`` under instance/.
    """
    if not PLAIN_DATABASE_NAME.fullmatch(name):
        raise ValueError(
            f"The test database name {name!r} is not a plain name; use up to 63 letters, "
            "digits and underscores, starting with a letter, e.g. test_3f2a9c1d."
        )
    if not database_url:
        return f"sqlite:///{name}"
    try:
        url = make_url(database_url)
    except ArgumentError:
        return database_url  # setup_sql_db reports the invalid URL
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{name}"
    return url.set(database=name).render_as_string(hide_password=False)


def sqlite_path(database_name: str | None, instance_path: str) -> str:
    """A SQLite file: absolute paths and ':memory:' as given, names under the instance folder."""
    name = database_name or DEFAULT_SQLITE_FILE
    if name == ":memory:" or os.path.isabs(name):
        return name
    return os.path.join(os.path.abspath(instance_path), name)


def parse_url(text: str, odbc_driver: str, instance_path: str) -> URL:
    """``DATABASE_URL`` as a URL using this project's drivers (postgres:// and mysql:// work)."""
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigurationError(
            "DATABASE_URL is not a valid URL; use the form "
            "dialect://user:password@host:port/database, e.g. postgresql://app:secret@db/app "
            "(escape special characters in the password with %XX)."
        ) from None
    backend = url.get_backend_name()
    kind = DBType.from_backend(backend)
    if "+" not in url.drivername or backend == "postgres":
        # Bare dialect names would pick drivers that are not installed (mysqlclient).
        url = url.set(drivername="mariadb+pymysql" if backend == "mariadb" else kind.drivername)
    if kind is DBType.SQLITE:
        # sqlite:// keeps SQLAlchemy's meaning (in memory); file names go under instance/.
        return url.set(database=sqlite_path(url.database, instance_path)) if url.database else url
    return with_driver_defaults(url, odbc_driver)


def with_driver_defaults(url: URL, odbc_driver: str) -> URL:
    """Add what each driver needs unless the URL says otherwise: utf8mb4, the ODBC driver."""
    kind = DBType.from_backend(url.get_backend_name())
    if kind is DBType.MYSQL and "charset" not in url.query:
        return url.update_query_dict({"charset": "utf8mb4"})
    if kind is DBType.MSSQL and not {"driver", "odbc_connect"} & set(url.query) and url.host:
        return url.update_query_dict({"driver": odbc_driver})
    return url


def engine_options(
    url: URL, connect_timeout: int, pool_recycle: int, query_timeout: int | None = None
) -> dict[str, object]:
    """Pool and timeout options: a dead or hung server costs seconds, never a hung worker.

    ``query_timeout`` bounds each wait for a MySQL/MariaDB answer: PyMySQL applies
    ``connect_timeout`` to the TCP connect only, so a server that accepts but never answers
    (stopped process, frozen VM, proxy with nothing behind it) would otherwise hang forever.
    """
    kind = DBType.from_backend(url.get_backend_name())
    options: dict[str, object] = {"pool_pre_ping": True}
    if kind is DBType.SQLITE:
        # The file is local; wait for a writer's lock rather than failing at once.
        options["connect_args"] = {"timeout": connect_timeout}
        return options
    options["pool_recycle"] = pool_recycle
    if kind is DBType.MSSQL:
        options["connect_args"] = {"timeout": connect_timeout}
    else:
        options["connect_args"] = {"connect_timeout": connect_timeout}
    if kind is DBType.MYSQL and query_timeout:
        options["connect_args"].update(  # type: ignore[attr-defined]
            read_timeout=query_timeout, write_timeout=query_timeout
        )
    return options


def require_mssql_driver(url: URL) -> None:
    """Import pyodbc (only now) and check the ODBC driver; say what to install if missing."""
    try:
        import pyodbc
    except ImportError as exc:
        raise ConfigurationError(
            f"MSSQL needs pyodbc and the system ODBC library ({exc}); {MSSQL_INSTALL_HINT}."
        ) from None
    driver = url.query.get("driver")
    if isinstance(driver, str) and driver not in pyodbc.drivers():
        installed = ", ".join(pyodbc.drivers()) or "none"
        raise ConfigurationError(
            f"The ODBC driver {driver!r} is not installed (installed: {installed}); "
            f"{MSSQL_INSTALL_HINT}, or set MSSQL_ODBC_DRIVER to an installed one."
        )
