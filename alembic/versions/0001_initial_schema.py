"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 00:25:04.927154
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reviewed by hand: tables, check constraints and partial unique indexes match cf_portal.models.
    op.create_table('account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('provider_customer_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account')),
    sa.UniqueConstraint('provider_customer_id', name=op.f('uq_account_provider_customer_id'))
    )
    op.create_table('coupon',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('percent_off', sa.Integer(), nullable=True),
    sa.Column('amount_off', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('duration', sa.String(length=12), nullable=False),
    sa.Column('duration_months', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('max_redemptions', sa.Integer(), nullable=True),
    sa.Column('times_redeemed', sa.Integer(), nullable=False),
    sa.Column('min_quantity', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(duration = 'repeating' AND duration_months IS NOT NULL AND duration_months >= 1) OR (duration IN ('once', 'forever') AND duration_months IS NULL)", name=op.f('ck_coupon_duration_valid')),
    sa.CheckConstraint('(percent_off IS NOT NULL AND amount_off IS NULL AND percent_off BETWEEN 1 AND 100) OR (amount_off IS NOT NULL AND percent_off IS NULL AND amount_off > 0 AND currency IS NOT NULL)', name=op.f('ck_coupon_one_kind_of_discount')),
    sa.CheckConstraint('code = upper(trim(code)) AND length(code) > 0', name=op.f('ck_coupon_code_normalised')),
    sa.CheckConstraint('max_redemptions IS NULL OR max_redemptions >= 0', name=op.f('ck_coupon_max_redemptions_valid')),
    sa.CheckConstraint('min_quantity >= 1', name=op.f('ck_coupon_min_quantity_positive')),
    sa.CheckConstraint('times_redeemed >= 0 AND (max_redemptions IS NULL OR times_redeemed <= max_redemptions)', name=op.f('ck_coupon_redemptions_within_limit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon')),
    sa.UniqueConstraint('code', name=op.f('uq_coupon_code'))
    )
    op.create_table('product',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.String(length=400), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product')),
    sa.UniqueConstraint('code', name=op.f('uq_product_code'))
    )
    op.create_table('child_account',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(trim(name)) > 0', name=op.f('ck_child_account_name_not_blank')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_child_account_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_child_account')),
    sa.UniqueConstraint('account_id', 'name', name=op.f('uq_child_account_account_id_name'))
    )
    with op.batch_alter_table('child_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_child_account_account_id'), ['account_id'], unique=False)

    op.create_table('coupon_product',
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupon.id'], name=op.f('fk_coupon_product_coupon_id_coupon'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_coupon_product_product_id_product'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('coupon_id', 'product_id', name=op.f('pk_coupon_product'))
    )
    op.create_table('employee',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('department', sa.String(length=80), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_employee_email_lowercase')),
    sa.CheckConstraint('length(trim(name)) > 0', name=op.f('ck_employee_name_not_blank')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_employee_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_employee')),
    sa.UniqueConstraint('account_id', 'email', name=op.f('uq_employee_account_id_email'))
    )
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_employee_account_id'), ['account_id'], unique=False)

    op.create_table('payment_method',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.String(length=64), nullable=False),
    sa.Column('brand', sa.String(length=20), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=False),
    sa.Column('exp_year', sa.Integer(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('exp_month BETWEEN 1 AND 12', name=op.f('ck_payment_method_exp_month_valid')),
    sa.CheckConstraint('exp_year BETWEEN 2000 AND 2200', name=op.f('ck_payment_method_exp_year_valid')),
    sa.CheckConstraint('length(last4) = 4', name=op.f('ck_payment_method_last4_length')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_payment_method_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_method')),
    sa.UniqueConstraint('provider_id', name=op.f('uq_payment_method_provider_id'))
    )
    with op.batch_alter_table('payment_method', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_method_account_id'), ['account_id'], unique=False)
        batch_op.create_index('uq_payment_method_one_default', ['account_id'], unique=True, sqlite_where=sa.text('is_default'), postgresql_where=sa.text('is_default'))

    op.create_table('plan',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('unit_amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.CheckConstraint('currency = lower(currency) AND length(currency) = 3', name=op.f('ck_plan_currency_iso')),
    sa.CheckConstraint('unit_amount >= 0', name=op.f('ck_plan_unit_amount_not_negative')),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_plan_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan')),
    sa.UniqueConstraint('code', name=op.f('uq_plan_code')),
    sa.UniqueConstraint('product_id', 'name', name=op.f('uq_plan_product_id_name'))
    )
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_product_id'), ['product_id'], unique=False)

    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('email = lower(email)', name=op.f('ck_user_email_lowercase')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_user_account_id_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user')),
    sa.UniqueConstraint('email', name=op.f('uq_user_email'))
    )
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_account_id'), ['account_id'], unique=False)

    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_audit_event_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['actor_user_id'], ['user.id'], name=op.f('fk_audit_event_actor_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_account_id'), ['account_id'], unique=False)

    op.create_table('license',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('reference_name', sa.String(length=80), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=True),
    sa.Column('discount_amount', sa.Integer(), nullable=False),
    sa.Column('discount_description', sa.String(length=120), nullable=False),
    sa.Column('first_charge_amount', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('provider_subscription_id', sa.String(length=64), nullable=True),
    sa.Column('seats_assigned', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=80), nullable=True),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'past_due', 'canceled')", name=op.f('ck_license_status_valid')),
    sa.CheckConstraint('discount_amount >= 0', name=op.f('ck_license_discount_not_negative')),
    sa.CheckConstraint('first_charge_amount >= 0', name=op.f('ck_license_first_charge_not_negative')),
    sa.CheckConstraint('length(trim(reference_name)) > 0', name=op.f('ck_license_reference_name_not_blank')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_license_quantity_positive')),
    sa.CheckConstraint('seats_assigned >= 0 AND seats_assigned <= quantity', name=op.f('ck_license_seats_within_quantity')),
    sa.CheckConstraint('unit_amount >= 0', name=op.f('ck_license_unit_amount_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_license_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupon.id'], name=op.f('fk_license_coupon_id_coupon')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user.id'], name=op.f('fk_license_created_by_user_id_user')),
    sa.ForeignKeyConstraint(['plan_id'], ['plan.id'], name=op.f('fk_license_plan_id_plan')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_license')),
    sa.UniqueConstraint('account_id', 'idempotency_key', name=op.f('uq_license_account_id_idempotency_key')),
    sa.UniqueConstraint('provider_subscription_id', name=op.f('uq_license_provider_subscription_id'))
    )
    with op.batch_alter_table('license', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_license_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_license_coupon_id'), ['coupon_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_license_created_by_user_id'), ['created_by_user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_license_plan_id'), ['plan_id'], unique=False)

    op.create_table('coupon_redemption',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coupon_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('license_id', sa.Integer(), nullable=False),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_coupon_redemption_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupon.id'], name=op.f('fk_coupon_redemption_coupon_id_coupon')),
    sa.ForeignKeyConstraint(['license_id'], ['license.id'], name=op.f('fk_coupon_redemption_license_id_license')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_redemption')),
    sa.UniqueConstraint('license_id', name=op.f('uq_coupon_redemption_license_id'))
    )
    with op.batch_alter_table('coupon_redemption', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupon_redemption_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupon_redemption_coupon_id'), ['coupon_id'], unique=False)

    op.create_table('invoice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('license_id', sa.Integer(), nullable=True),
    sa.Column('provider_invoice_id', sa.String(length=64), nullable=True),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subtotal', sa.Integer(), nullable=False),
    sa.Column('discount', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'open', 'paid', 'void', 'uncollectible')", name=op.f('ck_invoice_status_valid')),
    sa.CheckConstraint('subtotal >= 0 AND discount >= 0 AND total >= 0', name=op.f('ck_invoice_amounts_not_negative')),
    sa.CheckConstraint('total = subtotal - discount', name=op.f('ck_invoice_total_adds_up')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_invoice_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['license_id'], ['license.id'], name=op.f('fk_invoice_license_id_license')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice')),
    sa.UniqueConstraint('account_id', 'number', name=op.f('uq_invoice_account_id_number')),
    sa.UniqueConstraint('provider_invoice_id', name=op.f('uq_invoice_provider_invoice_id'))
    )
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoice_license_id'), ['license_id'], unique=False)

    op.create_table('seat_assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('license_id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=True),
    sa.Column('child_account_id', sa.Integer(), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_by_user_id', sa.Integer(), nullable=True),
    sa.Column('unassigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unassigned_by_user_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(employee_id IS NULL) <> (child_account_id IS NULL)', name=op.f('ck_seat_assignment_exactly_one_holder')),
    sa.CheckConstraint('unassigned_at IS NULL OR unassigned_at >= assigned_at', name=op.f('ck_seat_assignment_ends_after_start')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_seat_assignment_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['assigned_by_user_id'], ['user.id'], name=op.f('fk_seat_assignment_assigned_by_user_id_user')),
    sa.ForeignKeyConstraint(['child_account_id'], ['child_account.id'], name=op.f('fk_seat_assignment_child_account_id_child_account')),
    sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], name=op.f('fk_seat_assignment_employee_id_employee')),
    sa.ForeignKeyConstraint(['license_id'], ['license.id'], name=op.f('fk_seat_assignment_license_id_license')),
    sa.ForeignKeyConstraint(['unassigned_by_user_id'], ['user.id'], name=op.f('fk_seat_assignment_unassigned_by_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_seat_assignment'))
    )
    with op.batch_alter_table('seat_assignment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seat_assignment_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_seat_assignment_child_account_id'), ['child_account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_seat_assignment_employee_id'), ['employee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_seat_assignment_license_id'), ['license_id'], unique=False)
        batch_op.create_index('uq_seat_assignment_open_child', ['license_id', 'child_account_id'], unique=True, sqlite_where=sa.text('unassigned_at IS NULL AND child_account_id IS NOT NULL'), postgresql_where=sa.text('unassigned_at IS NULL AND child_account_id IS NOT NULL'))
        batch_op.create_index('uq_seat_assignment_open_employee', ['license_id', 'employee_id'], unique=True, sqlite_where=sa.text('unassigned_at IS NULL AND employee_id IS NOT NULL'), postgresql_where=sa.text('unassigned_at IS NULL AND employee_id IS NOT NULL'))

    op.create_table('invoice_line',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_amount', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_invoice_line_quantity_positive')),
    sa.CheckConstraint('unit_amount >= 0 AND amount >= 0', name=op.f('ck_invoice_line_amounts_not_negative')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], name=op.f('fk_invoice_line_invoice_id_invoice'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_line'))
    )
    with op.batch_alter_table('invoice_line', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_line_invoice_id'), ['invoice_id'], unique=False)



def downgrade() -> None:
    # Reviewed by hand: tables, check constraints and partial unique indexes match cf_portal.models.
    with op.batch_alter_table('invoice_line', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_line_invoice_id'))

    op.drop_table('invoice_line')
    with op.batch_alter_table('seat_assignment', schema=None) as batch_op:
        batch_op.drop_index('uq_seat_assignment_open_employee', sqlite_where=sa.text('unassigned_at IS NULL AND employee_id IS NOT NULL'), postgresql_where=sa.text('unassigned_at IS NULL AND employee_id IS NOT NULL'))
        batch_op.drop_index('uq_seat_assignment_open_child', sqlite_where=sa.text('unassigned_at IS NULL AND child_account_id IS NOT NULL'), postgresql_where=sa.text('unassigned_at IS NULL AND child_account_id IS NOT NULL'))
        batch_op.drop_index(batch_op.f('ix_seat_assignment_license_id'))
        batch_op.drop_index(batch_op.f('ix_seat_assignment_employee_id'))
        batch_op.drop_index(batch_op.f('ix_seat_assignment_child_account_id'))
        batch_op.drop_index(batch_op.f('ix_seat_assignment_account_id'))

    op.drop_table('seat_assignment')
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_license_id'))
        batch_op.drop_index(batch_op.f('ix_invoice_account_id'))

    op.drop_table('invoice')
    with op.batch_alter_table('coupon_redemption', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupon_redemption_coupon_id'))
        batch_op.drop_index(batch_op.f('ix_coupon_redemption_account_id'))

    op.drop_table('coupon_redemption')
    with op.batch_alter_table('license', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_license_plan_id'))
        batch_op.drop_index(batch_op.f('ix_license_created_by_user_id'))
        batch_op.drop_index(batch_op.f('ix_license_coupon_id'))
        batch_op.drop_index(batch_op.f('ix_license_account_id'))

    op.drop_table('license')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_account_id'))

    op.drop_table('audit_event')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_account_id'))

    op.drop_table('user')
    with op.batch_alter_table('plan', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_product_id'))

    op.drop_table('plan')
    with op.batch_alter_table('payment_method', schema=None) as batch_op:
        batch_op.drop_index('uq_payment_method_one_default', sqlite_where=sa.text('is_default'), postgresql_where=sa.text('is_default'))
        batch_op.drop_index(batch_op.f('ix_payment_method_account_id'))

    op.drop_table('payment_method')
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_employee_account_id'))

    op.drop_table('employee')
    op.drop_table('coupon_product')
    with op.batch_alter_table('child_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_child_account_account_id'))

    op.drop_table('child_account')
    op.drop_table('product')
    op.drop_table('coupon')
    op.drop_table('account')
