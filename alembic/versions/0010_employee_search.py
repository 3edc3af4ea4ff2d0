"""employee search: a trigram index for the Employees grid's search, indexes for its sort orders

Revision ID: 0010_employee_search
Revises: 0009_webhooks
Create Date: 2026-12-05 14:30:00

PostgreSQL: the pg_trgm extension (trusted since PostgreSQL 13: the database owner, or a role with CREATE on the
database, may create it) and GIN trigram indexes on employee.name and employee.email. SQLite: an FTS5 table with
the trigram tokenizer over the same columns, whose content is the employee table itself, kept in sync by
triggers (the statements are those of cf_portal/models.py, copied: a migration does not import the app).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0010_employee_search'
down_revision: str | None = '0009_webhooks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE = (
    "CREATE VIRTUAL TABLE employee_search USING fts5(name, email, content='employee', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER employee_search_insert AFTER INSERT ON employee BEGIN "
    "INSERT INTO employee_search(rowid, name, email) VALUES (new.id, new.name, new.email); END",
    "CREATE TRIGGER employee_search_delete AFTER DELETE ON employee BEGIN "
    "INSERT INTO employee_search(employee_search, rowid, name, email) VALUES ('delete', old.id, old.name, old.email);"
    " END",
    "CREATE TRIGGER employee_search_update AFTER UPDATE OF name, email ON employee BEGIN "
    "INSERT INTO employee_search(employee_search, rowid, name, email) VALUES ('delete', old.id, old.name, old.email);"
    " INSERT INTO employee_search(rowid, name, email) VALUES (new.id, new.name, new.email); END",
    # The employees already there.
    "INSERT INTO employee_search(employee_search) VALUES ('rebuild')",
)
POSTGRESQL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_employee_name_trgm ON employee USING gin (name gin_trgm_ops)",
    "CREATE INDEX ix_employee_email_trgm ON employee USING gin (email gin_trgm_ops)",
)


def upgrade() -> None:
    # Written by hand.
    op.create_index('ix_employee_account_id_name_order', 'employee',
                    ['account_id', sa.text('lower(name)'), 'id'], unique=False)
    op.create_index('ix_employee_account_id_department_order', 'employee',
                    ['account_id', sa.text('lower(department)'), 'id'], unique=False)
    statements = SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("employee_search_insert", "employee_search_delete", "employee_search_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS employee_search")
    else:
        # The extension stays: it may have been created by an administrator, and other indexes may use it.
        op.drop_index('ix_employee_email_trgm', table_name='employee')
        op.drop_index('ix_employee_name_trgm', table_name='employee')
    op.drop_index('ix_employee_account_id_department_order', table_name='employee')
    op.drop_index('ix_employee_account_id_name_order', table_name='employee')
