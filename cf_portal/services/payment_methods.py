"""The account's saved payment methods. Card details go to the provider; only what is safe to show
(brand, last 4 digits, expiry) is kept here."""

from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import Account, AuditEvent, PaymentMethod
from cf_portal.payments.cards import BRAND_NAMES, is_expired, parse_card
from cf_portal.payments.provider import PaymentProvider, SavedCard
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.roles import Permission


class PaymentMethodView(BaseModel):
    id: int
    brand: str
    last4: str
    expiry: str  # "12/30"
    expired: bool
    is_default: bool
    label: str  # "Visa ending in 4242, expires 12/30"


def _view(pm: PaymentMethod, today: date) -> PaymentMethodView:
    expiry = f"{pm.exp_month:02d}/{pm.exp_year % 100:02d}"
    expired = is_expired(pm.exp_month, pm.exp_year, today=today)
    brand = BRAND_NAMES.get(pm.brand, pm.brand.title())
    return PaymentMethodView(
        id=pm.id, brand=brand, last4=pm.last4, expiry=expiry, expired=expired, is_default=pm.is_default,
        label=f"{brand} ending in {pm.last4}, {'expired' if expired else 'expires'} {expiry}",
    )


def list_payment_methods(session: Session, *, account_id: int, today: date) -> list[PaymentMethodView]:
    rows = session.exec(
        select(PaymentMethod).where(PaymentMethod.account_id == account_id)
        .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at.desc(), PaymentMethod.id.desc())
    ).all()
    return [_view(pm, today) for pm in rows]


def usable_payment_method(session: Session, *, account_id: int, payment_method_id: int | None,
                          today: date) -> PaymentMethod:
    """The chosen card, if it belongs to the account and has not expired."""
    pm = session.get(PaymentMethod, payment_method_id) if payment_method_id else None
    if pm is None or pm.account_id != account_id:
        raise DomainError("Add a payment method, or choose one of your saved payment methods.", field="payment")
    if is_expired(pm.exp_month, pm.exp_year, today=today):
        raise DomainError("This card has expired. Choose another payment method or add a new one.",
                          field="payment")
    return pm


def provider_customer(engine: sa.Engine | None, provider: PaymentProvider, actor: Actor) -> str:
    """The account's customer at the provider, created on first need (outside our transactions: a provider
    call may take a while and is not undone by a rollback here)."""
    with session_scope(engine, write=False) as session:
        account = session.get(Account, actor.account_id)
        if account is None:
            raise NotFound("Your account")
        customer_id, account_name = account.provider_customer_id, account.name
    new_customer_id = provider.ensure_customer(account_id=actor.account_id, account_name=account_name,
                                               customer_id=customer_id)
    if new_customer_id != customer_id:
        with session_scope(engine) as session:
            session.execute(sa.update(Account).where(Account.id == actor.account_id)
                            .values(provider_customer_id=new_customer_id))
    return new_customer_id


def _is_first(engine: sa.Engine | None, actor: Actor) -> bool:
    with session_scope(engine, write=False) as session:
        return session.exec(select(PaymentMethod.id).where(PaymentMethod.account_id == actor.account_id)).first() is None


def _keep(engine: sa.Engine | None, actor: Actor, saved: SavedCard, today: date) -> PaymentMethodView:
    """Keep a saved card's safe details (brand, last 4, expiry): never its number."""
    with session_scope(engine) as session:
        existing = session.exec(select(PaymentMethod).where(PaymentMethod.account_id == actor.account_id,
                                                            PaymentMethod.provider_id == saved.provider_id)).first()
        if existing is not None:  # the same card confirmed twice (a double click): one row
            return _view(existing, today)
        pm = PaymentMethod(account_id=actor.account_id, provider_id=saved.provider_id, brand=saved.brand,
                           last4=saved.last4, exp_month=saved.exp_month, exp_year=saved.exp_year, is_default=False)
        session.add(pm)
        session.flush()
        # The newest card becomes the default when there is none (the partial unique index keeps one).
        has_default = session.exec(select(PaymentMethod.id).where(
            PaymentMethod.account_id == actor.account_id, PaymentMethod.is_default)).first() is not None
        if not has_default:
            pm.is_default = True
        session.add(AuditEvent(account_id=actor.account_id, actor_user_id=actor.user_id, action="payment_method.added",
                               object_type="payment_method", object_id=pm.id,
                               detail=f"{saved.brand} ending in {saved.last4}"))
        session.flush()
        return _view(pm, today)


def add_payment_method(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, number: str,
                       expiry: str, cvc: str, today: date) -> PaymentMethodView:
    """The sandbox's card form: check it, save the card with the provider, and keep its safe details.

    Raises PaymentError with `field` set ('card_number', 'expiry', 'cvc') for a field's message.
    """
    actor.require(Permission.MANAGE_PAYMENT_METHODS)
    card = parse_card(number, expiry, cvc, today=today)
    customer_id = provider_customer(engine, provider, actor)
    saved = provider.add_card(customer_id=customer_id, card=card, make_default=_is_first(engine, actor),
                              idempotency_key=f"add-card-{uuid.uuid4()}")
    return _keep(engine, actor, saved, today)


def start_card_setup(engine: sa.Engine | None, provider, *, actor: Actor) -> str:  # noqa: ANN001
    """With Stripe: a SetupIntent for the browser's Payment Element; returns its client secret, which goes to
    the browser only. The card then travels from the browser to Stripe, never through this server."""
    actor.require(Permission.MANAGE_PAYMENT_METHODS)
    customer_id = provider_customer(engine, provider, actor)
    return provider.create_setup_intent(customer_id=customer_id, idempotency_key=f"setup-{uuid.uuid4()}")


def save_confirmed_card(engine: sa.Engine | None, provider, *, actor: Actor, provider_payment_method_id: str,  # noqa: ANN001
                        today: date) -> PaymentMethodView:
    """Keep the card the browser confirmed with Stripe. The provider checks that it belongs to this account's
    customer, so an id from elsewhere is refused."""
    actor.require(Permission.MANAGE_PAYMENT_METHODS)
    customer_id = provider_customer(engine, provider, actor)
    saved = provider.attach_confirmed_payment_method(customer_id=customer_id,
                                                     payment_method_id=provider_payment_method_id,
                                                     make_default=_is_first(engine, actor))
    return _keep(engine, actor, saved, today)

