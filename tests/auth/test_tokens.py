"""TokenCodec: format, claims and every way a token can be wrong (no Flask, no server)."""

from __future__ import annotations

import base64
import json

import pytest
from jwcrypto import jwe, jwk, jws

from auth.errors import AuthError
from auth.tokens import JWE_HEADER, JWS_HEADER, TokenCodec, derive_key

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
NOW = 1_800_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def codec(clock: Clock) -> TokenCodec:
    return TokenCodec(SECRET, issuer="tests", ttl_seconds=900, leeway_seconds=5, clock=clock)


def b64json(segment: str) -> dict[str, object]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_token_is_compact_jwe_with_exactly_the_issued_header(codec: TokenCodec) -> None:
    token = codec.issue("session-uid")
    parts = token.split(".")
    assert len(parts) == 5
    header = b64json(parts[0])
    assert header == {"alg": "A256KW", "enc": "A256CBC-HS512", "typ": "JWT", "cty": "JWT"}
    assert not {"jwk", "jku", "x5u", "kid", "zip"} & header.keys()


def test_claims_round_trip(codec: TokenCodec) -> None:
    claims = codec.verify(codec.issue("session-uid", permissions=["b", "a", "a"]))
    assert claims.uid == "session-uid"
    assert claims.iss == "tests"
    assert claims.iat == claims.nbf == int(NOW)
    assert claims.exp == int(NOW) + 900
    assert len(claims.jti) == 32
    assert claims.permissions == ("a", "b")


def test_every_token_has_its_own_jti(codec: TokenCodec) -> None:
    first, second = codec.issue("u"), codec.issue("u")
    assert first != second
    assert codec.verify(first).jti != codec.verify(second).jti


def test_key_material_is_not_in_the_token(codec: TokenCodec) -> None:
    token = codec.issue("u")
    for purpose in ("token-encryption", "token-signing"):
        raw = derive_key(SECRET, purpose)
        assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() not in token
    assert "unit-test-secret" not in repr(codec)


@pytest.mark.parametrize("segment", range(5))
def test_each_tampered_segment_is_rejected(codec: TokenCodec, segment: int) -> None:
    parts = codec.issue("u").split(".")
    # Flip a character in the middle so base64 padding bits cannot hide the change.
    middle = len(parts[segment]) // 2
    flipped = "A" if parts[segment][middle] != "A" else "B"
    parts[segment] = parts[segment][:middle] + flipped + parts[segment][middle + 1 :]
    with pytest.raises(AuthError) as caught:
        codec.verify(".".join(parts))
    assert caught.value.code == "invalid_token"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "a.b.c.d.e",
        "a..c.d.e",
        '{"protected": "x", "ciphertext": "y"}',
        "x" * 5000,
    ],
)
def test_malformed_tokens_get_the_uniform_error(codec: TokenCodec, token: str) -> None:
    with pytest.raises(AuthError) as caught:
        codec.verify(token)
    assert caught.value.code == "invalid_token"
    assert caught.value.description == "The token is invalid; get a new one from GET /api/public."


def test_token_from_another_secret_is_rejected(codec: TokenCodec, clock: Clock) -> None:
    other = TokenCodec("another-secret-that-is-long-enough-01234567", "tests", 900, clock=clock)
    with pytest.raises(AuthError) as caught:
        codec.verify(other.issue("u"))
    assert caught.value.code == "invalid_token"


def test_token_from_another_issuer_is_rejected(codec: TokenCodec, clock: Clock) -> None:
    other = TokenCodec(SECRET, issuer="someone-else", ttl_seconds=900, clock=clock)
    with pytest.raises(AuthError) as caught:
        codec.verify(other.issue("u"))
    assert caught.value.code == "invalid_token"


