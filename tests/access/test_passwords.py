"""Passwords: argon2id hashes, a length policy, generated passwords, upgrades of old hashes."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from perennial.access.passwords import (
    MAX_PASSWORD_LENGTH,
    PasswordPolicyError,
    dummy_hash,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_a_hash_is_argon2id_salted_and_verifies_only_the_right_password() -> None:
    first = hash_password("correct horse battery")
    second = hash_password("correct horse battery")
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert "correct horse" not in first
    assert verify_password(first, "correct horse battery")
    assert not verify_password(first, "correct horse batterY")
    assert not verify_password(first, "")


@pytest.mark.parametrize("password", ["short", "x" * 11, "y" * (MAX_PASSWORD_LENGTH + 1)])
def test_too_short_or_too_long_passwords_are_refused(password: str) -> None:
    with pytest.raises(PasswordPolicyError):
        hash_password(password)


def test_an_oversized_attempt_or_a_damaged_hash_fails_without_raising() -> None:
    assert not verify_password(hash_password("a" * 20), "a" * 100_000)
    assert not verify_password("not a hash", "whatever password")
    assert needs_rehash("not a hash")


def test_generated_passwords_are_long_random_and_url_safe() -> None:
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(p) == 20 and p.replace("-", "").replace("_", "").isalnum() for p in passwords)


def test_hashes_made_with_weaker_parameters_need_a_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("old password 1")
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("new password 12"))
    assert verify_password(weak, "old password 1")


def test_the_dummy_hash_is_made_once_and_matches_nothing_guessable() -> None:
    assert dummy_hash() is dummy_hash()
    assert not verify_password(dummy_hash(), "")
    assert not verify_password(dummy_hash(), "admin")
