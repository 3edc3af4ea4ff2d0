"""The account's saved payment methods. Card details go to the provider; only what is safe to show
(brand, last 4 digits, expiry) is kept here.

Making a card the default and removing one change the provider first and the portal's rows after, each
provider call outside any transaction (a provider call may take seconds and a rollback here does not undo
it). A `PaymentMethodChange` row claimed in the first short transaction keeps one such change at a time per
account and keeps purchases off a card that is being removed; a provider failure puts back what the provider
had already done and leaves the portal's rows as they were.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, select

from cf_portal import clock
from cf_portal.db import session_scope
from cf_portal.models import Account, License, LicenseStatus, PaymentMethod, PaymentMethodChange
from cf_portal.payments.cards import BRAND_NAMES, is_expired, parse_card
from cf_portal.payments.provider import PaymentError, PaymentProvider, SavedCard
from cf_portal.services import audit, throttle
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.roles import Permission

log = logging.getLogger(__name__)

# Longer than any change takes (each provider call gives up after about 20 seconds): an older claim was left
# by a crash and may be taken over.
CHANGE_STALE_AFTER = timedelta(minutes=10)
# The statuses in which a license is charged to its card.
BILLED = (LicenseStatus.ACTIVE.value, LicenseStatus.PAST_DUE.value, LicenseStatus.SUSPENDED.value)
MAKE_ANOTHER_DEFAULT = "Make another card the default first."


class PaymentMethodView(BaseModel):
    id: int
    brand: str
    last4: str
    expiry: str  # "12/30"
    expired: bool
    is_default: bool
    label: str  # "Visa ending in 4242, expires 12/30"


def _brand(pm: PaymentMethod) -> str:
    return BRAND_NAMES.get(pm.brand, pm.brand.title())


def _name(pm: PaymentMethod) -> str:
    """"Visa ending in 4242": how messages name a card."""
    return f"{_brand(pm)} ending in {pm.last4}"


def _view(pm: PaymentMethod, today: date) -> PaymentMethodView:
    expiry = f"{pm.exp_month:02d}/{pm.exp_year % 100:02d}"
    expired = is_expired(pm.exp_month, pm.exp_year, today=today)
    return PaymentMethodView(
        id=pm.id, brand=_brand(pm), last4=pm.last4, expiry=expiry, expired=expired, is_default=pm.is_default,
        label=f"{_name(pm)}, {'expired' if expired else 'expires'} {expiry}",
    )


def list_payment_methods(session: Session, *, account_id: int, today: date) -> list[PaymentMethodView]:
    rows = session.exec(
        select(PaymentMethod).where(PaymentMethod.account_id == account_id)
        .order_by(PaymentMethod.is_default.desc(), PaymentMethod.created_at.desc(), PaymentMethod.id.desc())
    ).all()
    return [_view(pm, today) for pm in rows]


def usable_payment_method(session: Session, *, account_id: int, payment_method_id: int | None,
                          today: date) -> PaymentMethod:
    """The chosen card, if it belongs to the account, has not expired and is not being removed.

    The card's row is share-locked until the caller's transaction ends: a removal, which locks it for update
    before it looks for purchases on it, either sees the caller's pending license or is seen by the caller.
    """
    pm = session.exec(select(PaymentMethod).where(PaymentMethod.id == payment_method_id)
                      .with_for_update(read=True)).first() if payment_method_id else None
    if pm is None or pm.account_id != account_id:
        raise DomainError("Add a payment method, or choose one of your saved payment methods.", field="payment")
    if is_expired(pm.exp_month, pm.exp_year, today=today):
        raise DomainError("This card has expired. Choose another payment method or add a new one.",
                          field="payment")
    change = _change_under_way(session, account_id)
    if change is not None and change.action == "remove" and change.payment_method_id == pm.id:
        raise DomainError("This card is being removed. Choose another payment method or add a new one.",
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


class CardRefused(DomainError):
    """The card form's check or the provider refused the card, or the provider failed while saving it. `field`
    names the card form's field the message belongs to ('card_number', 'expiry', 'cvc'), else 'card';
    `code` is the provider's (for the log)."""

    def __init__(self, exc: PaymentError) -> None:
        super().__init__(exc.message, field=exc.field or "card")
        self.code = exc.code


@contextmanager
def _card_refusals() -> Iterator[None]:
    try:
        yield
    except PaymentError as exc:
        raise CardRefused(exc) from exc


