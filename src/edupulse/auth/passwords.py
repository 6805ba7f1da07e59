"""Password hashing: argon2id (argon2-cffi). Hashes written before it (scrypt) still verify and are
replaced by argon2 at the next successful sign-in (`needs_rehash`)."""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10


_COST: list[int] = []  # time cost, memory cost in KiB; empty: the library's defaults


@cache
def _hasher() -> PasswordHasher:
    if _COST:
        return PasswordHasher(time_cost=_COST[0], memory_cost=_COST[1], parallelism=1)
    return PasswordHasher()


def set_cost(time_cost: int, memory_cost_kib: int) -> None:
    """Change the argon2 cost of new hashes (the defaults are argon2-cffi's, RFC 9106 low-memory; tests lower
    them to stay fast). Existing hashes keep verifying with their own parameters."""
    _COST[:] = [time_cost, memory_cost_kib]
    _hasher.cache_clear()
    dummy_hash.cache_clear()


def hash_password(password: str) -> str:
    """An argon2id hash (with its salt and parameters) of `password`."""
    return _hasher().hash(password)


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (argon2, or the legacy `scrypt$salt$digest`)."""
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return _hasher().verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True for legacy hashes and argon2 hashes with older parameters."""
    return stored.startswith("scrypt$") or _hasher().check_needs_rehash(stored)


def check_strength(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > 1024:
        return "a password may have at most 1024 characters"
    if len(set(password)) < 4:
        return "a password needs at least 4 different characters"
    return None


@cache
def dummy_hash() -> str:
    """Verified against when the email is unknown, so a failed sign-in takes the same time either way."""
    return hash_password("not a password of anyone")


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _scheme, salt_hex, digest_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return hmac.compare_digest(digest.hex(), digest_hex)
