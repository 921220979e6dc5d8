"""A local OpenID Connect issuer for the tests: discovery and JWKS over real loopback HTTP.

Each ``LocalIssuer`` lives under its own path of a pytest-httpserver listener on 127.0.0.1
(several issuers can share one listener), publishes the public half of its ``SigningKey``s,
signs tokens with them and counts how often its documents were fetched.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pytest_httpserver import HTTPServer
from werkzeug import Response

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/jwks.json"


@dataclass(frozen=True)
class SigningKey:
    """A private key with its kid and algorithm; ``jwk()`` is its published public half."""

    kid: str
    alg: str
    private: Any

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        """A new RSA 2048 key for RS256."""
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        """A new P-256 key for ES256."""
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, object]:
        """The public JWK as a provider publishes it."""
        algorithm = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        public: dict[str, object] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: Mapping[str, object], **headers: object) -> str:
        """A compact JWS of ``claims`` with this key's kid (override or drop it via headers)."""
        header = {"kid": self.kid, **headers}
        if header["kid"] is None:
            del header["kid"]
        return jwt.encode(dict(claims), self.private, algorithm=self.alg, headers=header)


@dataclass
class LocalIssuer:
    """An issuer at ``<listener>/<path>`` serving discovery and a JWKS of ``keys``."""

    server: HTTPServer
    path: str
    keys: list[SigningKey]
    discovery_issuer: str | None = None  # what discovery claims; default: the real issuer
    available: bool = True  # False: every document answers 503 (provider outage)
    served: dict[str, int] = field(default_factory=lambda: {DISCOVERY: 0, JWKS: 0})

    def __post_init__(self) -> None:
        for document in (DISCOVERY, JWKS):
            self.server.expect_request(f"/{self.path}{document}").respond_with_handler(
                lambda request, document=document: self._serve(document)
            )

    @property
    def issuer(self) -> str:
        """The ``iss`` of this issuer's tokens (no trailing slash)."""
        return self.server.url_for(f"/{self.path}")

    @property
    def jwks_uri(self) -> str:
        """Where the key set is published."""
        return self.issuer + JWKS

    @property
    def jwks_fetches(self) -> int:
        """How many times the key set was requested."""
        return self.served[JWKS]

    def _serve(self, document: str) -> Response:
        """Answer one request, counting it."""
        self.served[document] += 1
        if not self.available:
            return Response("provider down", status=503)
        if document == DISCOVERY:
            body = {
                "issuer": self.discovery_issuer or self.issuer,
                "jwks_uri": self.jwks_uri,
                "id_token_signing_alg_values_supported": sorted({key.alg for key in self.keys}),
            }
        else:
            body = {"keys": [key.jwk() for key in self.keys]}
        return Response(json.dumps(body), content_type="application/json")

    def claims(self, **extra: object) -> dict[str, object]:
        """Registered claims of a token valid for five minutes, plus ``extra``."""
        now = int(time.time())
        base: dict[str, object] = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": "api-1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        base.update(extra)
        return {name: value for name, value in base.items() if value is not None}

    def token(
        self,
        key: SigningKey | None = None,
        headers: Mapping[str, object] | None = None,
        **claims: object,
    ) -> str:
        """A token signed with ``key`` (default: the first key); a claim set to None is left out."""
        return (key or self.keys[0]).sign(self.claims(**claims), **(headers or {}))

    def config(self, **fields: object) -> dict[str, object]:
        """A TOKEN_ISSUERS entry for this issuer (JWKS URI given), with ``fields`` on top."""
        entry: dict[str, object] = {
            "name": self.path,
            "issuer": self.issuer,
            "audience": "api-1",
            "jwks_uri": self.jwks_uri,
            "algorithms": sorted({key.alg for key in self.keys}),
        }
        entry.update(fields)
        return {name: value for name, value in entry.items() if value is not None}


def request_log_paths(server: HTTPServer) -> list[str]:
    """Paths of every request the listener received, in order."""
    return [request.path for request, _ in server.log]
