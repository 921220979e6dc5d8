"""The API's own documentation: ``GET /openapi.json`` and ``GET /docs`` (Swagger UI), and
``flask openapi write [PATH]``.

Swagger UI's files come from the flask-swagger-ui package, served by this app: no CDN, no
online validator, and a Content-Security-Policy for these pages that allows scripts and
styles from this origin only. ``DOCS_ENABLED`` switches both URLs on or off (default: on in
development, off in production); ``DOCS_TOKEN`` puts them behind a token, sent as
``Authorization: Bearer <token>`` or as the password of HTTP Basic (browsers ask for it).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
import tempfile
from pathlib import Path

import click
import flask_swagger_ui
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    request,
    send_from_directory,
    url_for,
)
from flask.cli import AppGroup
from werkzeug.exceptions import NotFound

from api.errorhandler import error_response
from api.openapi import build_spec
from api.validation import operation

docs_bp = Blueprint("docs", __name__)

EXTENSION = "openapi"
SWAGGER_DIST = Path(str(flask_swagger_ui.__file__)).parent / "dist"
ASSETS = frozenset(
    {"swagger-ui.css", "index.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
     "favicon-32x32.png", "favicon-16x16.png"}
)  # fmt: skip
# Swagger UI sets style attributes from its scripts, hence 'unsafe-inline' for styles only.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - API documentation</title>
  <link rel="stylesheet" href="{css}">
  <link rel="icon" type="image/png" href="{icon}">
</head>
<body>
  <div id="swagger-ui" data-spec-url="{spec}"></div>
  <script src="{bundle}"></script>
  <script src="{init}"></script>
</body>
</html>
"""
# validatorUrl null: Swagger UI would otherwise send the spec to an online validator.
INIT_SCRIPT = """window.addEventListener("load", function () {
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
"""


def init_app(app: Flask) -> None:
    """Register the docs URLs when DOCS_ENABLED, and build the document now (a bad
    declaration fails at start-up, not at the first visit)."""
    app.cli.add_command(openapi_cli)
    enabled = app.config["DOCS_ENABLED"]
    if enabled is None:
        enabled = app.config["APP_ENV"] != "production"
    if not enabled:
        return
    app.register_blueprint(docs_bp)
    app.extensions[EXTENSION] = build_spec(app)


def spec() -> dict[str, object]:
    """The app's document (built at start-up)."""
    document: dict[str, object] = current_app.extensions[EXTENSION]
    return document


@docs_bp.before_request
def require_docs_token() -> Response | None:
    """With DOCS_TOKEN set, these URLs need it (Bearer, or Basic with it as the password)."""
    token = str(current_app.config["DOCS_TOKEN"])
    presented = _presented_token()
    if not token or (presented is not None and hmac.compare_digest(presented, token)):
        return None
    return error_response(
        401,
        "The API documentation needs DOCS_TOKEN: send 'Authorization: Bearer <DOCS_TOKEN>'.",
        {"WWW-Authenticate": 'Basic realm="API documentation", charset="UTF-8"'},
    )


def _presented_token() -> str | None:
    """The token from ``Authorization: Bearer`` or the password of ``Basic``."""
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


@docs_bp.get("/openapi.json")
@operation(tags=["docs"])
def openapi_document() -> Response:
    """This API's OpenAPI 3.1 document."""
    return jsonify(spec())


@docs_bp.get("/docs")
@operation(tags=["docs"], content_type="text/html")
def docs_page() -> Response:
    """Interactive documentation (Swagger UI)."""
    asset = lambda name: url_for("docs.docs_asset", filename=name)  # noqa: E731
    html = PAGE.format(
        title="flask-jwe-api",
        css=asset("swagger-ui.css"),
        icon=asset("favicon-32x32.png"),
        spec=url_for("docs.openapi_document"),
        bundle=asset("swagger-ui-bundle.js"),
        init=url_for("docs.docs_init"),
    )
    return _docs_response(Response(html, mimetype="text/html"))


@docs_bp.get("/docs/init.js")
@operation(tags=["docs"], content_type="text/javascript")
def docs_init() -> Response:
    """The script that starts Swagger UI on /docs."""
    return _docs_response(Response(INIT_SCRIPT, mimetype="text/javascript"))


@docs_bp.get("/docs/assets/<filename>")
@operation(tags=["docs"], content_type="application/octet-stream")
def docs_asset(filename: str) -> Response:
    """Swagger UI's own files, from the flask-swagger-ui package."""
    if filename not in ASSETS:
        raise NotFound(f"There is no documentation file named {filename!r}.")
    response = send_from_directory(SWAGGER_DIST, filename, max_age=86400)
    return _docs_response(response)


def _docs_response(response: Response) -> Response:
    """The policy of the docs pages (the API's own allows no scripts at all)."""
    response.headers["Content-Security-Policy"] = DOCS_POLICY
    return response


def canonical_document() -> dict[str, object]:
    """The document of the app on its defaults, whatever this machine's environment says.

    This is what the committed openapi.json holds (``make openapi``), so that CI can tell
    when a change to the API was not written down.
    """
    from api import create_app
    from api.settings import SETTINGS

    config: dict[str, object] = {s.name: s.default for s in SETTINGS if s.default is not None}
    with tempfile.TemporaryDirectory() as instance:
        config.update(
            TESTING=True,
            SECRET_KEY=secrets.token_urlsafe(48),
            INSTANCE_PATH=instance,
            DOCS_ENABLED="1",
        )
        document: dict[str, object] = create_app(config).extensions[EXTENSION]
        return document


def render(document: dict[str, object]) -> str:
    """The JSON text written to openapi.json."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


openapi_cli = AppGroup("openapi", help="The OpenAPI document of this API.")


@openapi_cli.command("write")
@click.argument("path", default="openapi.json")
def write_command(path: str) -> None:
    """Write the document to PATH (.json, or .yaml/.yml when PyYAML is installed)."""
    document = current_app.extensions.get(EXTENSION) or build_spec(current_app)
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise click.ClickException("Writing YAML needs PyYAML: pip install pyyaml.") from None
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    else:
        text = render(document)
    Path(path).write_text(text, encoding="utf-8")
    click.echo(f"Wrote the OpenAPI document to {os.path.abspath(path)}.")
