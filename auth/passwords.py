"""Passwords: argon2id hashing (OWASP parameters), rehash on login, and the password policy.

The policy follows NIST SP 800-63B: a length range, no composition rules, and a refusal of
known common passwords (``auth/data/common_passwords.txt``, see its header for its origin),
also when a common word is only decorated with digits or symbols ("Summer2024!").
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from auth.errors import InvalidInput

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "hash_password",
    "needs_rehash",
    "password_problems",
    "require_valid_password",
    "verify_dummy",
    "verify_password",
]

MIN_LENGTH = 10
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common_passwords.txt"
DECORATION = string.digits + string.punctuation + string.whitespace

# OWASP Password Storage Cheat Sheet, argon2id: 19 MiB of memory, 2 iterations, 1 lane
# (about 35 ms per hash on a 2-core machine). Changing them makes every stored hash
# "need a rehash": it is replaced on the user's next successful login.
_hasher = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (PHC string with its own salt and parameters)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False also for a malformed hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's (rehash it on login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


# A hash of a discarded random value, made with today's parameters: verifying against it costs
# what verifying a real user's hash costs, from the very first request.
_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$RbdmhJBJaRkWue+v6QYd2A"
    "$+rIsq8oKiO6RLMY8fkn5KAifE0Lw0T8qj2zWTtJQeic"
)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """The dummy hash, remade once per process should the parameters above change."""
    if not needs_rehash(_DUMMY_HASH):
        return _DUMMY_HASH
    import secrets

    return hash_password(secrets.token_urlsafe(32))


def verify_dummy(password: str) -> None:
    """Spend the time of a real verification: unknown users cost what known ones do."""
    verify_password(_dummy_hash(), password)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords and base words (lower case)."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_problems(password: str, username: str | None = None) -> list[str]:
    """Every reason the policy refuses ``password`` (empty when it is acceptable)."""
    if len(password) < MIN_LENGTH:
        return [f"The password must be at least {MIN_LENGTH} characters long."]
    if len(password) > MAX_LENGTH:
        return [f"The password must be at most {MAX_LENGTH} characters long."]
    problems = []
    folded = password.casefold()
    if username and folded == username.casefold():
        problems.append("The password must not be the same as the username; choose another.")
    words = common_passwords()
    if folded in words or folded.strip(DECORATION) in words:
        problems.append(
            "The password is too common: it is, or is built on, a password found in leaked "
            "password lists; choose a less predictable one, such as a few unrelated words."
        )
    return problems


def require_valid_password(
    password: str, username: str | None = None, field: str = "password"
) -> None:
    """Raise ``InvalidInput`` (422) naming every reason the policy refuses ``password``."""
    problems = password_problems(password, username)
    if problems:
        raise InvalidInput(field, problems)
