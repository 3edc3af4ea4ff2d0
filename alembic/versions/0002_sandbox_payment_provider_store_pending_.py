"""sandbox payment provider store, pending licenses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 00:35:59.643436

The sandbox payment provider keeps its customers, cards, subscriptions, invoices and idempotency
keys in these tables. A license is now created as 'pending' before its first charge, and remembers the card that pays it.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reviewed by hand.
    op.create_table('sandbox_customer',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_customer')),
    sa.UniqueConstraint('account_id', name=op.f('uq_sandbox_customer_account_id'))
    )
    op.create_table('sandbox_idempotency_key',
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('operation', sa.String(length=40), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response_json', sa.String(length=8000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_sandbox_idempotency_key'))
    )
    op.create_table('sandbox_payment_method',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=True),
    sa.Column('brand', sa.String(length=20), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('exp_month', sa.Integer(), nullable=False),
    sa.Column('exp_year', sa.Integer(), nullable=False),
    sa.Column('behaviour', sa.String(length=30), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['sandbox_customer.id'], name=op.f('fk_sandbox_payment_method_customer_id_sandbox_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_payment_method'))
    )
    with op.batch_alter_table('sandbox_payment_method', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_payment_method_customer_id'), ['customer_id'], unique=False)

    op.create_table('sandbox_subscription',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('payment_method_id', sa.String(length=40), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('plan_code', sa.String(length=40), nullable=False),
    sa.Column('unit_amount', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('coupon_code', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('metadata_json', sa.String(length=2000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('canceled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['sandbox_customer.id'], name=op.f('fk_sandbox_subscription_customer_id_sandbox_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_subscription'))
    )
    with op.batch_alter_table('sandbox_subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_subscription_customer_id'), ['customer_id'], unique=False)

    op.create_table('sandbox_invoice',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.String(length=40), nullable=False),
    sa.Column('subscription_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subtotal', sa.Integer(), nullable=False),
    sa.Column('discount', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('line_description', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['sandbox_customer.id'], name=op.f('fk_sandbox_invoice_customer_id_sandbox_customer')),
    sa.ForeignKeyConstraint(['subscription_id'], ['sandbox_subscription.id'], name=op.f('fk_sandbox_invoice_subscription_id_sandbox_subscription')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_invoice')),
    sa.UniqueConstraint('number', name=op.f('uq_sandbox_invoice_number'))
    )
    with op.batch_alter_table('sandbox_invoice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sandbox_invoice_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sandbox_invoice_subscription_id'), ['subscription_id'], unique=False)

    _license_statuses("'pending', 'active', 'past_due', 'canceled'", with_payment_method=True)


def _license_statuses(allowed: str, *, with_payment_method: bool) -> None:
    # CHECK constraints are not autogenerated; SQLite rebuilds the table in batch mode.
    with op.batch_alter_table('license', schema=None) as batch_op:
        if with_payment_method:
            batch_op.add_column(sa.Column('payment_method_id', sa.Integer(), nullable=True))
            batch_op.create_foreign_key(op.f('fk_license_payment_method_id_payment_method'), 'payment_method',
                                        ['payment_method_id'], ['id'])
        else:
            batch_op.drop_constraint(op.f('fk_license_payment_method_id_payment_method'), type_='foreignkey')
            batch_op.drop_column('payment_method_id')
        batch_op.drop_constraint(op.f('ck_license_status_valid'), type_='check')
        batch_op.create_check_constraint(op.f('ck_license_status_valid'), f"status IN ({allowed})")


def downgrade() -> None:
    op.execute("DELETE FROM license WHERE status = 'pending'")
    _license_statuses("'active', 'past_due', 'canceled'", with_payment_method=False)
    with op.batch_alter_table('sandbox_invoice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_invoice_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_sandbox_invoice_customer_id'))

    op.drop_table('sandbox_invoice')
    with op.batch_alter_table('sandbox_subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_subscription_customer_id'))

    op.drop_table('sandbox_subscription')
    with op.batch_alter_table('sandbox_payment_method', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sandbox_payment_method_customer_id'))

    op.drop_table('sandbox_payment_method')
    op.drop_table('sandbox_idempotency_key')
    op.drop_table('sandbox_customer')
