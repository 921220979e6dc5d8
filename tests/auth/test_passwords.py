"""Password hashing (argon2id, OWASP parameters, rehash detection) and the password policy."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from auth.errors import InvalidInput
from auth.passwords import (
    common_passwords,
    hash_password,
    needs_rehash,
    password_problems,
    require_valid_password,
    verify_dummy,
    verify_password,
)

GOOD = "amber-kettle-violin-42"


def test_hash_is_argon2id_with_owasp_parameters_and_verifies() -> None:
    stored = hash_password(GOOD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert GOOD not in stored
    assert hash_password(GOOD) != stored  # a new salt each time
    assert verify_password(stored, GOOD)
    assert not verify_password(stored, GOOD + "x")
    assert not verify_password("not a hash", GOOD)
    assert not needs_rehash(stored)


def test_hashes_made_with_other_parameters_need_a_rehash() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(GOOD)
    assert verify_password(old, GOOD)  # still accepted at login ...
    assert needs_rehash(old)  # ... and then replaced
    assert needs_rehash("garbage")


def test_dummy_verification_costs_a_real_one() -> None:
    verify_dummy(GOOD)  # returns nothing and raises nothing, whatever the password


def test_the_shipped_list_has_thousands_of_entries_and_says_where_it_comes_from() -> None:
    words = common_passwords()
    assert 3000 <= len(words) <= 20000
    assert {"password", "baseball", "qwertyuiop", "1q2w3e4r5t"} <= words
    from auth.passwords import COMMON_PASSWORDS_FILE

    assert "zxcvbn" in COMMON_PASSWORDS_FILE.read_text().splitlines()[2]


@pytest.mark.parametrize(
    ("password", "username", "fragment"),
    [
        ("short", None, "at least 10 characters"),
        ("x" * 129, None, "at most 128 characters"),
        ("QwertyUIOP", None, "too common"),
        ("1234567890", None, "too common"),
        ("Baseball2024!!", None, "too common"),  # a common word, decorated
        ("  Summer!!2019 ", None, "too common"),
        ("Ada.Lovelace1815", "ada.lovelace1815", "same as the username"),
    ],
)
def test_policy_refusals(password: str, username: str | None, fragment: str) -> None:
    problems = password_problems(password, username)
    assert any(fragment in problem for problem in problems), problems
    with pytest.raises(InvalidInput) as caught:
        require_valid_password(password, username, field="new_password")
    assert caught.value.field == "new_password"
    assert all(problem.endswith(".") for problem in caught.value.problems)


@pytest.mark.parametrize(
    "password",
    [GOOD, "x" * 10 + "!", "correct horse battery staple", "ünïcødé-pässwörd", "y" * 128],
)
def test_policy_accepts(password: str) -> None:
    assert password_problems(password, "ada") == []
