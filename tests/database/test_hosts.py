"""A port written inside the host, for setup_sql_db and setup_mongodb (as in the original)."""

from __future__ import annotations

import pytest

from database.errors import ConfigurationError
from database.hosts import join_host_port, split_host_port
from database.mongodb import build_uri
from database.sql.dbtype import DBType
from database.sql.urls import build_url


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("db.internal:5432", None, ("db.internal", 5432)),
        ("db.internal", 5432, ("db.internal", 5432)),
        ("db.internal:5432", 5432, ("db.internal", 5432)),  # the same port twice is fine
        ("db.internal", None, ("db.internal", None)),
        ("[::1]:5432", None, ("::1", 5432)),
        ("[::1]", 6543, ("::1", 6543)),
        ("::1", None, ("::1", None)),  # a bare IPv6 address has no port
        (" h:1 ", None, ("h", 1)),
    ],
)
def test_split_host_port(host: str, port: int | None, expected: tuple[str, int | None]) -> None:
    assert split_host_port(host, port) == expected


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        (
            "db:5432",
            5433,
            "given twice with different values: 5432 in host='db:5432' and port=5433",
        ),
        ("db:port", None, "not a number from 1 to 65535"),
        ("db:0", None, "not a number from 1 to 65535"),
        ("db:70000", None, "not a number from 1 to 65535"),
        ("[::1", None, "write an IPv6 address as [address]"),
    ],
)
def test_bad_ports_are_explained(host: str, port: int | None, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[")):
        split_host_port(host, port)


def test_join_host_port() -> None:
    assert join_host_port("db", 5432) == "db:5432"
    assert join_host_port("::1", 27017) == "[::1]:27017"
    assert join_host_port("db", None) == "db"


@pytest.mark.parametrize("kind", [DBType.POSTGRESQL, DBType.MYSQL, DBType.MSSQL], ids=str)
def test_sql_host_may_carry_the_port(kind: DBType) -> None:
    url = build_url(kind, host="db.internal:6543", database_name="app")
    assert (url.host, url.port) == ("db.internal", 6543)
    with pytest.raises(ConfigurationError, match="given twice"):
        build_url(kind, host="db.internal:6543", port=5432, database_name="app")


def test_mongo_host_may_carry_the_port() -> None:
    assert build_uri("h:27018", database_name="app") == "mongodb://h:27018/app"
    assert build_uri("h1:27017,h2", port=27017) == "mongodb://h1:27017,h2:27017/"
    with pytest.raises(ConfigurationError, match="given twice"):
        build_uri("h:27018", port=27017)
    with pytest.raises(ConfigurationError, match="no port"):
        build_uri("mongodb+srv://cluster0.example.net:27017")
