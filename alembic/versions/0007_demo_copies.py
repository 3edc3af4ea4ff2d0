"""demo copies: each "Try the demo" visitor's own account expires

Revision ID: 0007_demo
Revises: 0007_http
Create Date: 2026-12-04 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0007_demo'
down_revision: str | None = '0007_http'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written by hand.
    with op.batch_alter_table('account') as batch_op:
        batch_op.add_column(sa.Column('demo_expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_account_demo_expires_at'), ['demo_expires_at'], unique=False)


def downgrade() -> None:
    # Written by hand.
    with op.batch_alter_table('account') as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_demo_expires_at'))
        batch_op.drop_column('demo_expires_at')
