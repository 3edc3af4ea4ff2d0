"""Checks of the values people type (or import): email addresses, names, departments.

Each check returns the cleaned value or raises `DomainError` with a message for the person
and the form field it belongs next to.
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from cf_portal.services.errors import DomainError

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 120
MAX_DEPARTMENT_LENGTH = 80

EMAIL_EXAMPLE = "Enter a valid email address, like name@company.com."


# Zero-width non-joiner and joiner are format characters (Cf) too, but Persian, Indic scripts and emoji sequences
# are written with them: they stay. Every other format character (bidirectional overrides, isolates and marks,
# zero-width spaces, soft hyphens, ...) can hide or reorder what a reader sees, and so can controls (Cc), line and
# paragraph separators, surrogates, private-use and unassigned code points.
_JOINERS = frozenset("\u200c\u200d")
_HIDING_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _hides_text(char: str) -> bool:
    return unicodedata.category(char) in _HIDING_CATEGORIES and char not in _JOINERS


def check_name(text: str, *, field: str, max_length: int, blank: str | None, what: str = "the name") -> str:
    """Any free-text name people type or import (company, person, child account, license, department, ...).

    Normalised to NFC (one spelling for one name) and trimmed; refused with a message for `field` when it is blank
    (unless `blank` is None: then it may be empty), longer than `max_length` characters, or holds characters that
    hide or reorder text (line breaks, tabs, bidirectional overrides, zero-width spaces: see `_hides_text`).
    Inner spaces are kept as typed."""
    name = unicodedata.normalize("NFC", text or "").strip()
    if not name and blank is not None:
        raise DomainError(blank, field=field)
    if len(name) > max_length:
        raise DomainError(f"Use at most {max_length} characters for {what} (this has {len(name)}).", field=field)
    if any(_hides_text(char) for char in name):
        raise DomainError(f"{what[0].upper()}{what[1:]} cannot contain line breaks, tabs or invisible characters "
                          "(such as right-to-left overrides or zero-width spaces).", field=field)
    return name


def printable(text: str, *, limit: int = 80) -> str:
    """Text from someone else (a browser, a file, a provider's message) as it may be written to a log or a
    terminal: quoted, every line break, control or invisible character escaped (so it can forge no log line nor
    hide text), and cut to `limit` characters."""
    cut = text[:limit]
    return repr(cut) + ("…" if len(text) > limit else "")


def normalise_email(text: str, *, field: str = "email") -> str:
    """The address trimmed, checked for syntax (never looked up on the network) and lower-cased.

    The whole address is lower-cased, so the same person always has one spelling in the database.
    """
    raw = (text or "").strip()
    if not raw:
        raise DomainError("Enter an email address, like name@company.com.", field=field)
    if len(raw) > MAX_EMAIL_LENGTH:
        raise DomainError(f"This email address is too long: use at most {MAX_EMAIL_LENGTH} characters "
                          f"(this has {len(raw)}).", field=field)
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise DomainError(f"{EMAIL_EXAMPLE} {exc}", field=field) from exc
    email = result.normalized.lower()
    if len(email) > MAX_EMAIL_LENGTH:  # lower-casing some letters makes them longer
        raise DomainError(f"This email address is too long: use at most {MAX_EMAIL_LENGTH} characters.",
                          field=field)
    return email


def check_person_name(text: str, *, field: str = "name") -> str:
    """A person's or a child account's name: 1 to 120 characters (see `check_name`)."""
    return check_name(text, field=field, max_length=MAX_NAME_LENGTH, blank="Enter a name.")


def check_department(text: str, *, field: str = "department") -> str:
    """A department: may be empty, at most 80 characters (see `check_name`)."""
    return check_name(text, field=field, max_length=MAX_DEPARTMENT_LENGTH, blank=None, what="the department")
