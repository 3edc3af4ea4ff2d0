"""provider webhook events

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 03:27:07.739781
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reviewed by hand.
    op.create_table('provider_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=80), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_event')),
    sa.UniqueConstraint('provider', 'event_id', name=op.f('uq_provider_event_provider_event_id'))
    )
    with op.batch_alter_table('license', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_updated_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    # Reviewed by hand.
    with op.batch_alter_table('license', schema=None) as batch_op:
        batch_op.drop_column('provider_updated_at')

    op.drop_table('provider_event')
