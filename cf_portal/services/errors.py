"""Domain errors. Their messages are written for the person using the portal."""

from __future__ import annotations


class DomainError(Exception):
    """A rule said no. `field` names the form field the message belongs next to, if any."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The object does not exist, or belongs to another account (the two look the same)."""

    def __init__(self, what: str = "That item") -> None:
        super().__init__(f"{what} was not found.")