class CardAlreadySaved(DomainError):
    def __init__(self, saved: SavedCard) -> None:
        name = f"{BRAND_NAMES.get(saved.brand, saved.brand.title())} ending in {saved.last4}"
        super().__init__(f"{name}, expires {saved.exp_month:02d}/{saved.exp_year % 100:02d}, is already saved.")


def _keep(engine: sa.Engine | None, provider: PaymentProvider, actor: Actor, customer_id: str, saved: SavedCard,
          today: date) -> PaymentMethodView:
    """Keep a saved card's safe details (brand, last 4, expiry): never its number. A card the account has
    already (the same fingerprint and expiry: the unique index `uq_payment_method_same_card` decides, also
    between two saves at once) is refused, and the copy the provider just saved is removed there."""
    try:
        return _insert_card(engine, actor, saved, today)
    except sa.exc.IntegrityError as exc:
        with session_scope(engine, write=False) as session:
            mine = select(PaymentMethod).where(PaymentMethod.account_id == actor.account_id)
            same_id = session.exec(mine.where(PaymentMethod.provider_id == saved.provider_id)).first()
            if same_id is not None:  # the same confirmation twice at once (a double click): one row
                return _view(same_id, today)
            if not saved.fingerprint or session.exec(mine.where(
                    PaymentMethod.fingerprint == saved.fingerprint, PaymentMethod.exp_month == saved.exp_month,
                    PaymentMethod.exp_year == saved.exp_year)).first() is None:
                raise exc from None  # not a copy: another constraint
    try:
        provider.remove_payment_method(customer_id=customer_id, payment_method_id=saved.provider_id)
    except PaymentError as exc:
        log.error("a card saved twice by account %s stays at the provider (%s): detach %s by hand",
                  actor.account_id, exc.code, saved.provider_id)
    raise CardAlreadySaved(saved)


def _insert_card(engine: sa.Engine | None, actor: Actor, saved: SavedCard, today: date) -> PaymentMethodView:
    with session_scope(engine) as session:
        existing = session.exec(select(PaymentMethod).where(PaymentMethod.account_id == actor.account_id,
                                                            PaymentMethod.provider_id == saved.provider_id)).first()
        if existing is not None:  # the same card confirmed twice (a double click): one row
            return _view(existing, today)
        pm = PaymentMethod(account_id=actor.account_id, provider_id=saved.provider_id, brand=saved.brand,
                           last4=saved.last4, exp_month=saved.exp_month, exp_year=saved.exp_year,
                           fingerprint=saved.fingerprint or None, is_default=False)
        session.add(pm)
        session.flush()
        # The newest card becomes the default when there is none (the partial unique index keeps one).
        has_default = session.exec(select(PaymentMethod.id).where(
            PaymentMethod.account_id == actor.account_id, PaymentMethod.is_default)).first() is not None
        if not has_default:
            pm.is_default = True
        audit.record(session, actor, "payment_method.added", "payment_method", pm.id,
                     f"{saved.brand} ending in {saved.last4}")
        session.flush()
        return _view(pm, today)


def add_payment_method(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, number: str,
                       expiry: str, cvc: str, today: date) -> PaymentMethodView:
    """The sandbox's card form: check it, save the card with the provider, and keep its safe details.

    Raises CardRefused with `field` set ('card_number', 'expiry', 'cvc') for a field's message.
    """
    actor.require(Permission.MANAGE_PAYMENT_METHODS)
    with _card_refusals():
        card = parse_card(number, expiry, cvc, today=today)
        customer_id = provider_customer(engine, provider, actor)
        saved = provider.add_card(customer_id=customer_id, card=card, make_default=_is_first(engine, actor),
                                  idempotency_key=f"add-card-{uuid.uuid4()}")
    return _keep(engine, provider, actor, customer_id, saved, today)


class ProviderBusy(DomainError):
    def __init__(self, wait: throttle.Wait) -> None:
        super().__init__("Your account has asked the payment provider too often in a short time. Try again in "
                         f"{wait.in_words()}.")


def spend_provider_lookup(engine: sa.Engine | None, actor: Actor) -> None:
    """Take one look-up at the provider from the account's budget (`throttle.PROVIDER_LOOKUPS`), in a
    transaction of its own; ProviderBusy when it is spent (the look-up must then not be made)."""
    with session_scope(engine) as session:
        wait = throttle.spend(session, f"provider-lookups:{actor.account_id}", throttle.PROVIDER_LOOKUPS, now=clock.now())
    if wait:
        raise ProviderBusy(wait)


