"""Passwords: argon2id hashes (argon2-cffi, its recommended parameters) and the rules for a new password.

Each hash takes 64 MiB and about 0.1 s of a core. At most `HASH_SLOTS` (the cores this process may use) run at
once, whoever asks (a burst of sign-ins, the command line): the others wait for a slot, so a burst costs time,
never memory beyond HASH_SLOTS x 64 MiB, and cannot crowd out other work (the states also run password work in a
pool of its own: `cf_portal.state.password_work`)."""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cf_portal.services.errors import DomainError

MIN_LENGTH = 10
MAX_LENGTH = 200  # long enough for any passphrase; bounds the hashing work per attempt
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")

_hasher = PasswordHasher()
HASH_SLOTS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_slots = threading.BoundedSemaphore(HASH_SLOTS)
# Verified when an email has no password, so an unknown email takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only here to spend the same time")


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def check_new_password(password: str, *, email: str = "", field: str = "password") -> str:
    """A password someone chooses: 10 to 200 characters, not a common password, not their email."""
    if len(password) < MIN_LENGTH:
        raise DomainError(f"Use at least {MIN_LENGTH} characters (this has {len(password)}).", field=field)
    if len(password) > MAX_LENGTH:
        raise DomainError(f"Use at most {MAX_LENGTH} characters.", field=field)
    folded = password.strip().lower()
    if folded in common_passwords() or (email and folded in {email.lower(), email.lower().split("@")[0]}):
        raise DomainError("This password is too easy to guess. Choose a less common one, such as a few "
                          "unrelated words.", field=field)
    if len(set(password)) < 4:
        raise DomainError("This password is too easy to guess: it repeats too few characters.", field=field)
    return password


def hash_password(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches. A missing hash costs the same time and is never a match."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        with _slots:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
