"""email outbox: the messages the portal sends (and the Sent emails log), an account's seat-access email setting

Revision ID: 0012_email_outbox
Revises: 0011_pg_search_indexes
Create Date: 2026-12-05 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0012_email_outbox'
down_revision: str | None = '0011_pg_search_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written by hand: one new table and one new column with a default.
    # A plain ADD COLUMN on both databases (a batch would copy the account table on SQLite).
    op.add_column('account', sa.Column('email_seat_access', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table('email_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('reply_to', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=False),
    sa.Column('transport', sa.String(length=8), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'sent', 'failed')", name=op.f('ck_email_message_status_valid')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_email_message_attempts_not_negative')),
    sa.CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name=op.f('ck_email_message_sent_when_sent')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_email_message_account_id_account'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_message'))
    )
    op.create_index('ix_email_message_due', 'email_message', ['next_attempt_at'], unique=False,
                    sqlite_where=sa.text("status = 'queued'"), postgresql_where=sa.text("status = 'queued'"))
    op.create_index('ix_email_message_account_created', 'email_message', ['account_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_email_message_account_created', table_name='email_message')
    op.drop_index('ix_email_message_due', table_name='email_message')
    op.drop_table('email_message')
    with op.batch_alter_table('account') as batch:
        batch.drop_column('email_seat_access')
