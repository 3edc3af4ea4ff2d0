"""renewals: billing periods, changes at the next renewal, past due and suspended licenses

Revision ID: 0008_renewals
Revises: 0007_coupons
Create Date: 2026-12-04 18:20:00
"""

from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta

from alembic import op

revision: str = '0008_renewals'
down_revision: str | None = '0007_coupons'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'pending', 'active', 'past_due', 'suspended', 'canceled'"


def upgrade() -> None:
    # Written by hand. Licenses bought before this have paid for their first month: period 0 from created_at.
    with op.batch_alter_table('license', schema=None) as batch_op:
        batch_op.add_column(sa.Column('period_start', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('period_end', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('periods_billed', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('next_quantity', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('next_plan_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cancel_at_period_end', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('canceled_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('past_due_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('renewal_failures', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
    licenses = sa.table('license', sa.column('id', sa.Integer), sa.column('created_at', sa.DateTime(timezone=True)),
                        sa.column('period_start', sa.DateTime(timezone=True)),
                        sa.column('period_end', sa.DateTime(timezone=True)))
    connection = op.get_bind()
    for license_id, created_at in connection.execute(sa.select(licenses.c.id, licenses.c.created_at)).all():
        start = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        connection.execute(sa.update(licenses).where(licenses.c.id == license_id)
                           .values(period_start=start, period_end=start + relativedelta(months=1)))
    with op.batch_alter_table('license', schema=None) as batch_op:
        batch_op.alter_column('period_start', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column('period_end', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.alter_column('periods_billed', server_default=None)
        batch_op.alter_column('cancel_at_period_end', server_default=None)
        batch_op.alter_column('renewal_failures', server_default=None)
        batch_op.create_index(batch_op.f('ix_license_period_end'), ['period_end'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_license_next_plan_id_plan'), 'plan', ['next_plan_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_license_status_valid'), type_='check')
        batch_op.create_check_constraint('status_valid', f"status IN ({STATUSES})")
        batch_op.create_check_constraint('next_quantity_valid',
                                         "next_quantity IS NULL OR (next_quantity > 0 AND next_quantity < quantity"
                                         " AND seats_assigned <= next_quantity)")
        batch_op.create_check_constraint('period_valid', "period_end > period_start AND periods_billed >= 1")
        batch_op.create_check_constraint('renewal_failures_not_negative', "renewal_failures >= 0")
    op.create_table('license_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('license_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=80), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('period_index', sa.Integer(), nullable=False),
    sa.Column('quantity_before', sa.Integer(), nullable=False),
    sa.Column('quantity_after', sa.Integer(), nullable=False),
    sa.Column('plan_id_before', sa.Integer(), nullable=False),
    sa.Column('plan_id_after', sa.Integer(), nullable=False),
    sa.Column('unit_amount_after', sa.Integer(), nullable=False),
    sa.Column('amount_due', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name=op.f('ck_license_change_status_valid')),
    sa.CheckConstraint('quantity_before > 0 AND quantity_after >= quantity_before',
                       name=op.f('ck_license_change_quantity_grows')),
    sa.CheckConstraint('amount_due >= 0 AND unit_amount_after >= 0',
                       name=op.f('ck_license_change_amounts_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_license_change_account_id_account'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['license_id'], ['license.id'], name=op.f('fk_license_change_license_id_license')),
    sa.ForeignKeyConstraint(['plan_id_before'], ['plan.id'], name=op.f('fk_license_change_plan_id_before_plan')),
    sa.ForeignKeyConstraint(['plan_id_after'], ['plan.id'], name=op.f('fk_license_change_plan_id_after_plan')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user.id'],
                            name=op.f('fk_license_change_created_by_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_license_change')),
    sa.UniqueConstraint('account_id', 'idempotency_key', name=op.f('uq_license_change_account_id_idempotency_key'))
    )
    op.create_index(op.f('ix_license_change_account_id'), 'license_change', ['account_id'], unique=False)
    op.create_index(op.f('ix_license_change_license_id'), 'license_change', ['license_id'], unique=False)
    op.create_index('uq_license_change_one_pending', 'license_change', ['license_id'], unique=True,
                    sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
    with op.batch_alter_table('seat_assignment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ended_reason', sa.String(length=40), nullable=True))
    with op.batch_alter_table('sandbox_subscription', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_at_period_end', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('sandbox_subscription', schema=None) as batch_op:
        batch_op.alter_column('cancel_at_period_end', server_default=None)
    with op.batch_alter_table('sandbox_invoice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lines_json', sa.String(length=4000), nullable=False, server_default=''))
    with op.batch_alter_table('sandbox_invoice', schema=None) as batch_op:
        batch_op.alter_column('lines_json', server_default=None)
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=12), nullable=False, server_default='first'))
        batch_op.add_column(sa.Column('period_index', sa.Integer(), nullable=True))
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.alter_column('kind', server_default=None)
        batch_op.create_check_constraint('kind_known', "kind IN ('first', 'renewal', 'change')")
        batch_op.create_index('uq_invoice_renewal_per_period', ['license_id', 'period_index'], unique=True,
                              sqlite_where=sa.text("kind = 'renewal'"), postgresql_where=sa.text("kind = 'renewal'"))


def downgrade() -> None:
    # Written by hand. Suspended licenses go back to past due, the closest status the old schema has.
    op.execute("UPDATE license SET status = 'past_due' WHERE status = 'suspended'")
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('uq_invoice_renewal_per_period')
        batch_op.drop_constraint(op.f('ck_invoice_kind_known'), type_='check')
        batch_op.drop_column('period_index')
        batch_op.drop_column('kind')
    with op.batch_alter_table('sandbox_invoice', schema=None) as batch_op:
        batch_op.drop_column('lines_json')
    with op.batch_alter_table('sandbox_subscription', schema=None) as batch_op:
        batch_op.drop_column('cancel_at_period_end')
    with op.batch_alter_table('seat_assignment', schema=None) as batch_op:
        batch_op.drop_column('ended_reason')
    op.drop_table('license_change')
    with op.batch_alter_table('license', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_license_renewal_failures_not_negative'), type_='check')
        batch_op.drop_constraint(op.f('ck_license_period_valid'), type_='check')
        batch_op.drop_constraint(op.f('ck_license_next_quantity_valid'), type_='check')
        batch_op.drop_constraint(op.f('ck_license_status_valid'), type_='check')
        batch_op.create_check_constraint('status_valid', "status IN ('pending', 'active', 'past_due', 'canceled')")
        batch_op.drop_constraint(op.f('fk_license_next_plan_id_plan'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_license_period_end'))
        for column in ('next_attempt_at', 'renewal_failures', 'past_due_since', 'canceled_at', 'cancel_at_period_end',
                       'next_plan_id', 'next_quantity', 'periods_billed', 'period_end', 'period_start'):
            batch_op.drop_column(column)
