"""Bearer tokens of third-party issuers (OIDC/JWKS providers, internal HS issuers).

A three-part JWT is routed by its (unverified) ``iss`` to the configured issuer; unknown
issuers are refused. The issuer's algorithm allow-list, key (by ``kid`` from its JWKS, or its
shared key), ``iss``, ``aud`` (Cognito: ``token_use`` and ``client_id``) are then checked by
PyJWT, ``exp``/``nbf``/``iat`` here with the issuer's leeway, the deny-list last. A verified
token becomes a ``Principal`` of kind ``external`` with normalised claims (``auth.claims``).

Verification is cached per process by token string until it expires (bounded), as our own
tokens are: time checks and the deny-list still run on every use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import click
import jwt
import redis
from flask import Flask, current_app
from flask.cli import AppGroup
from jwt.exceptions import PyJWTError

from auth.claims import InvalidClaimsError, normalise
from auth.credentials import auth_state
from auth.denylist import JTI, KEY_PREFIX, SUBJECT, DenyList
from auth.errors import (
    EXTERNAL_TOKEN_EXPIRED,
    EXTERNAL_TOKEN_INVALID,
    TOKEN_NOT_YET_VALID,
    UNKNOWN_ISSUER,
    AuthError,
)
from auth.issuer_config import IssuerConfig
from auth.jwks import KeyFetchError, KeySet, discover_jwks_uri, fetch_json, signing_keys
from auth.principal import EXTERNAL, Principal
from auth.tracked_cache import redis_client, tracked_cache

__all__ = ["EXTENSION", "ExternalTokens", "VerifiedToken", "init_app", "issuers_cli"]

EXTENSION = "issuers"
MAX_TOKEN_LENGTH = 8192
VERIFIED_CACHE_SIZE = 2048
NOT_CONFIGURED = "No token issuers are configured; set TOKEN_ISSUERS or TOKEN_ISSUERS_FILE."
ACCESS_TOKEN_USE = "access"  # noqa: S105 (Cognito's token_use value, not a secret)
# A denied jti whose exp is not given is kept this long (longer than typical access tokens).
DEFAULT_DENY_SECONDS = 24 * 3600


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature and claims passed; what each later use still checks."""

    config: IssuerConfig
    principal: Principal
    expires_at: float
    valid_from: float
    issued_at: float | None
    jti: str


