"""The operations settings are validated at start-up like every other setting."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from api.settings import ConfigError


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("RATELIMIT_TOKEN", "lots"),
        ("RATELIMIT_STORAGE_URI", "ftp://limits"),
        ("TRUSTED_PROXIES", "-1"),
        ("TRUSTED_PROXIES", "two"),
        ("HEALTHCHECK_TIMEOUT_SECONDS", "0"),
        ("LOG_FORMAT", "xml"),
        ("ACCESS_LOG_RETENTION_DAYS", "0"),
        ("METRICS_ENABLED", "maybe"),
    ],
)
def test_bad_values_are_refused(make_app: Callable[..., Flask], setting: str, value: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        make_app(**{setting: value})


def test_secret_settings_are_not_echoed(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError) as error:
        make_app(RATELIMIT_STORAGE_URI="ftp://user:pa55word@limits")
    assert "pa55word" not in str(error.value)
