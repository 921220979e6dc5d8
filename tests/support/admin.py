"""The admin pages in tests: CSRF tokens read from the pages, logins through the login form."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.accounts import PASSWORD

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, page: str = "/admin/login") -> str:
    """The CSRF token of the client's session, as a form on ``page`` carries it."""
    response = client.get(page)
    match = CSRF_INPUT.search(response.get_data(as_text=True))
    assert match is not None, f"no CSRF token on {page} ({response.status_code})"
    return match.group(1)


def submit(
    client: FlaskClient, path: str, data: dict[str, object] | None = None, page: str | None = None
) -> TestResponse:
    """POST a form as a browser would: with the CSRF token of a page the client can see."""
    token = csrf_token(client, page or "/admin/users")
    return client.post(path, data={**(data or {}), "csrf_token": token})


def admin_login(client: FlaskClient, username: str, password: str = PASSWORD) -> TestResponse:
    """Log in through the admin login form (the response is not followed)."""
    form = {"username": username, "password": password}
    return submit(client, "/admin/login", form, page="/admin/login")


def text(response: TestResponse) -> str:
    """The page's text with tags removed and spaces collapsed, for assertions on wording."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())
