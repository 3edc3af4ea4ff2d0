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


def _has_control_characters(text: str) -> bool:
    """Line breaks, tabs, NUL and other invisible control characters (Unicode category Cc)."""
    return any(unicodedata.category(char) == "Cc" for char in text)


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
    """A person's or a child account's name: trimmed, 1 to 120 characters, on one line."""
    name = (text or "").strip()
    if not name:
        raise DomainError("Enter a name.", field=field)
    if len(name) > MAX_NAME_LENGTH:
        raise DomainError(f"Use at most {MAX_NAME_LENGTH} characters for the name (this has {len(name)}).",
                          field=field)
    if _has_control_characters(name):
        raise DomainError("The name cannot contain line breaks, tabs or other control characters.", field=field)
    return name


def check_department(text: str, *, field: str = "department") -> str:
    """A department: trimmed, may be empty, at most 80 characters, on one line."""
    department = (text or "").strip()
    if len(department) > MAX_DEPARTMENT_LENGTH:
        raise DomainError(f"Use at most {MAX_DEPARTMENT_LENGTH} characters for the department "
                          f"(this has {len(department)}).", field=field)
    if _has_control_characters(department):
        raise DomainError("The department cannot contain line breaks, tabs or other control characters.",
                          field=field)
    return department
