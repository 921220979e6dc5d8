"""Validate request bodies and query strings with pydantic, and declare each operation once.

``@operation(...)`` on a view reads the view's type annotations: a parameter ``body: Model``
receives the validated JSON body, ``query: Model`` the validated query string. The same
declaration feeds the OpenAPI document (api/openapi.py), so a model is named once. Failures
are 422 with one entry per field in ``errors``; JSON bodies are validated strictly (``false``
is not an integer, ``"3"`` is not a number), query strings leniently (they are all text).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar, get_type_hints

from flask import Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.conditional import conditional
from api.errorhandler import RequestValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)
P = ParamSpec("P")
R = TypeVar("R")
RowT = TypeVar("RowT")

MAX_PER_PAGE = 100
# Far beyond any real listing, and small enough that page * per_page fits every database.
MAX_PAGE = 1_000_000
BODY = "body"
QUERY = "query"
# pydantic's error type for bytes that are not JSON (its only error then).
JSON_INVALID = "json_invalid"
# What an operation that declares no responses answers: 200, its body not documented.
DEFAULT_RESPONSES: Mapping[int, type[BaseModel] | None] = MappingProxyType({200: None})


class PageQuery(BaseModel):
    """``?page=&per_page=`` for list endpoints."""

    model_config = ConfigDict(extra="forbid")

    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    per_page: int = Field(default=20, ge=1, le=MAX_PER_PAGE)

    @property
    def offset(self) -> int:
        """How many rows to skip."""
        return (self.page - 1) * self.per_page


def page_response(
    query: PageQuery, rows: Iterable[RowT], total: int, to_json: Callable[[RowT], object]
) -> Response:
    """The list endpoints' body ``{"items", "page", "per_page", "total"}``, with its ETag
    (a matching ``If-None-Match`` gets 304)."""
    page = {
        "items": [to_json(row) for row in rows],
        "page": query.page,
        "per_page": query.per_page,
        "total": total,
    }
    return conditional(jsonify(page), page)


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
    """Validate the JSON body strictly (400 if it is not JSON, 415 if it is not sent as JSON).

    pydantic parses the body once, straight from its bytes; its JSON syntax errors and a
    body not sent as JSON get the answers of ``request.get_json()`` (the app's request class
    words them), so every route refuses them alike.
    """
    if not request.is_json:
        request.on_json_loading_failed(None)
    try:
        return model.model_validate_json(request.get_data(cache=True), strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == JSON_INVALID:
            request.on_json_loading_failed(ValueError(errors[0]["msg"]))
        raise RequestValidationError(field_errors(exc)) from None


def parse_query(model: type[ModelT]) -> ModelT:
    """Validate the query string; a key given twice keeps its first value."""
    return validate(model, request.args.to_dict())


@dataclass(frozen=True)
class Operation:
    """What a view declares for validation and for the API documentation."""

    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    # A read-only mapping: dataclasses refuse a mapping proxy as a plain default.
    responses: Mapping[int, type[BaseModel] | None] = field(
        default_factory=lambda: DEFAULT_RESPONSES
    )
    errors: frozenset[int] = frozenset()
    tags: tuple[str, ...] = ()
    summary: str = ""
    description: str = ""
    content_type: str = "application/json"


def operation(
    *,
    responses: Mapping[int, type[BaseModel] | None] | None = None,
    errors: Iterable[int] = (),
    tags: Iterable[str] = (),
    content_type: str = "application/json",
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declare a view's responses; its ``body`` / ``query`` parameters are validated and passed.

    ``responses`` maps each success status to its output model (None: no body, e.g. 204;
    without it, ``DEFAULT_RESPONSES``); ``errors`` lists statuses the view itself can answer
    (404, 409, 412...); the statuses of authentication, validation and rate limits are added
    by the documentation builder.
    """

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        hints = get_type_hints(view)
        body = _model(hints.get(BODY))
        query = _model(hints.get(QUERY))
        doc = inspect.getdoc(view) or ""
        summary, _, description = doc.partition("\n")
        declared = Operation(
            body=body,
            query=query,
            responses=MappingProxyType(dict(responses)) if responses else DEFAULT_RESPONSES,
            errors=frozenset(errors),
            tags=tuple(tags),
            summary=summary.strip(),
            description=description.strip(),
            content_type=content_type,
        )

        if body is None and query is None:
            # Nothing to parse: the view itself carries the declaration, and a request pays
            # for no extra call.
            view.operation = declared  # type: ignore[attr-defined]
            return view

        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if body is not None:
                kwargs[BODY] = parse_body(body)
            if query is not None:
                kwargs[QUERY] = parse_query(query)
            return view(*args, **kwargs)

        wrapper.operation = declared  # type: ignore[attr-defined]
        return wrapper

    return decorator


def _model(hint: Any) -> type[BaseModel] | None:
    """The pydantic model a ``body`` / ``query`` annotation names, if any."""
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint
    if hint is not None:
        raise TypeError(
            f"body and query parameters must be annotated with a pydantic model, not {hint!r}."
        )
    return None
