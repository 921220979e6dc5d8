"""The OpenAPI 3.1 document, built from the app itself: its routes, their ``@operation``
declarations (pydantic models) and their ``protected_route`` requirements.

Nothing is written twice: path parameters come from the URL rules, bodies, queries and
responses from the models the views validate with, security from the auth decorators, and
the statuses a route can answer from what it declares plus what its decorators add
(401/403 for protected routes, 400/413/415/422 for bodies, 429 for rate limits).

Every route is described except static files and the routes of a ``PageBlueprint`` (the
admin pages): HTML forms for people, not operations for programs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from flask import Blueprint, Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from werkzeug.routing import Rule

from api.ops.monitoring import project_version
from api.validation import Operation
from auth.policies import AuthRequirement
from auth.principal import API_KEY, EXTERNAL, SESSION, USER

Mode = Literal["validation", "serialization"]
OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
RULE_PART = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
CONVERTER_SCHEMAS: dict[str, dict[str, object]] = {
    "int": {"type": "integer", "minimum": 0},
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
    "path": {"type": "string", "minLength": 1},
    "string": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}
ERROR_PROPERTIES: dict[str, object] = {
    "error": {"type": "integer", "description": "The HTTP status, repeated."},
    "message": {"type": "string", "description": "What went wrong, as a sentence."},
    "success": {"const": False},
    "request_id": {"type": "string", "description": "Quote it when reporting a problem."},
}
ERROR_REQUIRED = ["error", "message", "success", "request_id"]
SCHEMAS: dict[str, dict[str, object]] = {
    "Error": {
        "type": "object",
        "description": "The body of every error; ``code`` when the client can act on it.",
        "properties": {**ERROR_PROPERTIES, "code": {"type": "string"}},
        "required": ERROR_REQUIRED,
        "additionalProperties": False,
    },
    "AuthError": {
        "type": "object",
        "description": "401 and 403: ``code`` says what the client can do.",
        "properties": {**ERROR_PROPERTIES, "code": {"type": "string"}},
        "required": [*ERROR_REQUIRED, "code"],
        "additionalProperties": False,
    },
    "ValidationError": {
        "type": "object",
        "description": "422: one entry per invalid field.",
        "properties": {
            **ERROR_PROPERTIES,
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["field", "message"],
                    "additionalProperties": False,
                },
            },
        },
        "required": [*ERROR_REQUIRED, "errors"],
        "additionalProperties": False,
    },
}
STATUS_TEXT = {
    304: "Not modified: the ETag in If-None-Match is current.",
    400: "The body is not valid JSON.",
    401: "No credential, or an invalid one.",
    403: "The credential lacks what this operation needs.",
    404: "Not found.",
    409: "Conflicts with existing data.",
    412: "If-Match names an older version.",
    413: "The body is too large.",
    415: "The body is not sent as JSON.",
    422: "Invalid fields.",
    429: "Too many requests; see Retry-After.",
    501: "Not implemented.",
    503: "A dependency is unavailable; try again shortly.",
}
SECURITY_SCHEMES: dict[str, dict[str, object]] = {
    "sessionToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWE",
        "description": "A session token from GET /api/public, sent with its session cookie.",
    },
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session"},
    "userToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWE",
        "description": "A user's access token from POST /api/auth/login.",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
}


class PageBlueprint(Blueprint):
    """A blueprint of HTML pages for people (the admin pages), left out of the document.

    Its forms are not API operations: they need a browser session and a CSRF token, and the
    JSON API offers programs the same actions, documented.
    """


def documented(app: Flask, rule: Rule) -> bool:
    """True for the routes the document describes: all but static files and page blueprints."""
    if rule.endpoint == "static":
        return False
    blueprint = app.blueprints.get(rule.endpoint.rpartition(".")[0])
    return not isinstance(blueprint, PageBlueprint)


def build_spec(app: Flask) -> dict[str, Any]:
    """The whole document for ``app`` (deterministic: the same app gives the same bytes)."""
    models: dict[tuple[type[BaseModel], Mode], None] = {}
    operations: list[tuple[str, str, dict[str, Any]]] = []
    issuers = _issuer_schemes(app)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if not documented(app, rule):
            continue
        view = app.view_functions[rule.endpoint]
        declared: Operation = getattr(view, "operation", None) or Operation()
        requirement: AuthRequirement | None = getattr(view, "auth_requirement", None)
        for model, mode in _models_of(declared):
            models[(model, mode)] = None
        for method in sorted((rule.methods or set()) - SKIPPED_METHODS):
            entry = _operation(app, rule, method, view, declared, requirement, issuers)
            operations.append((_path(rule), method.lower(), entry))

    refs, definitions = models_json_schema(list(models), ref_template=REF)
    schemas = dict(sorted({**definitions.get("$defs", {}), **SCHEMAS}.items()))
    paths: dict[str, dict[str, Any]] = {}
    for path, method, entry in operations:
        paths.setdefault(path, {})[method] = _resolve(entry, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "flask-jwe-api",
            "version": str(app.config.get("APP_VERSION") or project_version()),
            "description": "Every error has the body of the Error schema, sent with its status.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {**SECURITY_SCHEMES, **issuers},
        },
    }


def _operation(
    app: Flask,
    rule: Rule,
    method: str,
    view: Any,
    declared: Operation,
    requirement: AuthRequirement | None,
    issuers: dict[str, dict[str, object]],
) -> dict[str, Any]:
    """One operation object; models are placeholders resolved once schemas exist."""
    blueprint = rule.endpoint.rpartition(".")[0] or "app"
    summary = declared.summary or (view.__doc__ or "").strip().split("\n")[0]
    entry: dict[str, Any] = {
        "operationId": _operation_id(rule, method),
        "tags": list(declared.tags or (blueprint,)),
        "summary": summary.rstrip("."),
    }
    description = declared.description
    parameters = _path_parameters(rule)
    if declared.query is not None:
        parameters += _query_parameters(declared.query)
    if parameters:
        entry["parameters"] = parameters
    if declared.body is not None:
        entry["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ("model", declared.body, "validation")}},
        }
    responses: dict[str, Any] = {}
    for status, model in sorted(declared.responses.items()):
        responses[str(status)] = _success(status, model, declared.content_type)
    errors = set(declared.errors) | {503}
    if rule.arguments:
        errors.add(404)
    if declared.body is not None:
        errors |= {400, 413, 415, 422}
    if declared.query is not None:
        errors.add(422)
    if getattr(view, "rate_limited", False):
        errors.add(429)
    if requirement is not None:
        errors |= {401, 403}
        entry["security"] = _security(requirement, issuers)
        needs = _needs(requirement)
        if needs:
            description = f"{description}\n\nNeeds {needs}.".strip()
    for status in sorted(errors - {int(s) for s in responses}):
        responses[str(status)] = _error(status, requirement is not None)
    entry["responses"] = responses
    if description:
        entry["description"] = description
    if getattr(view, "deprecation", None):
        entry["deprecated"] = True
    return entry


def _success(status: int, model: type[BaseModel] | None, content_type: str) -> dict[str, Any]:
    """A success response: its model, or no body (204, 304), or any JSON."""
    text = {200: "OK.", 201: "Created.", 204: "Done; no body."}.get(
        status, STATUS_TEXT.get(status, "OK.")
    )
    if status in (204, 304):
        return {"description": text}
    if model is None:
        schema: Any = (
            {"type": "object"} if content_type == "application/json" else {"type": "string"}
        )
    else:
        schema = ("model", model, "serialization")
    return {"description": text, "content": {content_type: {"schema": schema}}}


def _error(status: int, protected: bool) -> dict[str, Any]:
    """An error response with the schema its body has."""
    name = "Error"
    if status in (401, 403) and protected:
        name = "AuthError"
    elif status == 422:
        name = "ValidationError"
    response: dict[str, Any] = {
        "description": STATUS_TEXT.get(status, "Error."),
        "content": {"application/json": {"schema": {"$ref": REF.format(model=name)}}},
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {
                "description": "The Bearer challenge.",
                "schema": {"type": "string"},
            }
        }
    return response


def _security(
    requirement: AuthRequirement, issuers: dict[str, dict[str, object]]
) -> list[dict[str, list[str]]]:
    """One alternative per accepted credential, each listing the scopes needed."""
    scopes = sorted(requirement.scopes)
    options: list[dict[str, list[str]]] = []
    if SESSION in requirement.kinds:
        options.append({"sessionToken": scopes, "sessionCookie": []})
    if USER in requirement.kinds:
        options.append({"userToken": scopes})
    if API_KEY in requirement.kinds:
        options.append({"apiKey": scopes})
    if EXTERNAL in requirement.kinds:
        options.extend(
            {name: scopes}
            for name, scheme in sorted(issuers.items())
            if requirement.issuers is None or scheme["x-issuer"] in requirement.issuers
        )
    return options


def _needs(requirement: AuthRequirement) -> str:
    """The requirement in words, for the operation's description."""
    if requirement.rule is None or requirement.rule.requirement == "nothing more":
        return ""
    return requirement.rule.requirement


