"""counted_page on SQLite, PostgreSQL and MariaDB, through a Core connection and an ORM session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from database.sql.dbtype import DBType
from database.sql.paging import counted_page
from tests.support.sql import created_database

metadata = MetaData()
rows_table = Table(
    "paging_rows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("colour", String(8), nullable=False),
)
# ids 1..9; the red ones are 1, 2, 4, 5, 7, 8.
COLOURS = {ident: "blue" if ident % 3 == 0 else "red" for ident in range(1, 10)}
RED_NEWEST_FIRST = [8, 7, 5, 4, 2, 1]


@pytest.fixture(scope="module", params=[DBType.SQLITE, DBType.POSTGRESQL, DBType.MYSQL], ids=str)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An engine on a fresh database holding the nine rows (read only: one per module)."""
    with created_database(request.param, str(tmp_path_factory.mktemp("paging"))) as url:
        engine = create_engine(url)
        metadata.create_all(engine)
        with engine.begin() as connection:
            rows = [{"id": ident, "colour": colour} for ident, colour in COLOURS.items()]
            connection.execute(insert(rows_table), rows)
        yield engine
        engine.dispose()


def page_ids(engine: Engine, runner_kind: str, offset: int, limit: int) -> tuple[list[int], int]:
    """The ids of one page of the red rows, newest first, and the count of red rows."""
    # Ordered by colour on purpose: counted_page must use its own order, and count without one.
    red = select(rows_table.c.id).where(rows_table.c.colour == "red").order_by(rows_table.c.colour)
    newest_first = [rows_table.c.id.desc()]
    if runner_kind == "session":
        with Session(engine) as session:
            result, total = counted_page(session, red, newest_first, offset, limit)
            return list(result.scalars()), total
    with engine.connect() as connection:
        result, total = counted_page(connection, red, newest_first, offset, limit)
        return list(result.scalars()), total


@pytest.mark.parametrize("runner_kind", ["connection", "session"])
@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [
        (0, 2, RED_NEWEST_FIRST[:2]),
        (2, 3, RED_NEWEST_FIRST[2:5]),
        (4, 10, RED_NEWEST_FIRST[4:]),
        (6, 2, []),
        (50, 2, []),
    ],
)
def test_a_page_in_order_and_the_count_of_every_match(
    engine: Engine, runner_kind: str, offset: int, limit: int, expected: list[int]
) -> None:
    assert page_ids(engine, runner_kind, offset, limit) == (expected, len(RED_NEWEST_FIRST))


def test_no_match_is_an_empty_page_and_zero(engine: Engine) -> None:
    nothing = select(rows_table.c.id).where(rows_table.c.colour == "green")
    with engine.connect() as connection:
        result, total = counted_page(connection, nothing, [rows_table.c.id], 0, 5)
        assert (result.all(), total) == ([], 0)