class ExternalTokens:
    """Turns a third-party JWT into a Principal, or raises ``AuthError`` (401) / 503."""

    def __init__(
        self,
        configs: tuple[IssuerConfig, ...],
        key_sets: dict[str, KeySet],
        deny_list: DenyList | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.configs = {config.issuer: config for config in configs}
        self.key_sets = key_sets
        self.deny_list = deny_list
        self.clock = clock
        # Signature checks cost far more than the rest of a request; a token string always
        # verifies the same way, so each process checks it once.
        self._verify_cached = lru_cache(maxsize=VERIFIED_CACHE_SIZE)(self._verify)

    def __call__(self, token: str) -> Principal:
        """The Principal of a genuine, current, not denied token."""
        verified = self._verify_cached(token)
        leeway = verified.config.leeway
        now = self.clock()
        if now - leeway >= verified.expires_at:
            raise AuthError(EXTERNAL_TOKEN_EXPIRED)
        if now + leeway < verified.valid_from:
            raise AuthError(TOKEN_NOT_YET_VALID)
        if self.deny_list is not None:
            self.deny_list.check(
                verified.config.name,
                verified.jti,
                verified.principal.subject,
                verified.issued_at,
            )
        return verified.principal

    def _verify(self, token: str) -> VerifiedToken:
        """Route by ``iss``, check key, algorithm and claims; one error for every such failure."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthError(EXTERNAL_TOKEN_INVALID)
        try:
            unverified = jwt.decode_complete(token, options={"verify_signature": False})
        except PyJWTError:
            raise AuthError(EXTERNAL_TOKEN_INVALID) from None
        header, payload = unverified["header"], unverified["payload"]
        issuer = payload.get("iss")
        config = self.configs.get(issuer) if isinstance(issuer, str) else None
        if config is None:
            raise AuthError(UNKNOWN_ISSUER)
        alg = header.get("alg")
        if alg not in config.algorithms:
            raise AuthError(EXTERNAL_TOKEN_INVALID)
        key = self._key(config, header, alg)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                # Cognito (token_use set) names the audience per token kind; checked below.
                audience=None if config.token_use else list(config.audiences),
                issuer=config.issuer,
                options={
                    "require": ["exp"],
                    # Time claims are checked on every use (__call__), cached or not.
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": not config.token_use,
                    "enforce_minimum_key_length": True,
                },
            )
            times = [_time_claim(claims, name) for name in ("exp", "nbf", "iat")]
            if config.token_use:
                _check_cognito_audience(claims, config)
            normalised = normalise(claims, config.mapping)
        except (PyJWTError, InvalidClaimsError, TypeError, ValueError):
            raise AuthError(EXTERNAL_TOKEN_INVALID) from None
        expires_at, not_before, issued_at = times
        assert expires_at is not None  # required above
        jti = claims["jti"] if isinstance(claims.get("jti"), str) else ""
        principal = Principal(
            kind=EXTERNAL,
            subject=normalised.subject,
            roles=normalised.roles,
            scopes=normalised.scopes,
            # Cached and shared by requests: read-only all the way down.
            claims=normalised.claims,
            issuer=config.issuer,
            credential_id=jti or normalised.subject,
            name=normalised.name,
        )
        valid_from = max(not_before or -math.inf, issued_at or -math.inf)
        return VerifiedToken(config, principal, expires_at, valid_from, issued_at, jti)

    def _key(self, config: IssuerConfig, header: dict[str, object], alg: str) -> bytes | jwt.PyJWK:
        """The verification key: the shared key, or the JWK named by ``kid`` bound to ``alg``."""
        if not config.uses_jwks:
            return config.hs_key
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError(EXTERNAL_TOKEN_INVALID)
        jwk = self.key_sets[config.name].key(kid)
        # A key that names its algorithm is used with that one only (RFC 7517, 4.4).
        if jwk.get("alg", alg) != alg:
            raise AuthError(EXTERNAL_TOKEN_INVALID)
        try:
            return jwt.PyJWK(dict(jwk), algorithm=alg)
        except PyJWTError:
            raise AuthError(EXTERNAL_TOKEN_INVALID) from None


def _time_claim(claims: dict[str, object], name: str) -> float | None:
    """A NumericDate claim as a float (None when absent); anything else is refused."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} is not a NumericDate")
    return float(value)


def _check_cognito_audience(claims: dict[str, object], config: IssuerConfig) -> None:
    """Cognito: access tokens name the app client in ``client_id``, id tokens in ``aud``."""
    token_use = claims.get("token_use")
    if token_use not in config.token_use:
        raise ValueError("token_use not accepted")
    audience = claims.get("client_id" if token_use == ACCESS_TOKEN_USE else "aud")
    values = audience if isinstance(audience, list) else [audience]
    if not any(isinstance(value, str) and value in config.audiences for value in values):
        raise ValueError("wrong audience")


def init_app(app: Flask) -> ExternalTokens | None:
    """Register ``flask issuers``; with issuers configured, accept their tokens.

    Nothing is fetched here: keys are read on first use (or by the health check), so the app
    starts while a provider is down. Returns the verifier, whose ``key_sets`` the caller
    registers as health checks.
    """
    app.cli.add_command(issuers_cli)
    configs: tuple[IssuerConfig, ...] = app.config.get("TOKEN_ISSUERS") or ()
    if not configs:
        return None
    production = app.config.get("APP_ENV") == "production"
    key_sets = {
        config.name: KeySet(
            config.name,
            config.issuer,
            jwks_uri=config.jwks_uri,
            discovery_url=config.discovery_url if config.discovery else "",
            cache_seconds=app.config["JWKS_CACHE_SECONDS"],
            min_refetch_seconds=app.config["JWKS_MIN_REFETCH_SECONDS"],
            require_https=production,
        )
        for config in configs
        if config.uses_jwks
    }
    verifier = ExternalTokens(configs, key_sets, _deny_list(app))
    app.extensions[EXTENSION] = verifier
    auth_state(app).issuers = verifier
    return verifier


