"""One page of a query's rows and how many rows match in all, for every paged listing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Result, Select, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import QueryableAttribute, Session, scoped_session

__all__ = ["counted_page"]


def counted_page(
    runner: Session | scoped_session[Any] | Connection,
    query: Select[Any],
    order_by: Iterable[ColumnElement[Any] | QueryableAttribute[Any]],
    offset: int,
    limit: int,
) -> tuple[Result[Any], int]:
    """``limit`` rows of ``query`` from ``offset`` in ``order_by`` order, and the total count
    of its rows; both asked through ``runner`` (an ORM session, ``db.session``, or a Core
    connection).

    The order is given apart from the query: the count is made of the query without one
    (SQL Server refuses an ORDER BY in a subquery), and the page always has one (SQL Server
    needs it for OFFSET, and without it rows could repeat or go missing between pages).
    """
    unordered = query.order_by(None)
    total = runner.scalar(select(func.count()).select_from(unordered.subquery())) or 0
    rows = runner.execute(unordered.order_by(*order_by).offset(offset).limit(limit))
    return rows, int(total)
