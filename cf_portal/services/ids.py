"""Ids and text that come back from the browser.

Whatever a page sends can be edited on its way (the websocket is the browser's): an id may arrive as
"12", 12, -1, "12abc", 12.5 or a number of 30 digits, and a text field may hold megabytes. Every handler
that takes an id passes it through `parse_id` before it reaches a service or a query: an id outside
1..2**63-1 (PostgreSQL BIGINT, SQLite INTEGER) would end in the database driver's OverflowError, so it is
answered like an id of another account, "… was not found". Free text is cut with `client_text` before a
state keeps it; the services' own checks then say what is too long for its field.
"""

from __future__ import annotations

from cf_portal.services.errors import NotFound

MAX_ID = 2**63 - 1
MAX_ID_DIGITS = len(str(MAX_ID))  # 19: longer text is never parsed (int() of 5,000 digits raises)
MAX_CLIENT_TEXT = 1_000  # longer than any field the portal accepts, so its check still says "too long"


def parse_id(value: object, what: str = "That item") -> int:
    """`value` as a database id (an int, or its plain ASCII digits), else `NotFound(what)`."""
    if isinstance(value, bool):
        raise NotFound(what)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS:
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise NotFound(what)
    return value


def is_id(value: object) -> bool:
    """Whether `parse_id` accepts `value`."""
    try:
        parse_id(value)
    except NotFound:
        return False
    return True


def client_text(value: object, limit: int = MAX_CLIENT_TEXT) -> str:
    """Text from the browser, at most `limit` characters; anything but text is ""."""
    return value[:limit] if isinstance(value, str) else ""
