"""The settings the benchmarks run the app with: production, Redis sessions on DB 15.

Besides its own tokens, the app accepts the tokens of one local HS256 issuer, and its database
holds one user; the issuer's key and the user's password are new in every benchmark process.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

# Its own database, so that the benchmark's sessions never mix with development data.
REDIS_URL = "redis://127.0.0.1:6379/15"
# One secret per benchmark process: tokens from one run are useless in the next.
SECRET_KEY = secrets.token_urlsafe(48)
# The user whose access tokens and API key are measured (the password is never shown).
BENCH_USER = "bench"
BENCH_PASSWORD = secrets.token_urlsafe(32)
# A third-party issuer signing with a shared key: no key set to fetch, so no network.
ISSUER = "bench-issuer"
ISSUER_AUDIENCE = "bench-api"
ISSUER_KEY_ENV = "BENCH_ISSUER_KEY"
ISSUER_KEY = secrets.token_urlsafe(48)


def bench_redis_url() -> str:
    """BENCH_REDIS_URL from the environment, else DB 15 of the local Redis."""
    return os.environ.get("BENCH_REDIS_URL", REDIS_URL)


def app_settings(instance: Path, batteries: bool = True) -> dict[str, str]:
    """The app as deployed (README, Production), with rate limits off so issuing is measured.

    ``batteries=False`` switches off the two per-request batteries that have a knob (the
    access log and metrics); request ids, timing and security headers are always on.
    """
    return {
        "APP_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "INSTANCE_PATH": str(instance),
        "SESSION_TYPE": "redis",
        "REDIS_URL": bench_redis_url(),
        "TRUSTED_PROXIES": "0",
        # INFO: with the batteries on, every request really writes its access-log line.
        "LOG_LEVEL": "info",
        "RATELIMIT_ENABLED": "0",
        "ACCESS_LOG": "1" if batteries else "0",
        "METRICS_ENABLED": "1" if batteries else "0",
        "METRICS_TOKEN": secrets.token_urlsafe(16),
        "TOKEN_ISSUERS": json.dumps(
            [{"issuer": ISSUER, "audience": ISSUER_AUDIENCE, "hs_key_env": ISSUER_KEY_ENV}]
        ),
        ISSUER_KEY_ENV: ISSUER_KEY,
    }


def delete_sessions(sids: list[str]) -> None:
    """Remove the benchmark's sessions (by id) from its Redis database."""
    import redis

    from api.sessions import KEY_PREFIX

    client = redis.Redis.from_url(bench_redis_url())
    try:
        for start in range(0, len(sids), 1000):
            client.delete(*(KEY_PREFIX + sid for sid in sids[start : start + 1000]))
    finally:
        client.close()
