"""The Employees grid's search: a piece of a name or an email, found through a trigram index.

Both databases answer exactly as a plain scan would (`lower(name) LIKE '%text%' OR email LIKE '%text%'`, the
text taken literally, wildcards included); the index only finds the candidates quickly:
- PostgreSQL: pg_trgm GIN indexes on employee.name and employee.email, which `ILIKE` / `LIKE '%…%'` use as
  they are (the planner still prefers the sort order's index when nearly everyone matches). They are built with
  `fastupdate = off` (migration 0011): with GIN's pending list, rows added since the last VACUUM were read one
  by one at every search, and the planner, costing that list, scanned the whole account instead.
- SQLite: the FTS5 table `employee_search` (trigram tokenizer, case-insensitive) narrows the rows by a MATCH of
  the text as one phrase; the LIKE then decides, so FTS5's broader case folding changes nothing.
A trigram needs 3 characters: shorter text has no index to use, and is the plain LIKE over the account's rows
in the grid's sort order (the page stops at its rows, the count at its cap).
Child accounts (a handful per account) are always the plain LIKE.

The index objects are created with the employee table (cf_portal/models.py) and by migration 0010.
"""

from __future__ import annotations

import sqlalchemy as sa

from cf_portal.models import ChildAccount, Employee

MIN_INDEXED_LENGTH = 3  # characters in a trigram


def like_pattern(text: str) -> str:
    """`text` lowercased, as a LIKE pattern matching it anywhere, its wildcards escaped (escape character `\\`)."""
    return "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _name_like(column: sa.ColumnElement, pattern: str, dialect: str) -> sa.ColumnElement[bool]:
    # ILIKE is what pg_trgm's index on the plain column serves; SQLite's LIKE ignores ASCII case already.
    if dialect == "postgresql":
        return column.ilike(pattern, escape="\\")
    return sa.func.lower(column).like(pattern, escape="\\")


def employee_matches(text: str, dialect: str) -> sa.ColumnElement[bool]:
    """Employees whose name or email has `text` (already trimmed, not empty)."""
    pattern = like_pattern(text)
    matches = sa.or_(_name_like(Employee.name, pattern, dialect), Employee.email.like(pattern, escape="\\"))
    if dialect == "sqlite" and len(text) >= MIN_INDEXED_LENGTH:
        phrase = '"' + text.replace('"', '""') + '"'
        candidates = sa.text("SELECT rowid FROM employee_search WHERE employee_search MATCH :search_phrase") \
            .bindparams(search_phrase=phrase).columns(sa.column("rowid", sa.Integer))
        return sa.and_(Employee.id.in_(candidates), matches)
    return matches


def sorted_after_search(sort_key: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """The grid's sort value, for a search that matches at most the count's cap (known before the page is read).

    PostgreSQL: the same value as an expression no index has (`|| ''`), so the page is the matches found through
    the trigram indexes, sorted. Along the sort order's index instead, with LIMIT, the planner expects the matches
    spread evenly, but people named alike sort together: "zoe" read 92% of 100,000 names (the Zoes sort last)
    to find its first 25, 100 ms, against 6 ms. Past the cap the matches are dense and the sort order's index is
    right. SQLite (its FTS5 candidates already come first): unchanged."""
    if dialect == "postgresql":
        return sort_key.op("||")(sa.literal_column("''"))
    return sort_key


def child_matches(text: str, dialect: str) -> sa.ColumnElement[bool]:
    """Child accounts whose name or contact email has `text`."""
    pattern = like_pattern(text)
    return sa.or_(_name_like(ChildAccount.name, pattern, dialect),
                  ChildAccount.contact_email.like(pattern, escape="\\"))
