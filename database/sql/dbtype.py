"""The SQL databases this project supports, and the SQLAlchemy driver used for each."""

from __future__ import annotations

from enum import StrEnum

from database.errors import ConfigurationError


class DBType(StrEnum):
    """A supported SQL database; MYSQL covers MySQL and MariaDB."""

    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    MSSQL = "mssql"
    SQLITE = "sqlite"

    @property
    def drivername(self) -> str:
        """The SQLAlchemy ``dialect+driver`` name this project uses for the type."""
        return DRIVERS[self]

    @property
    def label(self) -> str:
        """The name people know the database by, for messages."""
        return LABELS[self]

    @classmethod
    def parse(cls, value: DBType | str) -> DBType:
        """Return the type named by ``value`` (any case); an unknown name is an error."""
        if isinstance(value, DBType):
            return value
        text = str(value).strip().lower()
        try:
            return cls(ALIASES.get(text, text))
        except ValueError:
            raise ConfigurationError(
                f"The database type {value!r} is not supported; use one of: {supported()} "
                "(e.g. DBType.POSTGRESQL)."
            ) from None

    @classmethod
    def from_backend(cls, backend: str) -> DBType:
        """The type of a SQLAlchemy backend name ('postgresql', 'mariadb', ...)."""
        try:
            return cls.parse(backend)
        except ConfigurationError:
            raise ConfigurationError(
                f"DATABASE_URL: the database '{backend}' is not supported; use a URL for one "
                f"of: {supported()}."
            ) from None


DRIVERS = {
    DBType.POSTGRESQL: "postgresql+psycopg2",
    DBType.MYSQL: "mysql+pymysql",
    DBType.MSSQL: "mssql+pyodbc",
    DBType.SQLITE: "sqlite",
}
LABELS = {
    DBType.POSTGRESQL: "PostgreSQL",
    DBType.MYSQL: "MySQL/MariaDB",
    DBType.MSSQL: "MSSQL",
    DBType.SQLITE: "SQLite",
}
# Other spellings people use in URLs and settings.
ALIASES = {"postgres": "postgresql", "mariadb": "mysql", "sqlserver": "mssql"}


def supported() -> str:
    """The accepted type names, for messages."""
    return ", ".join(member.value for member in DBType)