def _deny_list(app: Flask) -> DenyList | None:
    """The deny-list on the app's Redis; None without REDIS_URL (nothing can be denied then)."""
    client = redis_client(app)
    if client is None:
        return None
    return DenyList(client, tracked_cache(app, KEY_PREFIX))


# --- flask issuers ... ----------------------------------------------------------------------

issuers_cli = AppGroup(
    "issuers", help="Third-party token issuers: check their keys, deny tokens, lift denials."
)


def _configs() -> tuple[IssuerConfig, ...]:
    """The configured issuers, or a CLI error saying how to configure them."""
    configs: tuple[IssuerConfig, ...] = current_app.config.get("TOKEN_ISSUERS") or ()
    if not configs:
        raise click.ClickException(NOT_CONFIGURED)
    return configs


@issuers_cli.command("check")
def check_command() -> None:
    """Fetch and print each issuer's discovery document and keys (exit 1 if any fails)."""
    failed = 0
    production = current_app.config.get("APP_ENV") == "production"
    for config in _configs():
        click.echo(f"{config.name}: issuer {config.issuer}")
        if not config.uses_jwks:
            click.echo(
                f"  shared key from ${config.hs_key_env} "
                f"({', '.join(config.algorithms)}); nothing to fetch"
            )
            continue
        try:
            uri = config.jwks_uri
            if config.discovery:
                uri = discover_jwks_uri(config.discovery_url, config.issuer, production)
                click.echo(f"  discovery {config.discovery_url}: issuer matches")
            keys = signing_keys(fetch_json(uri))
        except KeyFetchError as exc:
            click.echo(f"  FAILED: {exc}", err=True)
            failed += 1
            continue
        click.echo(f"  jwks {uri}: {len(keys)} signing key(s)")
        for kid, jwk in keys.items():
            click.echo(f"    kid {kid}: {jwk.get('kty')} {jwk.get('alg') or '(alg not named)'}")
    if failed:
        raise click.exceptions.Exit(1)


ISSUER_OPTION = click.option(
    "--issuer", "issuer_name", help="The issuer's name; needed with several issuers."
)


@issuers_cli.command("deny")
@ISSUER_OPTION
@click.option("--jti", help="Deny the one token with this jti.")
@click.option(
    "--expires",
    help="With --jti: the token's exp (Unix time or ISO 8601); the entry is kept until then. "
    "Default: 24 hours from now.",
)
@click.option("--subject", help="Deny every token of this subject issued before --not-before.")
@click.option("--not-before", "not_before", help="With --subject: Unix time or ISO 8601; now.")
@click.option(
    "--keep-hours",
    "keep_hours",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    help="With --subject: how long the entry is kept; make it longer than the longest "
    "lifetime of the provider's tokens.",
)
def deny_command(
    issuer_name: str | None,
    jti: str | None,
    expires: str | None,
    subject: str | None,
    not_before: str | None,
    keep_hours: int,
) -> None:
    """Deny a token by --jti, or a subject's tokens by --subject (seen by every worker)."""
    kind, value = _entry(jti, subject)
    config = _chosen_issuer(issuer_name)
    deny_list = _cli_deny_list()
    now = time.time()
    with _redis_errors("written", "nothing was denied"):
        if kind == JTI:
            until = _timestamp(expires, "--expires") if expires else now + DEFAULT_DENY_SECONDS
            deny_list.deny_token(config.name, value, math.ceil(until - now))
            message = f"Denied the token {value} of {config.name} until {_utc(until)}."
        else:
            cutoff = _timestamp(not_before, "--not-before") if not_before else now
            deny_list.deny_subject(config.name, value, cutoff, keep_hours * 3600)
            message = (
                f"Denied the tokens of {value} at {config.name} issued before {_utc(cutoff)} "
                f"(entry kept {keep_hours} h)."
            )
    click.echo(message + " Every worker refuses it from its next request.")


