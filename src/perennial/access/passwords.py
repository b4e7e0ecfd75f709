"""Password hashing with argon2id (argon2-cffi), and generated passwords.

Passwords are the one secret a person chooses, so they get a deliberately slow,
memory-hard hash (argon2-cffi's defaults, RFC 9106's second recommendation); API
keys and session tokens are random and use SHA-256 instead. A hash made with older
parameters is upgraded at the next successful sign-in (``needs_rehash``).
"""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PasswordPolicyError",
    "check_password_policy",
    "dummy_hash",
    "generate_password",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
"""Longer inputs are refused before hashing: a megabyte 'password' costs nothing to send."""

_HASHER = PasswordHasher()


class PasswordPolicyError(ValueError):
    """A chosen password is too short or too long."""


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def generate_password() -> str:
    """20 URL-safe characters from 15 random bytes (120 bits): strong, and easy to copy."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (salt and parameters included in the string)."""
    check_password_policy(password)
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches; a malformed stored hash or an oversized input is ``False``."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (upgrade it on sign-in)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def dummy_hash() -> str:
    """A hash of a random password, verified against when the username is unknown, so that
    an unknown user costs the same time as a wrong password."""
    return _HASHER.hash(secrets.token_urlsafe(24))