def _card_setup_intent_id(engine: sa.Engine | None, actor: Actor) -> str | None:
    with session_scope(engine, write=False) as session:
        return session.get(Account, actor.account_id).card_setup_intent_id


def start_card_setup(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor) -> str:
    """With a provider that `collects_cards_in_browser` (Stripe): the SetupIntent for the browser's Payment
    Element; returns its client secret, which goes to the browser only. The card then travels from the browser
    to Stripe, never through this server.

    The account's SetupIntent is reused while it waits for a card (the dialog opened again, another tab), so
    opening the form does not make one each time; a new one follows it once it is used (or cancelled), under an
    idempotency key named after the one it follows, so that two forms opened at once get the same one.
    Provider refusals and failures come as CardRefused."""
    actor.require(Permission.MANAGE_PAYMENT_METHODS)
    spend_provider_lookup(engine, actor)
    with _card_refusals():
        customer_id = provider_customer(engine, provider, actor)
        previous = _card_setup_intent_id(engine, actor)
        if previous:
            intent = provider.get_setup_intent(setup_intent_id=previous)
            if (intent is not None and intent.customer_id == customer_id
                    and intent.status == "requires_payment_method"):
                return intent.client_secret
        intent = provider.create_setup_intent(
            customer_id=customer_id, idempotency_key=f"card-setup-of-{customer_id}-after-{previous or 'none'}")
    with session_scope(engine) as session:
        session.execute(sa.update(Account).where(Account.id == actor.account_id,
                                                 Account.card_setup_intent_id.is_not_distinct_from(previous))
                        .values(card_setup_intent_id=intent.provider_id))
    return intent.client_secret


def save_confirmed_card(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor,
                        provider_payment_method_id: str, today: date) -> PaymentMethodView:
    """Keep the card the browser confirmed with Stripe: only the card the account's own SetupIntent (the one
    `start_card_setup` made) succeeded with. Any other id (another customer's card, one never confirmed, one
    confirmed elsewhere) is refused by the provider's check (CardRefused)."""
    actor.require(Permission.MANAGE_PAYMENT_METHODS)
    spend_provider_lookup(engine, actor)
    with _card_refusals():
        customer_id = provider_customer(engine, provider, actor)
        setup_intent_id = _card_setup_intent_id(engine, actor)
        if not setup_intent_id:
            raise DomainError("Open the card form again and enter the card there.", field="card")
        saved = provider.attach_confirmed_payment_method(customer_id=customer_id, setup_intent_id=setup_intent_id,
                                                         payment_method_id=provider_payment_method_id,
                                                         make_default=_is_first(engine, actor))
    return _keep(engine, provider, actor, customer_id, saved, today)


# --- the default card, and removing cards ------------------------------------------------------------------


class ChangeUnderWay(DomainError):
    def __init__(self) -> None:
        super().__init__("Another change to your payment methods is under way. Try again in a moment.")


@dataclass(frozen=True)
class _Card:
    id: int
    provider_id: str
    name: str


def _card(pm: PaymentMethod) -> _Card:
    return _Card(id=pm.id, provider_id=pm.provider_id, name=_name(pm))


def _change_under_way(session: Session, account_id: int) -> PaymentMethodChange | None:
    """The account's change of cards in progress; a claim left by a crash (stale) does not count."""
    return session.exec(select(PaymentMethodChange).where(
        PaymentMethodChange.account_id == account_id,
        PaymentMethodChange.started_at >= clock.now() - CHANGE_STALE_AFTER)).first()


def _claim(session: Session, actor: Actor, pm: PaymentMethod, action: str) -> None:
    """Claim the account's one change at a time, in the transaction that checks the card: a stale claim is
    cleared, and a claim that is not makes this insert fail on the primary key (see `_first_step`; on
    PostgreSQL the insert waits for a claim made at the same moment to commit, then fails)."""
    session.execute(sa.delete(PaymentMethodChange).where(
        PaymentMethodChange.account_id == actor.account_id,
        PaymentMethodChange.started_at < clock.now() - CHANGE_STALE_AFTER))
    session.add(PaymentMethodChange(account_id=actor.account_id, payment_method_id=pm.id, action=action,
                                    started_at=clock.now()))
    session.flush()


