"""api keys: keys for the entitlements API; when a product last asked about a seat

Revision ID: 0009_api_keys
Revises: 0008_renewals
Create Date: 2026-12-04 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0009_api_keys'
down_revision: str | None = '0008_renewals'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "unassigned_at IS NULL"


def upgrade() -> None:
    # Written by hand.
    op.create_table('api_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('prefix', sa.String(length=24), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.String(length=200), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('length(trim(name)) > 0', name=op.f('ck_api_key_name_not_blank')),
    sa.CheckConstraint("substr(prefix, 1, 4) = 'cfk_'", name=op.f('ck_api_key_prefix_format')),
    sa.CheckConstraint('length(secret_hash) = 64', name=op.f('ck_api_key_secret_hash_sha256')),
    sa.CheckConstraint('length(trim(scopes)) > 0', name=op.f('ck_api_key_scopes_not_blank')),
    sa.CheckConstraint('revoked_at IS NULL OR revoked_at >= created_at', name=op.f('ck_api_key_revoked_after_creation')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_api_key_account_id_account'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user.id'], name=op.f('fk_api_key_created_by_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_key')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_api_key_secret_hash'))
    )
    op.create_index(op.f('ix_api_key_account_id'), 'api_key', ['account_id'], unique=False)
    with op.batch_alter_table('seat_assignment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_seat_assignment_open_by_account', 'seat_assignment', ['account_id', 'id'],
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
    op.create_index('ix_child_account_account_id_contact_email', 'child_account', ['account_id', 'contact_email'])


def downgrade() -> None:
    # Written by hand.
    op.drop_index('ix_child_account_account_id_contact_email', table_name='child_account')
    op.drop_index('ix_seat_assignment_open_by_account', table_name='seat_assignment')
    with op.batch_alter_table('seat_assignment', schema=None) as batch_op:
        batch_op.drop_column('last_used_at')
    op.drop_index(op.f('ix_api_key_account_id'), table_name='api_key')
    op.drop_table('api_key')
