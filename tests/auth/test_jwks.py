"""Key sets over real loopback HTTP: caching, refetch window, rotation, outages, health."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer

from auth.errors import AuthUnavailableError
from auth.issuers import EXTENSION
from auth.jwks import KeySet, fetch_json
from tests.auth.conftest import bearer
from tests.support.oidc import DISCOVERY, LocalIssuer, SigningKey
from tests.support.services import free_port

IssuerApp = Callable[..., Flask]
# Health checks that fetch keys get time to spare on a busy machine (the default is 1.5 s).
SLOW = 5


class FakeClock:
    """A monotonic clock the test moves forward."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


ClockedApp = Callable[..., tuple[Flask, FakeClock]]


@pytest.fixture
def clocked_app(issuer_app: IssuerApp, monkeypatch: pytest.MonkeyPatch) -> ClockedApp:
    """``clocked_app(issuer, **settings)``: an app whose key set for ``issuer`` runs on a
    FakeClock, and that clock."""

    def build(issuer: LocalIssuer, **settings: object) -> tuple[Flask, FakeClock]:
        app = issuer_app(issuer.config(), **settings)
        clock = FakeClock()
        monkeypatch.setattr(app.extensions[EXTENSION].key_sets[issuer.path], "clock", clock)
        return app, clock

    return build


def status(app: Flask, token: str) -> int:
    """The status of GET /api/restricted with ``token``."""
    return app.test_client().get("/api/restricted", headers=bearer(token)).status_code


def health(app: Flask) -> dict[str, str]:
    """Each /healthcheck result's status by check name."""
    results = app.test_client().get("/healthcheck").get_json()["results"]
    return {result["name"]: result["status"] for result in results}


def test_key_set_is_fetched_once_and_cached(oidc: LocalIssuer, issuer_app: IssuerApp) -> None:
    app = issuer_app(oidc.config())
    assert oidc.jwks_fetches == 0  # nothing is fetched at start-up
    assert [status(app, oidc.token()) for _ in range(5)] == [200] * 5
    assert oidc.jwks_fetches == 1


def test_forged_kid_flood_costs_at_most_one_fetch_per_window(
    oidc: LocalIssuer, clocked_app: ClockedApp
) -> None:
    app, clock = clocked_app(oidc, JWKS_MIN_REFETCH_SECONDS=30)
    assert status(app, oidc.token()) == 200
    forged = [oidc.token(headers={"kid": uuid.uuid4().hex}) for _ in range(25)]
    assert {status(app, token) for token in forged} == {401}
    assert oidc.jwks_fetches == 2  # the first load, then one refetch for the window
    clock.advance(29)
    assert status(app, forged[0]) == 401
    assert oidc.jwks_fetches == 2
    clock.advance(2)
    assert status(app, forged[1]) == 401
    assert oidc.jwks_fetches == 3


def test_rotated_key_is_accepted_after_one_fetch(
    oidc: LocalIssuer, issuer_app: IssuerApp, rsa_key_2: SigningKey, ec_key: SigningKey
) -> None:
    app = issuer_app(oidc.config(algorithms=["RS256", "ES256"]))
    assert status(app, oidc.token()) == 200
    oidc.keys[:] = [rsa_key_2, ec_key]  # the provider rotates
    assert status(app, oidc.token(key=rsa_key_2)) == 200
    assert oidc.jwks_fetches == 2
    assert status(app, oidc.token(key=ec_key)) == 200
    assert oidc.jwks_fetches == 2


def test_key_set_is_refreshed_after_its_ttl(oidc: LocalIssuer, clocked_app: ClockedApp) -> None:
    app, clock = clocked_app(oidc, JWKS_CACHE_SECONDS=60)
    assert status(app, oidc.token()) == 200
    clock.advance(59)
    assert status(app, oidc.token()) == 200
    assert oidc.jwks_fetches == 1
    clock.advance(2)
    assert status(app, oidc.token()) == 200
    assert oidc.jwks_fetches == 2


def test_provider_down_keeps_the_last_good_keys(
    oidc: LocalIssuer, clocked_app: ClockedApp, caplog: pytest.LogCaptureFixture
) -> None:
    app, clock = clocked_app(oidc, JWKS_CACHE_SECONDS=60, HEALTHCHECK_TIMEOUT_SECONDS=SLOW)
    assert status(app, oidc.token()) == 200
    oidc.available = False
    # Within the TTL nothing is fetched, and readiness holds.
    assert health(app)[f"jwks:{oidc.path}"] == "success"
    assert oidc.jwks_fetches == 1
    clock.advance(61)
    with caplog.at_level(logging.WARNING, logger="auth.jwks"):
        assert status(app, oidc.token()) == 200  # a new token, verified with the old keys
    assert oidc.jwks_fetches == 2
    assert "the last good key set stays in use" in caplog.text
    # Attempts back off: the next request within a second does not ask again.
    assert status(app, oidc.token()) == 200
    assert oidc.jwks_fetches == 2
    # The set is past its TTL and cannot be renewed: readiness reports it.
    clock.advance(1)
    assert health(app)[f"jwks:{oidc.path}"] == "failure"