@contextmanager
def _first_step(engine: sa.Engine | None) -> Iterator[Session]:
    """The short transaction that finds the card, applies the rule and claims the change."""
    try:
        with session_scope(engine) as session:
            yield session
    except sa.exc.IntegrityError as exc:  # another claim got in first
        raise ChangeUnderWay() from exc


def _release(engine: sa.Engine | None, actor: Actor, payment_method_id: int) -> None:
    try:
        with session_scope(engine) as session:
            session.execute(sa.delete(PaymentMethodChange).where(
                PaymentMethodChange.account_id == actor.account_id,
                PaymentMethodChange.payment_method_id == payment_method_id))
    except Exception:  # the claim goes stale by itself; the change's own outcome matters more
        log.exception("could not release the payment method change of account %s", actor.account_id)


def _locked_card(session: Session, actor: Actor, payment_method_id: int) -> PaymentMethod:
    """One of the account's cards, locked for update until the transaction ends; NotFound otherwise."""
    pm = session.exec(select(PaymentMethod).where(PaymentMethod.id == payment_method_id,
                                                  PaymentMethod.account_id == actor.account_id)
                      .with_for_update()).first()
    if pm is None:
        raise NotFound("That payment method")
    return pm


def _customer_id(session: Session, actor: Actor) -> str:
    account = session.get(Account, actor.account_id)
    return account.provider_customer_id or ""


def _refused(exc: PaymentError, *, outcome: str, missing: str) -> DomainError:
    """A provider's refusal or failure in the member's words; `outcome` says what stayed as it was."""
    log.warning("the payment provider refused a change of cards: %s", exc.code)
    if exc.code == "resource_missing":
        return DomainError(f"{missing} {outcome}")
    return DomainError(f"{exc.message} {outcome}")


def make_default(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, payment_method_id: int,
                 today: date) -> PaymentMethodView:
    """Make one of the account's cards the default, at the provider first: the card Add License preselects, the
    provider's default for the customer, and the card that licenses move to when the card they are billed to
    is removed. Licenses keep the card they are billed to."""
    actor.require(Permission.MANAGE_PAYMENT_METHODS)
    with _first_step(engine) as session:
        pm = _locked_card(session, actor, payment_method_id)
        if is_expired(pm.exp_month, pm.exp_year, today=today):
            raise DomainError(f"{_name(pm)} has expired, so it cannot be the default. Choose another card or "
                              "add a new one.")
        _claim(session, actor, pm, "make_default")
        card, customer_id = _card(pm), _customer_id(session, actor)
    try:
        try:
            provider.set_default_payment_method(customer_id=customer_id, payment_method_id=card.provider_id)
        except PaymentError as exc:
            raise _refused(exc, outcome="The default card was not changed.",
                           missing=f"The payment provider no longer has {card.name}: remove it and add it "
                                   "again.") from exc
        with session_scope(engine) as session:
            pm = _locked_card(session, actor, card.id)
            session.execute(sa.update(PaymentMethod).where(PaymentMethod.account_id == actor.account_id,
                                                           PaymentMethod.is_default, PaymentMethod.id != card.id)
                            .values(is_default=False))
            session.execute(sa.update(PaymentMethod).where(PaymentMethod.id == card.id).values(is_default=True))
            audit.record(session, actor, "payment_method.default", "payment_method", card.id, card.name)
            session.flush()
            session.refresh(pm)
            return _view(pm, today)
    finally:
        _release(engine, actor, card.id)


@dataclass(frozen=True)
class _BilledLicense:
    id: int
    reference_name: str
    subscription_id: str | None


@dataclass(frozen=True)
class _Removal:
    card: _Card
    was_default: bool
    licenses: tuple[_BilledLicense, ...]  # billed to the card: they move to `moves_to`
    moves_to: _Card | None
    new_default: _Card | None  # when the default card goes and no license is billed to it


def _licenses_are(count: int) -> str:
    return "1 license is" if count == 1 else f"{count} licenses are"


