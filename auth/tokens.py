"""Token format: a signed JWS (HS256) inside a JWE (A256KW + A256CBC-HS512), no Flask here."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWException, base64url_encode, json_encode
from jwcrypto.jwa import JWA

from auth.errors import INVALID_TOKEN, TOKEN_EXPIRED, TOKEN_NOT_YET_VALID, AuthError

KEY_ALG = "A256KW"
CONTENT_ALG = "A256CBC-HS512"
SIGN_ALG = "HS256"
JWE_HEADER = {"alg": KEY_ALG, "enc": CONTENT_ALG, "typ": "JWT", "cty": "JWT"}
JWS_HEADER = {"alg": SIGN_ALG, "typ": "JWT"}
# The protected headers as serialized (jwcrypto's JSON encoding), the first part of each token.
_JWE_PROTECTED = base64url_encode(json_encode(JWE_HEADER))
_JWS_PROTECTED = base64url_encode(json_encode(JWS_HEADER))
# Compact JWE: five base64url parts; the encrypted key is never empty with A256KW.
COMPACT_JWE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){4}")
MAX_TOKEN_LENGTH = 4096
# As many as the session cache holds (api/session_cache.py): with fewer, round-robin traffic over
# more live tokens than the cache holds would decrypt every token on every request.
VERIFIED_CACHE_SIZE = 10_000
KDF_SALT = b"flask-jwe-api token keys v1"


# The "typ" claim: which kind of token this is. A token of one kind is refused wherever
# another is expected, so a session token can never stand in for an access token.
SESSION_TOKEN = "session"  # noqa: S105 (token kinds, not secrets)
ACCESS_TOKEN = "access"  # noqa: S105


@dataclass(frozen=True)
class TokenClaims:
    """The verified content of a session token (bound to a server-side session's ``uid``)."""

    uid: str
    jti: str
    iss: str
    iat: int
    nbf: int
    exp: int
    permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessClaims:
    """The verified content of a user's access token (one login family ``fam``)."""

    sub: str
    fam: str
    name: str
    jti: str
    iss: str
    iat: int
    nbf: int
    exp: int
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


Claims = TokenClaims | AccessClaims


def derive_key(secret: str, purpose: str) -> bytes:
    """32 bytes for one purpose, derived from SECRET_KEY with HKDF-SHA256."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=KDF_SALT, info=purpose.encode())
    return hkdf.derive(secret.encode())


def _octet_key(raw: bytes) -> jwk.JWK:
    """A symmetric JWK from raw bytes."""
    return jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


class TokenCodec:
    """Issues and verifies tokens with keys derived from one secret; keys never leave it."""

    def __init__(
        self,
        secret: str,
        issuer: str,
        ttl_seconds: int,
        leeway_seconds: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._encryption_key = _octet_key(derive_key(secret, "token-encryption"))
        self._signing_key = _octet_key(derive_key(secret, "token-signing"))
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        self.leeway_seconds = leeway_seconds
        self.clock = clock
        # Decryption is the costly part; a token string always decrypts to the same claims,
        # so each process verifies a token once. Time and session checks still run per use.
        self._verify_cached = lru_cache(maxsize=VERIFIED_CACHE_SIZE)(self._verify_crypto)
        # Issuing uses jwcrypto's algorithms directly (see _seal).
        self._sign_alg = JWA.signing_alg(SIGN_ALG)
        self._wrap_alg = JWA.keymgmt_alg(KEY_ALG)
        self._content_alg = JWA.encryption_alg(CONTENT_ALG)

    def __repr__(self) -> str:
        return f"TokenCodec(issuer={self.issuer!r}, ttl_seconds={self.ttl_seconds})"

    def issue(self, uid: str, permissions: Iterable[str] = ()) -> str:
        """Return a compact JWE for the session ``uid``."""
        return self._seal(
            {"typ": SESSION_TOKEN, "uid": uid, "permissions": sorted(set(permissions))},
            self.ttl_seconds,
        )

    def issue_access(
        self,
        subject: str,
        family: str,
        name: str,
        roles: Iterable[str],
        scopes: Iterable[str],
        ttl_seconds: int,
    ) -> str:
        """Return a compact JWE access token for user ``subject`` in login ``family``."""
        return self._seal(
            {
                "typ": ACCESS_TOKEN,
                "sub": subject,
                "fam": family,
                "name": name,
                "roles": sorted(set(roles)),
                "scopes": sorted(set(scopes)),
            },
            ttl_seconds,
        )

    def _seal(self, content: dict[str, object], ttl_seconds: int) -> str:
        """Add the registered claims, sign (compact JWS), then encrypt (compact JWE).

        The signature, the key wrap and the content encryption are jwcrypto's own algorithms
        (RFC 7518: HS256, A256KW, A256CBC-HS512); only the compact serialization (RFC 7515
        and 7516, base64url parts joined by dots) is assembled here. jwcrypto's JWS and JWE
        objects produce the same tokens but deep-copy their header registries on every
        construction, two thirds of the time an issue took. Verification still goes through
        those objects, so every token issued here is checked by them (and the tests say so).
        """
        now = int(self.clock())
        claims = {
            "iss": self.issuer,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
            **content,
        }
        payload = base64url_encode(json.dumps(claims, separators=(",", ":")))
        signing_input = f"{_JWS_PROTECTED}.{payload}"
        signature = self._sign_alg.sign(self._signing_key, signing_input.encode("ascii"))
        signed = f"{signing_input}.{base64url_encode(signature)}"
        wrapped = self._wrap_alg.wrap(
            self._encryption_key, self._content_alg.wrap_key_size, None, JWE_HEADER
        )
        iv, ciphertext, tag = self._content_alg.encrypt(
            wrapped["cek"], _JWE_PROTECTED.encode("ascii"), signed.encode("ascii")
        )
        return ".".join(
            (_JWE_PROTECTED, *map(base64url_encode, (wrapped["ek"], iv, ciphertext, tag)))
        )

    def verify(self, token: str) -> Claims:
        """Return the claims of a genuine, current token or raise ``AuthError``."""
        claims = self._verify_cached(token)
        now = self.clock()
        if now + self.leeway_seconds < claims.nbf:
            raise AuthError(TOKEN_NOT_YET_VALID)
        if now - self.leeway_seconds >= claims.exp:
            raise AuthError(TOKEN_EXPIRED)
        return claims

    def _verify_crypto(self, token: str) -> Claims:
        """Decrypt and check the signature and claim types; one error for every failure."""
        if len(token) > MAX_TOKEN_LENGTH or not COMPACT_JWE.fullmatch(token):
            raise AuthError(INVALID_TOKEN)
        try:
            if _protected_header(token) != JWE_HEADER:
                raise AuthError(INVALID_TOKEN)
            encrypted = jwe.JWE(algs=[KEY_ALG, CONTENT_ALG])
            encrypted.deserialize(token, key=self._encryption_key)
            inner = encrypted.payload.decode("ascii")
            if inner.count(".") != 2 or _protected_header(inner) != JWS_HEADER:
                raise AuthError(INVALID_TOKEN)
            signed = jws.JWS()
            signed.allowed_algs = [SIGN_ALG]
            signed.deserialize(inner, key=self._signing_key)
            return _claims_from(json.loads(signed.payload), self.issuer)
        except AuthError:
            raise
        except (JWException, ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
            raise AuthError(INVALID_TOKEN) from None


def _protected_header(compact: str) -> dict[str, object]:
    """Decode the first segment; an exact match with what we issue rules out zip/jku/x5u/jwk."""
    segment = compact.split(".", 1)[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header


def _claims_from(payload: object, issuer: str) -> Claims:
    """Check the claim set we issue, by token kind, and build its claims object."""
    if not isinstance(payload, dict) or payload.get("iss") != issuer:
        raise AuthError(INVALID_TOKEN)
    numbers = [payload.get(name) for name in ("iat", "nbf", "exp")]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        raise AuthError(INVALID_TOKEN)
    _require_texts(payload, "jti")
    common = {
        "jti": payload["jti"],
        "iss": issuer,
        "iat": payload["iat"],
        "nbf": payload["nbf"],
        "exp": payload["exp"],
    }
    kind = payload.get("typ")
    if kind == SESSION_TOKEN:
        _require_texts(payload, "uid")
        return TokenClaims(
            uid=payload["uid"], permissions=_text_list(payload, "permissions"), **common
        )
    if kind == ACCESS_TOKEN:
        _require_texts(payload, "sub", "fam")
        if not isinstance(payload.get("name"), str):
            raise AuthError(INVALID_TOKEN)
        return AccessClaims(
            sub=payload["sub"],
            fam=payload["fam"],
            name=payload["name"],
            roles=_text_list(payload, "roles"),
            scopes=_text_list(payload, "scopes"),
            **common,
        )
    raise AuthError(INVALID_TOKEN)


def _require_texts(payload: dict[str, object], *names: str) -> None:
    """Each claim must be a non-empty string."""
    if not all(isinstance(payload.get(name), str) and payload.get(name) for name in names):
        raise AuthError(INVALID_TOKEN)


def _text_list(payload: dict[str, object], name: str) -> tuple[str, ...]:
    """An optional claim holding a list of strings."""
    values = payload.get(name, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise AuthError(INVALID_TOKEN)
    return tuple(values)
