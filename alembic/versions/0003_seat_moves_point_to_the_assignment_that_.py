"""seat moves point to the assignment that took over

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 01:12:37.417606
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reviewed by hand.
    with op.batch_alter_table('seat_assignment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('moved_to_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_seat_assignment_moved_to_id_seat_assignment'), 'seat_assignment', ['moved_to_id'], ['id'])



def downgrade() -> None:
    # Reviewed by hand.
    with op.batch_alter_table('seat_assignment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_seat_assignment_moved_to_id_seat_assignment'), type_='foreignkey')
        batch_op.drop_column('moved_to_id')