def _plan_removal(session: Session, actor: Actor, pm: PaymentMethod, today: date) -> _Removal:
    """The rule for removing a card (the confirmation dialog and the removal both ask it):
    - licenses billed to it (active or past due) move to the account's default card, which must not have
      expired; so the default card itself cannot go while licenses are billed to it;
    - the default card with no license billed to it: the newest other card that has not expired becomes the
      default (or none is left);
    - a purchase with the card that is still being confirmed holds it until it is finished or undone.
    Raises DomainError saying what to do instead."""
    pending = session.exec(select(License.id).where(License.account_id == actor.account_id,
                                                    License.payment_method_id == pm.id,
                                                    License.status == LicenseStatus.PENDING.value)).first()
    if pending is not None:
        raise DomainError(f"A purchase with {_name(pm)} is still being confirmed. Try again in a few minutes.")
    licenses = tuple(
        _BilledLicense(id=lic.id, reference_name=lic.reference_name, subscription_id=lic.provider_subscription_id)
        for lic in session.exec(select(License).where(License.account_id == actor.account_id,
                                                      License.payment_method_id == pm.id,
                                                      License.status.in_(BILLED)).order_by(License.id)))
    others = session.exec(select(PaymentMethod).where(PaymentMethod.account_id == actor.account_id,
                                                      PaymentMethod.id != pm.id)
                          .order_by(PaymentMethod.created_at.desc(), PaymentMethod.id.desc())).all()
    usable = [c for c in others if not is_expired(c.exp_month, c.exp_year, today=today)]
    if not licenses:
        new_default = _card(usable[0]) if pm.is_default and usable else None
        return _Removal(card=_card(pm), was_default=pm.is_default, licenses=(), moves_to=None,
                        new_default=new_default)
    what_to_do = MAKE_ANOTHER_DEFAULT if usable else "Add another card and make it the default first."
    if pm.is_default:
        raise DomainError(f"{_name(pm)} is your default card and {_licenses_are(len(licenses))} billed to it. "
                          f"{what_to_do}")
    default = next((c for c in others if c.is_default), None)
    if default is None or is_expired(default.exp_month, default.exp_year, today=today):
        why = "your default card has expired" if default is not None else "you have no default card"
        raise DomainError(f"{_licenses_are(len(licenses))} billed to {_name(pm)} and {why}. {what_to_do}")
    return _Removal(card=_card(pm), was_default=False, licenses=licenses, moves_to=_card(default),
                    new_default=None)


def _quoted(names: list[str]) -> str:
    shown = [f"“{name}”" for name in names[:3]]
    if len(names) > 3:
        return f"{', '.join(shown)} and {len(names) - 3} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def _consequence(plan: _Removal) -> str:
    if plan.licenses:
        count = len(plan.licenses)
        which = "The license" if count == 1 else f"The {count} licenses"
        return (f"{which} billed to it ({_quoted([lic.reference_name for lic in plan.licenses])}) will be billed "
                f"to {plan.moves_to.name}, your default card, from the next invoice.")
    if not plan.was_default:
        return "No license is billed to it."
    if plan.new_default is not None:
        return f"No license is billed to it. {plan.new_default.name} becomes your default card."
    return "No license is billed to it. You will have no default card until you add one."


class RemovalPreview(BaseModel):
    """What the confirmation dialog says before a card is removed."""

    card_id: int
    name: str  # "Visa ending in 4444"
    consequence: str  # what happens to the licenses billed to it and to the default card ("" when refused)
    refusal: str  # why it cannot be removed now, and what to do ("" when it can)


def preview_removal(session: Session, *, actor: Actor, payment_method_id: int, today: date) -> RemovalPreview:
    actor.require(Permission.MANAGE_PAYMENT_METHODS)
    pm = session.exec(select(PaymentMethod).where(PaymentMethod.id == payment_method_id,
                                                  PaymentMethod.account_id == actor.account_id)).first()
    if pm is None:
        raise NotFound("That payment method")
    try:
        plan = _plan_removal(session, actor, pm, today)
    except DomainError as exc:
        return RemovalPreview(card_id=pm.id, name=_name(pm), consequence="", refusal=exc.message)
    return RemovalPreview(card_id=pm.id, name=_name(pm), consequence=_consequence(plan), refusal="")


class RemovedCard(BaseModel):
    message: str  # "Visa ending in 4444 removed. 2 licenses are now billed to Mastercard ending in 5555."


def remove_payment_method(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor,
                          payment_method_id: int, today: date) -> RemovedCard:
    """Remove one of the account's cards (the rule: `_plan_removal`). At the provider first: the subscriptions
    of the licenses billed to it switch to the default card, a new default is set if the default goes, then the
    card is detached. A provider failure puts back what the provider had done and leaves the portal's rows as
    they were; then the portal forgets the card in one transaction."""
    actor.require(Permission.MANAGE_PAYMENT_METHODS)
    with _first_step(engine) as session:
        pm = _locked_card(session, actor, payment_method_id)
        _claim(session, actor, pm, "remove")
        plan = _plan_removal(session, actor, pm, today)
        customer_id = _customer_id(session, actor)
    try:
        _remove_at_provider(provider, plan, customer_id)
        return _forget(engine, actor, plan)
    finally:
        _release(engine, actor, plan.card.id)


