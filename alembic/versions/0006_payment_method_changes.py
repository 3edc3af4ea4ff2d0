"""payment method changes: one change of an account's cards at the provider at a time

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 09:12:41.208315
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written by hand.
    op.create_table('payment_method_change',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('payment_method_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('make_default', 'remove')", name=op.f('ck_payment_method_change_action_known')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_payment_method_change_account_id_account'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['payment_method_id'], ['payment_method.id'],
                            name=op.f('fk_payment_method_change_payment_method_id_payment_method'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_payment_method_change'))
    )


def downgrade() -> None:
    # Written by hand.
    op.drop_table('payment_method_change')
