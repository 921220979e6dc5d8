"""TOKEN_ISSUERS / TOKEN_ISSUERS_FILE: parsed at start-up, every problem reported at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.settings import ConfigError, load_settings
from auth.issuer_config import IssuerConfig

GOOD = {"issuer": "https://idp.example.test/tenant", "audience": "api-1", "discovery": True}
SHARED_KEY = "k" * 40


def problems_of(entries: object, **environ: str) -> list[str]:
    """The problems load_settings reports for TOKEN_ISSUERS=``entries``."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"TOKEN_ISSUERS": json.dumps(entries), **environ})
    return caught.value.problems


def issuers_of(environ: dict[str, str]) -> tuple[IssuerConfig, ...]:
    """The parsed issuers of a valid configuration."""
    configs = load_settings(environ)["TOKEN_ISSUERS"]
    assert isinstance(configs, tuple)
    return configs


def test_no_issuers_by_default() -> None:
    assert load_settings({})["TOKEN_ISSUERS"] == ()


def test_a_good_entry_gets_defaults() -> None:
    (config,) = issuers_of({"TOKEN_ISSUERS": json.dumps([GOOD])})
    assert config.name == "idp.example.test-tenant"
    assert config.algorithms == ("RS256",)
    assert config.audiences == ("api-1",)
    assert config.leeway == 10  # TOKEN_LEEWAY_SECONDS
    assert config.discovery_url == (
        "https://idp.example.test/tenant/.well-known/openid-configuration"
    )


def test_every_problem_of_every_entry_is_reported_at_once() -> None:
    entries = [
        {"issuer": "https://a.example.test", "jwks_uri": "ftp://a.example.test/keys"},
        {**GOOD, "algorithms": ["RS256", "HS256", "none"], "preset": "okta"},
        {**GOOD, "hs_key_env": "UNSET_ISSUER_KEY", "leeway": 3600},
        {"audience": "x", "jwks_uri": "https://b.example.test/keys", "colour": "s3cr3t-value"},
        "not an object",
    ]
    problems = problems_of(entries)
    assert len(problems) == 1 and "list of issuer objects" in problems[0]
    problems = problems_of(entries[:4])
    text = "\n".join(problems)
    assert "entry 1 (issuer 'https://a.example.test'): 'audience' is missing" in text
    assert "'ftp://a.example.test/keys' is not an http(s) URL" in text
    assert "HS256, none not allowed for a JWKS issuer" in text
    assert "preset 'okta' is unknown" in text
    assert "set exactly one of 'jwks_uri', 'discovery': true or 'hs_key_env'" in text
    assert "'leeway' 3600 is more than 300 seconds" in text
    assert "hs_key_env names UNSET_ISSUER_KEY, which is not set" in text
    assert "entry 4: 'issuer' is missing" in text
    assert "unknown field(s) colour" in text
    assert "s3cr3t-value" not in text  # values of unknown fields are never shown
    assert len(problems) == 9


@pytest.mark.parametrize(
    ("fields", "environ", "message"),
    [
        ({"hs_key_env": "ISSUER_KEY"}, {}, "ISSUER_KEY, which is not set"),
        ({"hs_key_env": "ISSUER_KEY"}, {"ISSUER_KEY": "short"}, "shorter than 32 bytes"),
        (
            {"hs_key_env": "ISSUER_KEY", "algorithms": ["HS512"]},
            {"ISSUER_KEY": SHARED_KEY},
            "shorter than 64 bytes",
        ),
        (
            {"hs_key_env": "ISSUER_KEY", "algorithms": ["RS256"]},
            {"ISSUER_KEY": SHARED_KEY},
            "RS256 not allowed for a shared-key (hs_key_env) issuer",
        ),
        ({"jwks_uri": "https://x.test/k"}, {}, "(found jwks_uri, discovery)"),
        ({"token_use": ["access"]}, {}, "applies to the cognito preset only"),
        ({"preset": "cognito", "token_use": ["refresh"]}, {}, "some of access, id"),
        ({"audience": []}, {}, "'audience' is missing"),
        ({"name": "bad name!"}, {}, "name 'bad name!' must be 1 to 64 letters"),
        ({"discovery": "yes"}, {}, "'discovery' must be true or false"),
        ({"scopes_separator": ""}, {}, "'scopes_separator' must be a non-empty string"),
    ],
)
def test_entry_problems(fields: dict[str, object], environ: dict[str, str], message: str) -> None:
    entry = {**GOOD, **fields}
    if "hs_key_env" in fields:
        del entry["discovery"]
    problems = problems_of([entry], **environ)
    assert any(message in problem for problem in problems), problems
    assert SHARED_KEY not in "\n".join(problems)


def test_shared_key_is_read_from_the_named_variable_and_not_shown() -> None:
    entry = {"issuer": "internal", "audience": "api-1", "hs_key_env": "ISSUER_KEY"}
    (config,) = issuers_of({"TOKEN_ISSUERS": json.dumps([entry]), "ISSUER_KEY": SHARED_KEY})
    assert config.hs_key == SHARED_KEY.encode()
    assert config.algorithms == ("HS256",)
    assert SHARED_KEY not in repr(config)


def test_duplicate_issuers_and_names_are_refused() -> None:
    other = {**GOOD, "issuer": "https://idp.example.test/other", "name": "same"}
    problems = problems_of([GOOD, GOOD, other, {**other, "issuer": "https://c.test"}])
    text = "\n".join(problems)
    assert "the issuer 'https://idp.example.test/tenant' appears more than once" in text
    assert "the name 'same' appears more than once" in text


def test_production_requires_https() -> None:
    entries = [
        {"issuer": "http://idp.test", "audience": "a", "discovery": True},
        {"issuer": "https://b.test", "audience": "a", "jwks_uri": "http://b.test/keys"},
    ]
    secret = "Zq3xV8pL0wR6tY2uI9oP4aS7dF1gH5jK"
    problems = problems_of(entries, APP_ENV="production", SECRET_KEY=secret)
    assert sum("must use https in production" in problem for problem in problems) == 2


def test_invalid_json_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"TOKEN_ISSUERS": "[{'issuer': 1}]"})
    assert "TOKEN_ISSUERS: it is not valid JSON" in caught.value.problems[0]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_issuers_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"issuers{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps([GOOD]))
    else:
        path.write_text(
            "- issuer: https://idp.example.test/tenant\n"
            "  audience: [api-1, api-2]\n"
            "  discovery: true\n"
            "  preset: keycloak\n"
        )
    (config,) = issuers_of({"TOKEN_ISSUERS_FILE": str(path)})
    assert config.issuer == GOOD["issuer"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot be read"), ("[{", "is not valid JSON"), ("{}", "list of issuer objects")],
)
def test_issuers_file_problems(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "issuers.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_settings({"TOKEN_ISSUERS_FILE": str(path)})
    assert caught.value.problems[0].startswith("TOKEN_ISSUERS_FILE: ")
    assert message in caught.value.problems[0]


def test_both_settings_at_once_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"TOKEN_ISSUERS": json.dumps([GOOD]), "TOKEN_ISSUERS_FILE": "x.json"})
    assert "both set" in caught.value.problems[0]