def _remove_at_provider(provider: PaymentProvider, plan: _Removal, customer_id: str) -> None:
    put_back: list[tuple[str, Callable[[], None]]] = []  # what the provider has done, and how to undo it
    try:
        for lic in plan.licenses:
            if lic.subscription_id is None:
                continue  # nothing at the provider bills it
            # Noted before the call: a timeout may have switched it all the same.
            put_back.append((f"subscription {lic.subscription_id}", partial(
                provider.set_subscription_payment_method, subscription_id=lic.subscription_id,
                payment_method_id=plan.card.provider_id)))
            provider.set_subscription_payment_method(subscription_id=lic.subscription_id,
                                                     payment_method_id=plan.moves_to.provider_id)
        if plan.new_default is not None:
            put_back.append((f"the default card of {customer_id}", partial(
                provider.set_default_payment_method, customer_id=customer_id,
                payment_method_id=plan.card.provider_id)))
            provider.set_default_payment_method(customer_id=customer_id,
                                                payment_method_id=plan.new_default.provider_id)
        try:
            provider.remove_payment_method(customer_id=customer_id, payment_method_id=plan.card.provider_id)
        except PaymentError as exc:
            if exc.code != "resource_missing":
                raise
            # Already detached (an earlier attempt got this far): what is left is to forget it here.
            log.info("card %s was already detached at the payment provider", plan.card.id)
    except PaymentError as exc:
        for what, step in reversed(put_back):
            try:
                step()
            except PaymentError as undo_exc:
                log.error("removing card %s failed, and putting %s back on it failed too (%s): set it by hand",
                          plan.card.id, what, undo_exc.code)
        raise _refused(exc, outcome=f"{plan.card.name} was not removed.",
                       missing="The payment provider no longer knows your default card or a subscription "
                               "billed to this card; contact support.") from exc


def _forget(engine: sa.Engine | None, actor: Actor, plan: _Removal) -> RemovedCard:
    """The portal's side of a removal the provider has done, in one transaction."""
    with session_scope(engine) as session:
        later = []  # added after the removal's own event, in this order
        if plan.moves_to is not None and plan.licenses:
            session.execute(sa.update(License).where(License.account_id == actor.account_id,
                                                     License.id.in_([lic.id for lic in plan.licenses]),
                                                     License.payment_method_id == plan.card.id)
                            .values(payment_method_id=plan.moves_to.id))
            later += [audit.event(account_id=actor.account_id, user_id=actor.user_id,
                                  action="license.payment_method_changed", object_type="license", object_id=lic.id,
                                  detail=f"billed to {plan.moves_to.name} (was {plan.card.name}, removed)")
                      for lic in plan.licenses]
        # Licenses no longer charged (cancelled) keep no link to a card that is gone.
        session.execute(sa.update(License).where(License.account_id == actor.account_id,
                                                 License.payment_method_id == plan.card.id)
                        .values(payment_method_id=None))
        session.execute(sa.delete(PaymentMethod).where(PaymentMethod.id == plan.card.id,
                                                       PaymentMethod.account_id == actor.account_id))
        message = f"{plan.card.name} removed."
        detail = plan.card.name
        if plan.licenses:
            moved = f"{_licenses_are(len(plan.licenses))} now billed to {plan.moves_to.name}."
            message, detail = f"{message} {moved}", f"{detail}; {moved}"
        if plan.new_default is not None:
            session.execute(sa.update(PaymentMethod).where(PaymentMethod.id == plan.new_default.id,
                                                           PaymentMethod.account_id == actor.account_id)
                            .values(is_default=True))
            later.append(audit.event(account_id=actor.account_id, user_id=actor.user_id,
                                     action="payment_method.default", object_type="payment_method",
                                     object_id=plan.new_default.id, detail=f"{plan.new_default.name} (the default "
                                                                           f"{plan.card.name} was removed)"))
            message = f"{message} {plan.new_default.name} is now your default card."
        audit.record(session, actor, "payment_method.removed", "payment_method", plan.card.id, detail)
        session.add_all(later)
    return RemovedCard(message=message)
