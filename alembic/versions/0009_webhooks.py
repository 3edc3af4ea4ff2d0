"""webhooks: endpoints, the outbox of events and the log of delivery attempts

Revision ID: 0009_webhooks
Revises: 0009_api_keys
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0009_webhooks'
down_revision: str | None = '0009_api_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TYPES = "'seat.assigned', 'seat.unassigned', 'seat.moved', 'license.suspended', 'license.canceled'"


def upgrade() -> None:
    # Written by hand: three new tables, nothing existing changes.
    op.create_table('webhook_endpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('event_types', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=120), nullable=False),
    sa.Column('secret_salt', sa.String(length=64), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("url LIKE 'https://%' OR url LIKE 'http://%'", name=op.f('ck_webhook_endpoint_url_http')),
    sa.CheckConstraint('length(event_types) > 0', name=op.f('ck_webhook_endpoint_event_types_not_empty')),
    sa.CheckConstraint('length(secret_salt) >= 32', name=op.f('ck_webhook_endpoint_secret_salt_long')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_webhook_endpoint_account_id_account'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['user.id'],
                            name=op.f('fk_webhook_endpoint_created_by_user_id_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoint'))
    )
    op.create_index(op.f('ix_webhook_endpoint_account_id'), 'webhook_endpoint', ['account_id'], unique=False)
    op.create_table('webhook_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(f"type IN ({EVENT_TYPES})", name=op.f('ck_webhook_event_type_known')),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name=op.f('ck_webhook_event_status_valid')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_webhook_event_attempts_not_negative')),
    sa.CheckConstraint("(status = 'delivered') = (delivered_at IS NOT NULL)",
                       name=op.f('ck_webhook_event_delivered_when_delivered')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_webhook_event_account_id_account'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'],
                            name=op.f('fk_webhook_event_endpoint_id_webhook_endpoint'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_event')),
    sa.UniqueConstraint('endpoint_id', 'event_id', name=op.f('uq_webhook_event_endpoint_id_event_id'))
    )
    op.create_index(op.f('ix_webhook_event_account_id'), 'webhook_event', ['account_id'], unique=False)
    op.create_index('ix_webhook_event_due', 'webhook_event', ['next_attempt_at'], unique=False,
                    sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_webhook_event_endpoint_created', 'webhook_event', ['endpoint_id', 'created_at'], unique=False)
    op.create_table('webhook_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('webhook_event_id', sa.Integer(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.CheckConstraint('duration_ms >= 0', name=op.f('ck_webhook_delivery_duration_not_negative')),
    sa.ForeignKeyConstraint(['webhook_event_id'], ['webhook_event.id'],
                            name=op.f('fk_webhook_delivery_webhook_event_id_webhook_event'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_delivery'))
    )
    op.create_index(op.f('ix_webhook_delivery_webhook_event_id'), 'webhook_delivery', ['webhook_event_id'],
                    unique=False)


def downgrade() -> None:
    # Written by hand: the tables go, with every event not yet delivered.
    op.drop_table('webhook_delivery')
    op.drop_table('webhook_event')
    op.drop_table('webhook_endpoint')