@pytest.mark.parametrize(
    "extra_header",
    [{"zip": "DEF"}, {"jku": "https://attacker.test/keys"}, {"kid": "x"}],
)
def test_headers_we_never_issue_are_rejected(codec: TokenCodec, extra_header: dict) -> None:
    # Re-encrypt a genuine signed payload with the right key: only the header differs.
    genuine = jwe.JWE()
    genuine.deserialize(codec.issue("u"), key=codec._encryption_key)

    def encrypt(header: dict[str, object]) -> str:
        token = jwe.JWE(genuine.payload, protected=header)
        token.add_recipient(codec._encryption_key)
        return str(token.serialize(compact=True))

    assert codec.verify(encrypt(JWE_HEADER)).uid == "u"
    with pytest.raises(AuthError) as caught:
        codec.verify(encrypt({**JWE_HEADER, **extra_header}))
    assert caught.value.code == "invalid_token"


def test_expired_token_is_rejected(codec: TokenCodec, clock: Clock) -> None:
    token = codec.issue("u")
    clock.now = NOW + 900 + 5 - 1  # still inside the leeway
    assert codec.verify(token).uid == "u"
    clock.now = NOW + 900 + 5
    with pytest.raises(AuthError) as caught:
        codec.verify(token)
    assert caught.value.code == "token_expired"


def test_not_yet_valid_token_is_rejected(codec: TokenCodec, clock: Clock) -> None:
    clock.now = NOW + 60
    token = codec.issue("u")
    clock.now = NOW
    with pytest.raises(AuthError) as caught:
        codec.verify(token)
    assert caught.value.code == "token_not_yet_valid"


def test_cached_verification_still_checks_time(codec: TokenCodec, clock: Clock) -> None:
    token = codec.issue("u")
    assert codec.verify(token).uid == "u"  # now cached
    clock.now = NOW + 10_000
    with pytest.raises(AuthError):
        codec.verify(token)


def _keys() -> tuple[jwk.JWK, jwk.JWK]:
    """The encryption and signing keys a codec with SECRET uses, as JWKs."""
    return tuple(  # type: ignore[return-value]
        jwk.JWK(
            kty="oct", k=base64.urlsafe_b64encode(derive_key(SECRET, purpose)).decode().rstrip("=")
        )
        for purpose in ("token-encryption", "token-signing")
    )


def test_issued_tokens_open_with_jwcrypto_alone(codec: TokenCodec) -> None:
    # The codec assembles the compact form itself; jwcrypto's own JWE and JWS must read it.
    encryption_key, signing_key = _keys()
    token = codec.issue("u" * 32, ["reports"])
    encrypted = jwe.JWE()
    encrypted.deserialize(token, key=encryption_key)
    assert encrypted.jose_header == JWE_HEADER
    signed = jws.JWS()
    signed.deserialize(encrypted.payload.decode(), key=signing_key)
    assert signed.jose_header == JWS_HEADER
    claims = json.loads(signed.payload)
    assert claims["uid"] == "u" * 32 and claims["permissions"] == ["reports"]
    assert claims["iss"] == "tests" and claims["exp"] == claims["iat"] + 900


def test_tokens_sealed_by_jwcrypto_objects_verify(codec: TokenCodec) -> None:
    # And the other way round: a token built with jwcrypto's JWS and JWE objects is accepted.
    encryption_key, signing_key = _keys()
    now = int(NOW)
    payload = {"iss": "tests", "jti": "j1", "iat": now, "nbf": now, "exp": now + 60,
               "typ": "session", "uid": "v" * 32, "permissions": []}  # fmt: skip
    signed = jws.JWS(json.dumps(payload).encode())
    signed.add_signature(signing_key, alg="HS256", protected=JWS_HEADER)
    encrypted = jwe.JWE(signed.serialize(compact=True).encode(), protected=JWE_HEADER)
    encrypted.add_recipient(encryption_key)
    claims = codec.verify(encrypted.serialize(compact=True))
    assert claims.uid == "v" * 32 and claims.jti == "j1"
