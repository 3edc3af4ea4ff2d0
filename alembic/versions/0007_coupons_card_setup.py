"""cards: the account's open SetupIntent, and one row per card (its fingerprint and expiry)

Revision ID: 0007_coupons
Revises: 0007_demo
Create Date: 2026-12-04 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0007_coupons'
down_revision: str | None = '0007_demo'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written by hand. Cards saved before keep a NULL fingerprint (NULLs are distinct in a unique index).
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card_setup_intent_id', sa.String(length=64), nullable=True))
    with op.batch_alter_table('payment_method', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))
        batch_op.create_index('uq_payment_method_same_card', ['account_id', 'fingerprint', 'exp_month', 'exp_year'],
                              unique=True)


def downgrade() -> None:
    # Written by hand.
    with op.batch_alter_table('payment_method', schema=None) as batch_op:
        batch_op.drop_index('uq_payment_method_same_card')
        batch_op.drop_column('fingerprint')
    with op.batch_alter_table('account', schema=None) as batch_op:
        batch_op.drop_column('card_setup_intent_id')
