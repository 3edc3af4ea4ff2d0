"""help feedback: the answers to "Did this answer your question?" at the end of each Help panel

Revision ID: 0013_help_feedback
Revises: 0012_email_outbox
Create Date: 2026-12-05 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0013_help_feedback'
down_revision: str | None = '0012_email_outbox'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written by hand.
    op.create_table('help_feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('page', sa.String(length=40), nullable=False),
    sa.Column('answer', sa.String(length=3), nullable=False),
    sa.Column('comment', sa.String(length=1000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("answer IN ('yes', 'no')", name=op.f('ck_help_feedback_answer_known')),
    sa.CheckConstraint('length(comment) <= 1000', name=op.f('ck_help_feedback_comment_bounded')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_help_feedback_account_id_account'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_help_feedback_user_id_user'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_help_feedback'))
    )
    op.create_index(op.f('ix_help_feedback_account_id'), 'help_feedback', ['account_id'], unique=False)
    op.create_index('ix_help_feedback_created_at', 'help_feedback', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_help_feedback_created_at', table_name='help_feedback')
    op.drop_index(op.f('ix_help_feedback_account_id'), table_name='help_feedback')
    op.drop_table('help_feedback')
