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


class NotAllowed(DomainError):
    """The member's role does not allow this action."""


class SignInRequired(Exception):  # noqa: N818 (not a DomainError: the app answers it with the sign-in page)
    """Nobody is signed in, or the session has ended. `next_path` is where to return after signing in."""

    def __init__(self, next_path: str = "") -> None:
        super().__init__("Please sign in.")
        self.next_path = next_path
