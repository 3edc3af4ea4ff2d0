"""pg search indexes: the trigram indexes write each row's trigrams at once (GIN fastupdate off)

Revision ID: 0011_pg_search_indexes
Revises: 0010_employee_search
Create Date: 2026-12-05 18:40:00

PostgreSQL only (SQLite's FTS5 table is unchanged). With GIN's default `fastupdate`, new rows' trigrams wait in
the index's pending list until a VACUUM (or 4 MB of them) moves them into the index: every search reads that list
row by row, and the planner, costing the list too, reads the whole account instead of the index (measured at
100,000 employees just after they were added: 45-50 ms per query instead of 1-10 ms; docs/benchmarks.md). With
it off an insert costs a little more and every search finds its rows through the index. The pending list already
there is moved into the index now.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0011_pg_search_indexes'
down_revision: str | None = '0010_employee_search'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = ("ix_employee_name_trgm", "ix_employee_email_trgm")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} SET (fastupdate = off)")
        op.execute(f"SELECT gin_clean_pending_list('{index}'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for index in INDEXES:
        op.execute(f"ALTER INDEX {index} RESET (fastupdate)")
