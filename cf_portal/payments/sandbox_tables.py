"""The sandbox provider's own store. It plays the part of the provider's servers: the app's code
reads and writes these tables only through `SandboxProvider`, never directly."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from cf_portal.models import created_at_field, optional_time_field


class SandboxCustomer(SQLModel, table=True):
    __tablename__ = "sandbox_customer"

    id: str = Field(primary_key=True, max_length=40)
    account_id: int = Field(unique=True)
    name: str = Field(max_length=120)
    created_at: datetime = created_at_field()


class SandboxPaymentMethod(SQLModel, table=True):
    """A card as the sandbox keeps it: brand, last 4, expiry and how its test number behaves."""

    __tablename__ = "sandbox_payment_method"

    id: str = Field(primary_key=True, max_length=40)
    customer_id: str | None = Field(default=None, max_length=40,
                                    sa_column_args=[sa.ForeignKey("sandbox_customer.id")], index=True)
    brand: str = Field(max_length=20)
    last4: str = Field(max_length=4)
    exp_month: int
    exp_year: int
    # What charging this card does, from Stripe's documented test numbers: succeeds, card_declined, ...
    behaviour: str = Field(max_length=30)
    is_default: bool = Field(default=False)
    created_at: datetime = created_at_field()


class SandboxSubscription(SQLModel, table=True):
    __tablename__ = "sandbox_subscription"

    id: str = Field(primary_key=True, max_length=40)
    customer_id: str = Field(max_length=40, sa_column_args=[sa.ForeignKey("sandbox_customer.id")], index=True)
    payment_method_id: str = Field(max_length=40)
    description: str = Field(max_length=200)
    plan_code: str = Field(max_length=40)
    unit_amount: int
    currency: str = Field(max_length=3)
    quantity: int
    coupon_code: str | None = Field(default=None, max_length=40)
    status: str = Field(max_length=20)
    metadata_json: str = Field(default="{}", max_length=2000)
    created_at: datetime = created_at_field()
    canceled_at: datetime | None = optional_time_field()
    cancel_at_period_end: bool = Field(default=False)


class SandboxInvoice(SQLModel, table=True):
    __tablename__ = "sandbox_invoice"

    id: str = Field(primary_key=True, max_length=40)
    number: str = Field(max_length=40, unique=True)
    customer_id: str = Field(max_length=40, sa_column_args=[sa.ForeignKey("sandbox_customer.id")], index=True)
    subscription_id: str = Field(max_length=40, sa_column_args=[sa.ForeignKey("sandbox_subscription.id")],
                                 index=True)
    status: str = Field(max_length=20)
    currency: str = Field(max_length=3)
    subtotal: int
    discount: int
    total: int
    line_description: str = Field(max_length=200)
    # The lines of an invoice that is not a whole period of the subscription (a change within a period), as JSON;
    # "" for a period's invoice, whose one line is the subscription's quantity at its unit amount.
    lines_json: str = Field(default="", max_length=4000)
    created_at: datetime = created_at_field()


class SandboxIdempotencyKey(SQLModel, table=True):
    """Stripe-style idempotency: the first result of a key is replayed for every later use of it."""

    __tablename__ = "sandbox_idempotency_key"

    key: str = Field(primary_key=True, max_length=120)
    operation: str = Field(max_length=40)
    request_hash: str = Field(max_length=64)
    response_json: str = Field(max_length=8000)
    created_at: datetime = created_at_field()