@pytest.fixture
def late_provider(rsa_key: SigningKey) -> Iterator[LocalIssuer]:
    """An issuer whose listener is not started yet (nothing answers on its port)."""
    server = HTTPServer(host="127.0.0.1", port=free_port())
    yield LocalIssuer(server, "late", [rsa_key])
    if server.is_running():
        server.stop()


def test_first_start_with_the_provider_down_is_503_then_recovers(
    late_provider: LocalIssuer, clocked_app: ClockedApp
) -> None:
    app, clock = clocked_app(late_provider, HEALTHCHECK_TIMEOUT_SECONDS=SLOW)
    client = app.test_client()
    token = late_provider.token()
    response = client.get("/api/restricted", headers=bearer(token))
    body = response.get_json()
    assert response.status_code == 503
    assert (body["error"], body["success"]) == (503, False)
    assert "identity provider" in body["message"]
    assert health(app)["jwks:late"] == "failure"
    late_provider.server.start()
    clock.advance(1)
    assert status(app, token) == 200
    assert health(app)["jwks:late"] == "success"


def test_discovery_issuer_must_match_exactly(
    oidc: LocalIssuer, issuer_app: IssuerApp, caplog: pytest.LogCaptureFixture
) -> None:
    oidc.discovery_issuer = oidc.issuer + "/"
    app = issuer_app(oidc.config(discovery=True, jwks_uri=None))
    with caplog.at_level(logging.ERROR, logger="auth.jwks"):
        assert status(app, oidc.token()) == 503
    assert "must match exactly" in caplog.text
    assert oidc.served[DISCOVERY] == 1
    assert oidc.jwks_fetches == 0  # a mismatched document's jwks_uri is never used


def test_discovery_is_read_once(oidc: LocalIssuer, issuer_app: IssuerApp) -> None:
    app = issuer_app(oidc.config(discovery=True, jwks_uri=None))
    assert [status(app, oidc.token()) for _ in range(3)] == [200] * 3
    assert (oidc.served[DISCOVERY], oidc.jwks_fetches) == (1, 1)


def test_health_check_loads_keys_before_the_first_token(
    oidc: LocalIssuer, issuer_app: IssuerApp
) -> None:
    app = issuer_app(oidc.config(), HEALTHCHECK_TIMEOUT_SECONDS=SLOW)
    assert health(app)[f"jwks:{oidc.path}"] == "success"
    assert status(app, oidc.token()) == 200
    assert oidc.jwks_fetches == 1


def test_encryption_keys_are_not_used_for_signatures(
    oidc: LocalIssuer, issuer_app: IssuerApp, ec_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    encryption_key = SigningKey.ec("enc-1")
    oidc.keys[:] = [ec_key, encryption_key]
    real_jwk = SigningKey.jwk
    monkeypatch.setattr(
        SigningKey,
        "jwk",
        lambda self: {**real_jwk(self), "use": "enc"} if self.kid == "enc-1" else real_jwk(self),
    )
    app = issuer_app(oidc.config(algorithms=["ES256"]))
    assert status(app, oidc.token(key=ec_key)) == 200
    assert status(app, oidc.token(key=encryption_key)) == 401


def test_failed_fetches_back_off_up_to_the_refetch_window(oidc: LocalIssuer) -> None:
    oidc.available = False
    clock = FakeClock()
    start = clock.now
    attempted_at: list[float] = []

    def fetch(url: str) -> object:
        # Counted where the attempt is made: a loaded machine may log it late on the server.
        attempted_at.append(clock.now - start)
        return fetch_json(url)

    key_set = KeySet(
        "backoff",
        oidc.issuer,
        jwks_uri=oidc.jwks_uri,
        cache_seconds=60,
        min_refetch_seconds=5,
        fetch=fetch,
        clock=clock,
    )
    for _ in range(26):  # 13 seconds in half-second steps
        with pytest.raises(AuthUnavailableError):
            key_set.key("rsa-1")
        clock.advance(0.5)
    assert attempted_at == [0, 1, 3, 7, 12]  # 1, 2, 4 s, then the 5 s window
