"""TOKEN_ISSUERS / TOKEN_ISSUERS_FILE: the third-party issuers, checked whole at start-up.

Every entry is validated before the app starts and every problem is reported at once, in
sentences that name the entry and the bad value (never a key). Nothing here is fetched:
keys and discovery documents are read on first use (``auth.jwks``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from auth.claims import PRESETS, ClaimsMapping, mapping_for

__all__ = [
    "HS_ALGORITHMS",
    "JWKS_ALGORITHMS",
    "IssuerConfig",
    "load_issuers",
]

# Asymmetric algorithms only for issuers whose keys come from a JWKS: a shared-secret
# algorithm there would let anyone holding the public key sign (HS/RS confusion).
JWKS_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
HS_ALGORITHMS = ("HS256", "HS384", "HS512")
# RFC 7518, 3.2: a key at least as long as the hash output.
HS_KEY_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
# More leeway than a few minutes of clock skew would quietly extend every token's life.
MAX_LEEWAY_SECONDS = 300
TOKEN_USES = ("access", "id")
FIELDS = (
    "name",
    "issuer",
    "audience",
    "jwks_uri",
    "discovery",
    "hs_key_env",
    "algorithms",
    "subject_claim",
    "scopes_claim",
    "scopes_separator",
    "roles_claim",
    "preset",
    "leeway",
    "token_use",
)
CLAIM_FIELDS = ("subject_claim", "roles_claim", "scopes_claim")
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class IssuerConfig:
    """One accepted issuer: how its tokens are verified and how their claims are read."""

    name: str
    issuer: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...]
    mapping: ClaimsMapping
    leeway: int
    jwks_uri: str = ""
    discovery: bool = False
    hs_key_env: str = ""
    # The shared key itself: never shown (repr) and never part of comparisons.
    hs_key: bytes = field(default=b"", repr=False, compare=False)
    token_use: tuple[str, ...] = ()

    @property
    def uses_jwks(self) -> bool:
        """True when keys come from a JWKS (directly or through discovery), not a shared key."""
        return not self.hs_key_env

    @property
    def discovery_url(self) -> str:
        """``<issuer>/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0, 4)."""
        return self.issuer.rstrip("/") + DISCOVERY_PATH


def load_issuers(
    entries: object,
    file: str,
    environ: Mapping[str, object],
    *,
    production: bool,
    default_leeway: int,
) -> tuple[tuple[IssuerConfig, ...], list[str]]:
    """Parse TOKEN_ISSUERS (JSON text or a list) or TOKEN_ISSUERS_FILE; return configs, problems.

    ``environ`` supplies the variables named by ``hs_key_env``; ``production`` requires
    https for every URL that is fetched.
    """
    if entries and file:
        return (), [
            "TOKEN_ISSUERS and TOKEN_ISSUERS_FILE are both set; keep the issuers in one of them."
        ]
    setting = "TOKEN_ISSUERS_FILE" if file else "TOKEN_ISSUERS"
    try:
        raw = _read_file(file) if file else _decode(entries)
    except ValueError as exc:
        return (), [f"{setting}: {exc}"]
    if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
        return (), [
            f"{setting}: expected a list of issuer objects, e.g. "
            '[{"issuer": "https://idp.example.com/", "audience": "my-api", "discovery": true}].'
        ]
    problems: list[str] = []
    configs = []
    for index, entry in enumerate(raw, start=1):
        label = f"{setting} entry {index}"
        if isinstance(entry.get("issuer"), str):
            label += f" (issuer {entry['issuer']!r})"
        checker = _EntryCheck(label, entry, environ, production, default_leeway)
        config = checker.build()
        problems.extend(checker.problems)
        if config is not None:
            configs.append(config)
    problems.extend(_duplicates(configs, setting))
    return tuple(configs), problems


def _decode(entries: object) -> object:
    """TOKEN_ISSUERS as given: JSON text, already-parsed data (tests, code), or empty."""
    if not isinstance(entries, str):
        return entries if entries else []
    if not entries.strip():
        return []
    try:
        return json.loads(entries)
    except ValueError as exc:
        raise ValueError(
            f"it is not valid JSON ({exc.args[0]}); write a JSON list of issuer objects."
        ) from None


def _read_file(file: str) -> object:
    """A JSON file, or YAML when the name ends in .yaml/.yml (PyYAML is imported only then)."""
    path = Path(file)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"{file} cannot be read ({exc.strerror}); give a readable file.") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{file} is not valid YAML ({exc}).") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(
            f"{file} is not valid JSON ({exc.args[0]}); name it .yaml or .yml for YAML."
        ) from None


def _duplicates(configs: list[IssuerConfig], setting: str) -> list[str]:
    """Issuers and names must each be unique: tokens are routed by ``iss``, checks by name."""
    problems = []
    hints = {"issuer": "keep one entry per issuer", "name": "give each entry its own 'name'"}
    for attribute, hint in hints.items():
        values = [getattr(config, attribute) for config in configs]
        for value in sorted({value for value in values if values.count(value) > 1}):
            problems.append(f"{setting}: the {attribute} {value!r} appears more than once; {hint}.")
    return problems


class _EntryCheck:
    """Validates one entry, collecting every problem rather than stopping at the first."""

    def __init__(
        self,
        label: str,
        entry: dict[str, object],
        environ: Mapping[str, object],
        production: bool,
        default_leeway: int,
    ) -> None:
        self.label = label
        self.entry = entry
        self.environ = environ
        self.production = production
        self.default_leeway = default_leeway
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        """Record one problem of this entry."""
        self.problems.append(f"{self.label}: {text}")

    def build(self) -> IssuerConfig | None:
        """The IssuerConfig, or None when the entry has problems."""
        unknown = sorted(set(self.entry) - set(FIELDS))
        if unknown:
            # Names only: an unknown field might hold a pasted secret.
            self.problem(
                f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}."
            )
        issuer = self.text("issuer", required=True)
        audiences = self.texts("audience")
        if not audiences:
            self.problem(
                "'audience' is missing; set the client id or API identifier that the provider "
                "puts in the token's 'aud' (Cognito access tokens: 'client_id')."
            )
        preset = self.text("preset") or ""
        if preset and preset not in PRESETS:
            self.problem(f"preset {preset!r} is unknown; use one of {', '.join(PRESETS)}.")
        jwks_uri, discovery, hs_key_env = self.key_source(issuer)
        algorithms = self.algorithms(uses_jwks=not hs_key_env)
        hs_key = self.shared_key(hs_key_env, algorithms) if hs_key_env else b""
        leeway = self.leeway()
        token_use = self.token_use(preset)
        separator = self.text("scopes_separator")
        if "scopes_separator" in self.entry and not separator:
            self.problem("'scopes_separator' is empty; give e.g. ' ' or ','.")
        claim_names = {key: self.text(key) for key in CLAIM_FIELDS}
        name = self.text("name") or _default_name(issuer or "")
        if not NAME.fullmatch(name):
            self.problem(
                f"name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-'; set 'name'."
            )
        if self.problems or issuer is None:
            return None
        mapping = mapping_for(
            preset if preset in PRESETS else "",
            clients=audiences,
            scopes_separator=separator,
            **claim_names,
        )
        return IssuerConfig(
            name=name,
            issuer=issuer,
            audiences=audiences,
            algorithms=algorithms,
            mapping=mapping,
            leeway=leeway,
            jwks_uri=jwks_uri,
            discovery=discovery,
            hs_key_env=hs_key_env,
            hs_key=hs_key,
            token_use=token_use,
        )

    def key_source(self, issuer: str | None) -> tuple[str, bool, str]:
        """Exactly one of jwks_uri, discovery or hs_key_env; fetched URLs must be http(s)."""
        jwks_uri = self.text("jwks_uri") or ""
        discovery = self.entry.get("discovery", False)
        if not isinstance(discovery, bool):
            self.problem(f"'discovery' must be true or false, not {discovery!r}.")
            discovery = False
        hs_key_env = self.text("hs_key_env") or ""
        sources = {"jwks_uri": jwks_uri, "discovery": discovery, "hs_key_env": hs_key_env}
        chosen = [source for source, value in sources.items() if value]
        if len(chosen) != 1:
            self.problem(
                "set exactly one of 'jwks_uri', 'discovery': true or 'hs_key_env' "
                f"(found {', '.join(chosen) or 'none'})."
            )
        if jwks_uri:
            self.url("jwks_uri", jwks_uri)
        if discovery and issuer:
            self.url("issuer (used for discovery)", issuer)
        return jwks_uri, bool(discovery), hs_key_env

    def shared_key(self, hs_key_env: str, algorithms: tuple[str, ...]) -> bytes:
        """The key in the variable ``hs_key_env`` names, long enough for every algorithm."""
        value = self.environ.get(hs_key_env)
        hs_key = str(value).encode() if value else b""
        needed = max((HS_KEY_MIN_BYTES.get(alg, 0) for alg in algorithms), default=0)
        if not hs_key:
            self.problem(
                f"hs_key_env names {hs_key_env}, which is not set; put the shared key in that "
                "environment variable."
            )
        elif len(hs_key) < needed:
            self.problem(
                f"the key in {hs_key_env} is shorter than {needed} bytes, the least for "
                f"{', '.join(algorithms)}; use a longer random key."
            )
        return hs_key

    def url(self, what: str, url: str) -> None:
        """A URL the app fetches: http(s) with a host; https in production."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(f"{what} {url!r} is not an http(s) URL.")
        elif self.production and parts.scheme != "https":
            self.problem(f"{what} {url!r} must use https in production.")

    def algorithms(self, uses_jwks: bool) -> tuple[str, ...]:
        """The allow-list: asymmetric for JWKS issuers, HS for shared-key issuers; never none."""
        allowed = JWKS_ALGORITHMS if uses_jwks else HS_ALGORITHMS
        default = allowed[0]
        if "algorithms" not in self.entry:
            return (default,)
        algorithms = self.texts("algorithms")
        refused = [alg for alg in algorithms if alg not in allowed]
        if not algorithms or refused:
            kind = "a JWKS issuer" if uses_jwks else "a shared-key (hs_key_env) issuer"
            self.problem(
                f"'algorithms' {', '.join(refused) or 'is empty and'} not allowed for {kind}; "
                f"use some of {', '.join(allowed)}."
            )
        return algorithms

    def leeway(self) -> int:
        """Seconds of clock skew, 0 to MAX_LEEWAY_SECONDS; default TOKEN_LEEWAY_SECONDS."""
        leeway = self.entry.get("leeway", self.default_leeway)
        if isinstance(leeway, bool) or not isinstance(leeway, int) or leeway < 0:
            self.problem(f"'leeway' must be a whole number of seconds, not {leeway!r}.")
            return 0
        if leeway > MAX_LEEWAY_SECONDS:
            self.problem(
                f"'leeway' {leeway} is more than {MAX_LEEWAY_SECONDS} seconds; it is meant for "
                "clock skew, not for extending token lifetimes."
            )
        return leeway

    def token_use(self, preset: str) -> tuple[str, ...]:
        """Cognito: which token kinds are accepted (default both access and id tokens)."""
        if "token_use" not in self.entry:
            return TOKEN_USES if preset == "cognito" else ()
        uses = self.texts("token_use")
        if preset != "cognito":
            self.problem("'token_use' applies to the cognito preset only; remove it.")
        elif not uses or any(use not in TOKEN_USES for use in uses):
            self.problem(f"'token_use' must list some of {', '.join(TOKEN_USES)}.")
        return uses

    def text(self, key: str, required: bool = False) -> str | None:
        """A non-empty string field (None when absent)."""
        value = self.entry.get(key)
        if value is None:
            if required:
                self.problem(f"'{key}' is missing.")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(f"'{key}' must be a non-empty string.")
            return None
        return value.strip()

    def texts(self, key: str) -> tuple[str, ...]:
        """A string or a list of non-empty strings (empty when absent)."""
        value = self.entry.get(key)
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(
            isinstance(item, str) and item.strip() for item in items
        ):
            self.problem(f"'{key}' must be a string or a list of non-empty strings.")
            return ()
        return tuple(item.strip() for item in items)


def _default_name(issuer: str) -> str:
    """A readable default name from the issuer URL's host and path (``jwks:<name>``)."""
    parts = urlsplit(issuer)
    host = parts.netloc.rsplit("@", 1)[-1]
    base = f"{host}{parts.path}" if host else issuer
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-")[:64] or "issuer"
