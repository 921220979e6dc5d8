"""The admin pages in a real browser: Debian's chromium driven by Playwright, against the app
served by gunicorn (two workers) on PostgreSQL and Redis.

One browser for the module (Playwright starts it with a fresh temporary profile). Every page
visited is saved as a screenshot under test-artifacts/admin/ and checked with axe-core
(labels, contrast, landmarks, duplicate ids); the console must report no CSP violation.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, expect, sync_playwright

from api import create_app
from database.sql import db_create_all
from database.sql.dbtype import DBType
from tests.conftest import TEST_SECRET_KEY
from tests.support.accounts import OTHER_PASSWORD, PASSWORD, close_caches, make_user
from tests.support.gunicorn import REPO_ROOT, Server, gunicorn
from tests.support.operations import delete_redis_keys, redis_url_or_skip
from tests.support.services import unavailable
from tests.support.sql import created_database, plain

CHROMIUM = "/usr/bin/chromium"
# Headless, and quiet: the machine has no network beyond loopback, and without these Chromium
# keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "admin"
VIEWPORT = {"width": 1100, "height": 720}
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gunicorn serving the app on a fresh PostgreSQL database and Redis, with root (admin)."""
    tmp = tmp_path_factory.mktemp("admin-browser")
    redis_url = redis_url_or_skip()
    prefix = f"test-{uuid.uuid4().hex}"
    with created_database(DBType.POSTGRESQL, str(tmp)) as url:
        env = {
            "APP_ENV": "development",
            "SECRET_KEY": TEST_SECRET_KEY,
            "INSTANCE_PATH": str(tmp / "instance"),
            "DATABASE_URL": plain(url),
            "REDIS_URL": redis_url,
            "SESSION_TYPE": "redis",
            "RATELIMIT_KEY_PREFIX": prefix,
            "SQL_CREATE_TABLES": "0",
            "ACCESS_LOG_DB": "1",
            "ACCESS_LOG_DB_URL": f"sqlite:///{tmp / 'access_log.db'}",
        }
        app = create_app({**env, "TESTING": True})
        with app.app_context():
            db_create_all()
        make_user(app, "root", roles=("admin",))
        make_user(app, "helper", roles=("staff",))  # the staff role exists for the pages
        close_caches(app)
        try:
            with gunicorn(env, tmp / "gunicorn.log", workers=2) as running:
                yield running
        finally:
            delete_redis_keys(redis_url, prefix)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, started once for the module."""
    if not os.access(CHROMIUM, os.X_OK):
        unavailable("Chromium", f"{CHROMIUM} is missing; apt-get install chromium")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class Visit:
    """One browser context on the server: pages are screenshotted, checked and watched."""

    def __init__(self, browser: Browser, server: Server, javascript: bool = True) -> None:
        self.server = server
        self.javascript = javascript
        self.context = browser.new_context(
            viewport=VIEWPORT, java_script_enabled=javascript, base_url=server.url
        )
        if javascript:
            self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))
        self.axe = Axe()

    def check(self, name: str) -> None:
        """Screenshot the page as test-artifacts/admin/<name>.png; axe finds no violation."""
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        if self.javascript:
            results = self.axe.run(self.page)
            assert results.violations_count == 0, f"{name}: {results.generate_report()}"

    def shows(self, heading: str, flash: str | None = None) -> None:
        """The page (once loaded) has this main heading and result message (a part of it)."""
        expect(self.page.locator("h1")).to_have_text(heading)
        if flash is not None:
            expect(self.page.locator(".flash").first).to_contain_text(flash)

    def log_in(self, username: str, password: str) -> None:
        """Log in through the form, by keyboard only."""
        self.page.goto("/admin/")
        assert self.page.url.endswith("/admin/login?next=/admin/")
        self.check("login")
        keyboard = self.page.keyboard
        keyboard.press("Tab")  # the skip link comes first
        assert self.page.evaluate("document.activeElement.textContent") == "Skip to the content"
        self.page.get_by_label("Username").focus()
        keyboard.type(username)
        keyboard.press("Tab")
        keyboard.type(password)
        keyboard.press("Enter")
        self.page.wait_for_url("**/admin/users")

    def close(self) -> None:
        """No page broke the Content-Security-Policy; close the context."""
        violations = [text for text in self.console if "Content Security Policy" in text]
        assert violations == []
        self.context.close()


def api(server: Server, method: str, path: str, **kwargs: object) -> requests.Response:
    """A call to the API, as a program would make it."""
    return requests.request(method, server.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_an_administrator_manages_a_user_and_an_api_key(browser: Browser, server: Server) -> None:
    visit = Visit(browser, server)
    page = visit.page
    visit.log_in("root", PASSWORD)
    visit.shows("Users", "Logged in as root.")
    visit.check("users")

    # Add a user with a role.
    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("Username").fill("grace")
    page.get_by_label("Email (optional)").fill("grace@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_label("staff").check()
    visit.check("user-new")
    page.get_by_role("button", name="Add the user").click()
    visit.shows("grace", "Added the user grace.")
    grace_id = page.url.rsplit("/", 1)[1]

    # Set her password; she logs in with it through the API.
    page.get_by_label("New password").fill(OTHER_PASSWORD)
    page.locator("#confirm").fill(OTHER_PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    visit.shows("grace", "Set the password of grace")
    visit.check("user")
    tokens = api(
        server, "POST", "/api/auth/login", json={"username": "grace", "password": OTHER_PASSWORD}
    ).json()
    grace = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = api(server, "GET", "/api/auth/me", headers=grace)
    assert me.status_code == 200 and me.json()["roles"] == ["staff"]

    # Her login shows on the page; revoking it makes the API refuse her token.
    page.get_by_role("link", name="Logins and tokens").click()
    visit.shows("Logins of grace")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody .tag.on")).to_have_text("active")
    visit.check("logins")
    page.get_by_role("button", name="Revoke all logins").click()
    visit.shows("Logins of grace", "Revoked every login of grace")
    refused = api(server, "GET", "/api/auth/me", headers=grace)
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    refreshed = api(
        server, "POST", "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401

    # An API key for her: shown once, copied with the button, working, then revoked.
    page.get_by_role("navigation", name="Admin sections").get_by_role(
        "link", name="API keys"
    ).click()
    page.get_by_label("Name", exact=True).fill("grace-reports")
    page.get_by_label("Username (for a user's key)").fill("grace")
    page.get_by_label("Scopes", exact=True).fill("staff:read")
    page.get_by_role("button", name="Create the key").click()
    key = page.get_by_label("The key").input_value()
    assert re.fullmatch(r"fja_[a-z0-9]{12}_[A-Za-z0-9]{43}", key)
    page.get_by_role("button", name="Copy the key").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == key
    visit.check("api-key-created")
    with_key = {"X-Api-Key": key}
    assert api(server, "GET", "/api/restricted", headers=with_key).status_code == 200
    page.get_by_role("link", name="Done: back to the API keys").click()
    visit.shows("API keys")
    assert key not in page.content()  # never shown again
    row = page.locator("tbody tr", has_text="grace-reports")
    row.get_by_role("button", name="Revoke").click()
    visit.shows("API keys", "Revoked the API key grace-reports")
    visit.check("api-keys")
    refused = api(server, "GET", "/api/restricted", headers=with_key)
    assert refused.status_code == 403 and refused.json()["code"] == "api_key_invalid"

    # The other pages, for the record.
    page.goto("/admin/roles")
    visit.check("roles")
    page.goto(f"/admin/users/{grace_id}/delete")
    visit.check("user-delete")
    # The refused calls are in the stored access log (written by each worker within a second).
    page.goto("/admin/access-log?status=4xx")
    deadline = time.monotonic() + 10
    while "GET /api/auth/me" not in page.locator("tbody").inner_text():
        assert time.monotonic() < deadline, "the access log never showed the refused call"
        time.sleep(0.5)
        page.reload()
    visit.check("access-log")
    page.goto("/admin/users?q=gra")
    expect(page.locator("tbody th")).to_have_text(["grace"])

    # Log out: the pages need a login again.
    page.get_by_role("button", name="Log out").click()
    visit.shows("Log in", "You are logged out.")
    page.goto("/admin/users")
    visit.shows("Log in")
    visit.close()


@pytest.mark.slow
def test_the_pages_work_without_javascript(browser: Browser, server: Server) -> None:
    visit = Visit(browser, server, javascript=False)
    page = visit.page
    page.goto("/admin/login")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    visit.shows("Users")
    page.goto("/admin/api-keys")
    page.get_by_label("Name", exact=True).fill("ci-deploy")
    page.get_by_role("radio", name="A service").check()
    page.get_by_label("Service name (for a service's key)").fill("ci")
    page.get_by_role("button", name="Create the key").click()
    key = page.get_by_label("The key").input_value()
    assert key.startswith("fja_")
    assert page.get_by_role("button", name="Copy the key").is_hidden()  # needs the script
    assert api(server, "GET", "/api/restricted", headers={"X-Api-Key": key}).status_code == 200
    page.goto("/admin/users")
    page.get_by_role("link", name="helper").click()
    page.get_by_role("link", name="Delete helper…").click()
    visit.check("user-delete-no-js")
    page.get_by_role("button", name="Yes, delete helper").click()
    visit.shows("Users", "Deleted the user helper.")
    visit.close()
