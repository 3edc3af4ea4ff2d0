"""session handoff: the one-time code a browser trades for its HttpOnly session cookie

Revision ID: 0007_http
Revises: 0006
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0007_http'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Written by hand. Every session ends once: before this version the token sat in a cookie scripts could read
    # and in Reflex's state store (disk or Redis), so a token copied from either must stop working.
    op.execute("DELETE FROM auth_session")
    with op.batch_alter_table('auth_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handoff_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('handoff_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_auth_session_handoff_hash'), ['handoff_hash'])
        batch_op.create_check_constraint(batch_op.f('ck_auth_session_handoff_complete'),
                                         '(handoff_hash IS NULL) = (handoff_until IS NULL)')


def downgrade() -> None:
    # Written by hand.
    with op.batch_alter_table('auth_session', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_auth_session_handoff_complete'), type_='check')
        batch_op.drop_constraint(batch_op.f('uq_auth_session_handoff_hash'), type_='unique')
        batch_op.drop_column('handoff_until')
        batch_op.drop_column('handoff_hash')
