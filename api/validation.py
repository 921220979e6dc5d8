"""Validate request bodies and query strings with pydantic; failures become 422 with ``errors``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from flask import Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.errorhandler import RequestValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)
RowT = TypeVar("RowT")

MAX_PER_PAGE = 100


class PageQuery(BaseModel):
    """``?page=&per_page=`` for list endpoints."""

    model_config = ConfigDict(extra="forbid")

    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=20, ge=1, le=MAX_PER_PAGE)

    @property
    def offset(self) -> int:
        """How many rows to skip."""
        return (self.page - 1) * self.per_page


def page_response(
    query: PageQuery, rows: Iterable[RowT], total: int, to_json: Callable[[RowT], object]
) -> Response:
    """The list endpoints' body: ``{"items", "page", "per_page", "total"}``."""
    return jsonify(
        items=[to_json(row) for row in rows],
        page=query.page,
        per_page=query.per_page,
        total=total,
    )


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """One ``{"field", "message"}`` per problem; input values are left out (they may be secret)."""
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]


def validate(model: type[ModelT], data: object) -> ModelT:
    """Validate ``data`` against ``model`` or raise ``RequestValidationError``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(field_errors(exc)) from None


def parse_body(model: type[ModelT]) -> ModelT:
    """Validate the JSON body (400 if it is not JSON, 415 if it is not sent as JSON)."""
    return validate(model, request.get_json())


def parse_query(model: type[ModelT]) -> ModelT:
    """Validate the query string; a key given twice keeps its first value."""
    return validate(model, request.args.to_dict())