@issuers_cli.command("undeny")
@ISSUER_OPTION
@click.option("--jti", help="Lift the denial of the token with this jti.")
@click.option("--subject", help="Lift the denial of this subject's tokens.")
def undeny_command(issuer_name: str | None, jti: str | None, subject: str | None) -> None:
    """Lift a denial made by deny --jti or deny --subject (seen by every worker)."""
    kind, value = _entry(jti, subject)
    config = _chosen_issuer(issuer_name)
    deny_list = _cli_deny_list()
    with _redis_errors("written", "nothing was lifted"):
        lifted = deny_list.lift(kind, config.name, value)
    if kind == JTI:
        denied, pronoun = f"the token {value} of {config.name}", "it"
    else:
        denied, pronoun = f"the tokens of {value} at {config.name}", "them"
    if not lifted:
        raise click.ClickException(
            f"There is no deny-list entry for {denied}: it was never made, was lifted "
            "already, or expired. `flask issuers denied` lists the entries."
        )
    click.echo(
        f"Lifted the denial of {denied}. Every worker accepts {pronoun} again from its next "
        "request."
    )


@issuers_cli.command("denied")
@click.option("--issuer", "issuer_name", help="Only this issuer; default: every one configured.")
def denied_command(issuer_name: str | None) -> None:
    """List the deny-list's entries per issuer, as deny and undeny take them."""
    configs = (_chosen_issuer(issuer_name),) if issuer_name else _configs()
    deny_list = _cli_deny_list()
    with _redis_errors("read", "nothing was listed"):
        listed = [(config.name, deny_list.entries(config.name)) for config in configs]
    for name, entries in listed:
        click.echo(f"{name}:" if entries else f"{name}: nothing denied.")
        for entry in entries:
            kept = (
                f"kept until {_utc(entry.expires_at)}" if entry.expires_at else "kept until lifted"
            )
            if entry.kind == JTI:
                click.echo(f"  --jti {entry.value}  {kept}")
            else:
                assert entry.not_before is not None
                cutoff = _utc(entry.not_before)
                click.echo(f"  --subject {entry.value}  issued before {cutoff}; {kept}")


def _entry(jti: str | None, subject: str | None) -> tuple[str, str]:
    """The entry named by exactly one of --jti and --subject: (JTI or SUBJECT, its value)."""
    if bool(jti) == bool(subject):
        raise click.UsageError("Give exactly one of --jti or --subject.")
    return (JTI, jti) if jti else (SUBJECT, str(subject))


def _cli_deny_list() -> DenyList:
    """The deny-list on the app's Redis (no cache: a command reads and writes it once)."""
    client = redis_client(current_app)
    if client is None:
        raise click.ClickException("The deny-list lives in Redis; set REDIS_URL.")
    return DenyList(client)


@contextmanager
def _redis_errors(access: str, outcome: str) -> Iterator[None]:
    """A Redis failure inside the block as a one-line error (exit status 1)."""
    try:
        yield
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis could not be {access} ({exc}); {outcome}.") from None


def _chosen_issuer(name: str | None) -> IssuerConfig:
    """The issuer named ``name`` (its name or its iss), or the only one configured."""
    configs = _configs()
    if name is None:
        if len(configs) > 1:
            names = ", ".join(config.name for config in configs)
            raise click.UsageError(f"Several issuers are configured; pass --issuer ({names}).")
        return configs[0]
    for config in configs:
        if name in (config.name, config.issuer):
            return config
    names = ", ".join(config.name for config in configs)
    raise click.BadParameter(f"{name!r} is not a configured issuer; use one of {names}.")


def _timestamp(text: str, option: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC when it names no zone)."""
    try:
        try:
            moment = datetime.fromtimestamp(float(text), UTC)
        except ValueError:
            moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise click.BadParameter(
            f"{text!r} is not a time; give Unix seconds or ISO 8601, e.g. 2030-01-31T12:00:00Z.",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _utc(timestamp: float) -> str:
    """A Unix time as readable UTC."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
