"""The baseline: a bare Flask "hello" app, served under the same gunicorn settings."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> dict[str, str]:
    """The same body as the real app's GET /."""
    return {"message": "Hello World"}
