"""A Python client of the API with requests: log in, call protected routes, refresh, log out.

    API_PASSWORD='amber-kettle-violin-42' python examples/client.py \
        --url http://127.0.0.1:5000 --username ada

Copy ``ApiClient`` into your own code: it keeps the tokens in memory, sends the access token
with each call, and when the API answers ``token_expired`` it refreshes once and retries.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time

import requests


class ApiError(Exception):
    """The API answered with an error body: ``status``, ``code`` and its message."""

    def __init__(self, response: requests.Response) -> None:
        body = response.json() if response.content else {}
        self.status = response.status_code
        self.code = body.get("code", "")
        super().__init__(f"{self.status} {self.code}: {body.get('message', response.reason)}")


class ApiClient:
    """Tokens of one login, renewed as needed."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.access_token = ""
        self.refresh_token = ""
        self.refreshes = 0

    def login(self, username: str, password: str) -> None:
        """POST /api/auth/login and keep the tokens."""
        self._keep(self._post("/api/auth/login", {"username": username, "password": password}))

    def refresh(self) -> None:
        """POST /api/auth/refresh: new tokens; the old refresh token is spent."""
        self._keep(self._post("/api/auth/refresh", {"refresh_token": self.refresh_token}))
        self.refreshes += 1

    def logout(self) -> None:
        """POST /api/auth/logout: both tokens stop working everywhere."""
        self.call("POST", "/api/auth/logout")
        self.access_token = self.refresh_token = ""

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response:
        """A request with the access token; refreshed once and retried if it has expired."""
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and _code(response) == "token_expired":
            self.refresh()
            response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response)
        return response

    def _send(self, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.access_token}"}
        return self.http.request(
            method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs
        )

    def _post(self, path: str, body: dict[str, str]) -> dict[str, str]:
        response = self.http.post(self.base_url + path, json=body, timeout=self.timeout)
        if response.status_code != 200:
            raise ApiError(response)
        tokens: dict[str, str] = response.json()
        return tokens

    def _keep(self, tokens: dict[str, str]) -> None:
        self.access_token = tokens["access_token"]
        self.refresh_token = tokens["refresh_token"]


def _code(response: requests.Response) -> str:
    """The error code of an error response ('' when there is none)."""
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""


def main(argv: list[str] | None = None) -> int:
    """Log in, call two protected routes (refreshing if needed), log out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--username", required=True)
    parser.add_argument(
        "--wait", type=float, default=0.0, help="Seconds to wait between the calls."
    )
    args = parser.parse_args(argv)
    password = os.environ.get("API_PASSWORD") or getpass.getpass("Password: ")

    client = ApiClient(args.url)
    client.login(args.username, password)
    print("logged in as", client.call("GET", "/api/auth/me").json()["username"])
    time.sleep(args.wait)
    print(client.call("GET", "/api/restricted").json()["message"])
    print("refreshed", client.refreshes, "time(s)")
    client.logout()
    print("logged out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