def _issuer_schemes(app: Flask) -> dict[str, dict[str, object]]:
    """A scheme per configured third-party issuer (TOKEN_ISSUERS), named ``issuer_<name>``.

    ``x-issuer`` keeps the ``iss`` value, so operations limited by ``allowed_issuers`` list
    only the issuers they accept.
    """
    schemes: dict[str, dict[str, object]] = {}
    for config in app.config.get("TOKEN_ISSUERS") or ():
        scheme: dict[str, object]
        if config.discovery:
            scheme = {"type": "openIdConnect", "openIdConnectUrl": config.discovery_url}
        else:
            scheme = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        scheme["description"] = f"A bearer token issued by {config.issuer}."
        scheme["x-issuer"] = config.issuer
        schemes[f"issuer_{config.name}"] = scheme
    return dict(sorted(schemes.items()))


def _models_of(declared: Operation) -> Iterable[tuple[type[BaseModel], Mode]]:
    """Every model an operation names, with the mode its schema is needed in."""
    if declared.body is not None:
        yield declared.body, "validation"
    for model in declared.responses.values():
        if model is not None:
            yield model, "serialization"


def _path(rule: Rule) -> str:
    """``/api/items/<int:item_id>`` -> ``/api/items/{item_id}``."""
    return RULE_PART.sub(lambda match: "{" + match.group("name") + "}", rule.rule)


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    """The URL's parameters with the schema of their converter."""
    return [
        {
            "name": match.group("name"),
            "in": "path",
            "required": True,
            "schema": dict(
                CONVERTER_SCHEMAS.get(match.group("converter") or "string", {"type": "string"})
            ),
        }
        for match in RULE_PART.finditer(rule.rule)
    ]


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A query model's fields as query parameters."""
    schema = model.model_json_schema(mode="validation", ref_template=REF)
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        field_schema = dict(field_schema)
        description = field_schema.pop("description", None)
        field_schema.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": field_schema,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _operation_id(rule: Rule, method: str) -> str:
    """A unique id: the endpoint's name, with the method when one endpoint has several."""
    name = rule.endpoint.replace(".", "_")
    methods = (rule.methods or set()) - SKIPPED_METHODS
    return f"{name}_{method.lower()}" if len(methods) > 1 else name


def _resolve(value: Any, refs: dict[Any, dict[str, Any]]) -> Any:
    """Replace ``("model", Model, mode)`` placeholders by their ``$ref``."""
    if isinstance(value, tuple) and len(value) == 3 and value[0] == "model":
        return refs[(value[1], value[2])]
    if isinstance(value, dict):
        return {key: _resolve(item, refs) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, refs) for item in value]
    return value
