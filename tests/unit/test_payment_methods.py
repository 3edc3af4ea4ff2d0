"""Saved cards: the default card and removing a card, at the provider first (the sandbox here) and then in the
portal's rows; refusals, other accounts, roles, provider failures half way and changes at the same time.

The tests of card changes at the same moment are only real races on PostgreSQL (on SQLite writers queue up behind
`BEGIN IMMEDIATE`); `make test` runs them there too. See tests/support/concurrency.py."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import all_metadata, session_scope
from cf_portal.models import AuditEvent, License, LicenseStatus, PaymentMethod, PaymentMethodChange, Role
from cf_portal.payments.provider import PaymentError, ProviderUnavailable
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.payments.sandbox_tables import SandboxPaymentMethod, SandboxSubscription
from cf_portal.services import payment_methods
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotAllowed, NotFound
from cf_portal.services.payment_methods import (
    ChangeUnderWay,
    PaymentMethodView,
    list_payment_methods,
    make_default,
    preview_removal,
    remove_payment_method,
)
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.roles import REFUSALS, Permission
from tests.unit.conftest import NOW, TODAY, Seeded

VISA, MASTERCARD, OTHER_VISA = "4242424242424242", "5555555555554444", "4000056655665556"
LATER = date(2027, 1, 10)  # a card that expires 12/26 has expired by then


# --- helpers --------------------------------------------------------------------------------------------------


def buy(seeded: Seeded, provider: SandboxProvider, card: PaymentMethodView, name: str = "Sales team",
        actor: Actor | None = None) -> int:
    plan = seeded.plans["awareness-business"]
    result = create_license(seeded.engine, provider, actor=actor or seeded.actor, now=NOW, request=PurchaseRequest(
        reference_name=name, plan_id=plan.id, quantity=2, payment_method_id=card.id,
        expected_total=2 * plan.unit_amount, idempotency_key=uuid.uuid4().hex))
    return result.license_id


def cards(seeded: Seeded, actor: Actor | None = None) -> list[tuple[str, bool]]:
    """(last 4, default) of the account's cards, the default first."""
    with session_scope(seeded.engine, write=False) as session:
        return [(c.last4, c.is_default) for c in list_payment_methods(
            session, account_id=(actor or seeded.actor).account_id, today=TODAY)]


def license_card(seeded: Seeded, license_id: int) -> int | None:
    with session_scope(seeded.engine, write=False) as session:
        return session.get(License, license_id).payment_method_id


def provider_card_of(seeded: Seeded, license_id: int) -> str:
    """The card the provider charges the license's subscription to."""
    with session_scope(seeded.engine, write=False) as session:
        subscription_id = session.get(License, license_id).provider_subscription_id
        return session.get(SandboxSubscription, subscription_id).payment_method_id


def provider_id(seeded: Seeded, card: PaymentMethodView) -> str:
    with session_scope(seeded.engine, write=False) as session:
        return session.get(PaymentMethod, card.id).provider_id


def provider_default(seeded: Seeded) -> str | None:
    with session_scope(seeded.engine, write=False) as session:
        return session.exec(select(SandboxPaymentMethod.id).where(SandboxPaymentMethod.is_default,
                                                                  SandboxPaymentMethod.customer_id.is_not(None))
                            ).first()


def attached_at_provider(seeded: Seeded, card_provider_id: str) -> bool:
    with session_scope(seeded.engine, write=False) as session:
        return session.get(SandboxPaymentMethod, card_provider_id).customer_id is not None


def audit_actions(seeded: Seeded) -> list[tuple[str, str]]:
    with session_scope(seeded.engine, write=False) as session:
        return [(e.action, e.detail) for e in session.exec(
            select(AuditEvent).where(AuditEvent.action.like("payment_method.%") | AuditEvent.action.like(
                "license.payment_method%")).order_by(AuditEvent.id))]


def everything(seeded: Seeded) -> dict[str, list[tuple]]:
    """Every row of every table (the portal's and the sandbox provider's)."""
    with seeded.engine.connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
                for table in all_metadata().sorted_tables}


@contextmanager
def nothing_changes(seeded: Seeded) -> Iterator[None]:
    before = everything(seeded)
    yield
    after = everything(seeded)
    assert [name for name in before if before[name] != after[name]] == []


def as_role(actor: Actor, role: Role) -> Actor:
    return actor.model_copy(update={"role": role.value})


class InterceptedProvider(SandboxProvider):
    """The sandbox, calling `_before(method)` before each of its changes of cards."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine, today=lambda: TODAY)

    def _before(self, method: str) -> None:
        raise NotImplementedError

    def set_default_payment_method(self, **kwargs: Any) -> None:
        self._before("set_default_payment_method")
        super().set_default_payment_method(**kwargs)

    def set_subscription_payment_method(self, **kwargs: Any) -> None:
        self._before("set_subscription_payment_method")
        super().set_subscription_payment_method(**kwargs)

    def remove_payment_method(self, **kwargs: Any) -> None:
        self._before("remove_payment_method")
        super().remove_payment_method(**kwargs)


class FailingProvider(InterceptedProvider):
    """Fails the `nth` call of `method` with `error` (the calls that put things back succeed)."""

    def __init__(self, engine: sa.Engine, method: str, nth: int = 1, error: PaymentError | None = None) -> None:
        super().__init__(engine)
        self.method, self.nth, self.calls = method, nth, 0
        self.error = error or ProviderUnavailable("provider_unavailable", "The payment provider did not answer in "
                                                                          "time. Please try again in a moment.")

    def _before(self, method: str) -> None:
        if method == self.method:
            self.calls += 1
            if self.calls == self.nth:
                raise self.error


class HeldProvider(InterceptedProvider):
    """Holds `method` until released: a change caught half way at the provider."""

    def __init__(self, engine: sa.Engine, method: str) -> None:
        super().__init__(engine)
        self.method, self.entered, self.release = method, threading.Event(), threading.Event()

    def _before(self, method: str) -> None:
        if method == self.method:
            self.entered.set()
            assert self.release.wait(30)


# --- the default card -----------------------------------------------------------------------------------------


def test_make_default_changes_the_default_at_the_provider_and_here(seeded: Seeded,
                                                                   provider: SandboxProvider) -> None:
    visa = seeded.add_card(provider)
    master = seeded.add_card(provider, MASTERCARD)
    assert provider_default(seeded) == provider_id(seeded, visa)
    licence = buy(seeded, provider, visa)

    shown = make_default(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert (shown.id, shown.is_default, shown.label) == (master.id, True, "Mastercard ending in 4444, expires 12/34")
    assert cards(seeded) == [("4444", True), ("4242", False)]
    assert provider_default(seeded) == provider_id(seeded, master)
    # Licenses keep the card they are billed to.
    assert (license_card(seeded, licence), provider_card_of(seeded, licence)) == (visa.id, provider_id(seeded, visa))
    assert audit_actions(seeded)[-1] == ("payment_method.default", "Mastercard ending in 4444")
    # Again: nothing to change, and no harm.
    make_default(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert cards(seeded) == [("4444", True), ("4242", False)]


def test_an_expired_card_cannot_become_the_default(seeded: Seeded, provider: SandboxProvider) -> None:
    seeded.add_card(provider)
    old = seeded.add_card(provider, MASTERCARD, expiry="12/26")
    with nothing_changes(seeded), pytest.raises(DomainError) as info:
        make_default(seeded.engine, provider, actor=seeded.actor, payment_method_id=old.id, today=LATER)
    assert info.value.message == ("Mastercard ending in 4444 has expired, so it cannot be the default. Choose "
                                  "another card or add a new one.")


def test_a_provider_failure_leaves_the_default_as_it_was(seeded: Seeded, provider: SandboxProvider) -> None:
    seeded.add_card(provider)
    master = seeded.add_card(provider, MASTERCARD)
    failing = FailingProvider(seeded.engine, "set_default_payment_method")
    with nothing_changes(seeded), pytest.raises(DomainError) as info:
        make_default(seeded.engine, failing, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert info.value.message == ("The payment provider did not answer in time. Please try again in a moment. "
                                  "The default card was not changed.")
    # A card the provider no longer has (removed in its dashboard, say) says what to do.
    gone = FailingProvider(seeded.engine, "set_default_payment_method",
                           error=PaymentError("resource_missing", "No such payment method."))
    with nothing_changes(seeded), pytest.raises(DomainError) as info:
        make_default(seeded.engine, gone, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert info.value.message == ("The payment provider no longer has Mastercard ending in 4444: remove it and add "
                                  "it again. The default card was not changed.")


# --- removing a card --------------------------------------------------------------------------------------------


def test_removing_a_card_moves_its_licenses_to_the_default_and_switches_their_subscriptions(
        seeded: Seeded, provider: SandboxProvider) -> None:
    visa = seeded.add_card(provider)  # the default
    master = seeded.add_card(provider, MASTERCARD)
    on_master = [buy(seeded, provider, master, "Sales team"), buy(seeded, provider, master, "Helpdesk")]
    on_visa = buy(seeded, provider, visa, "Engineering")
    with session_scope(seeded.engine) as session:  # a past-due license is still charged: it moves too
        session.get(License, on_master[1]).status = LicenseStatus.PAST_DUE.value
    master_at_provider = provider_id(seeded, master)

    with session_scope(seeded.engine, write=False) as session:
        preview = preview_removal(session, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert (preview.name, preview.refusal) == ("Mastercard ending in 4444", "")
    assert preview.consequence == ("The 2 licenses billed to it (“Sales team” and “Helpdesk”) will be billed to Visa "
                                   "ending in 4242, your default card, from the next invoice.")

    removed = remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id,
                                    today=TODAY)
    assert removed.message == "Mastercard ending in 4444 removed. 2 licenses are now billed to Visa ending in 4242."
    assert cards(seeded) == [("4242", True)]
    for licence in on_master:
        assert license_card(seeded, licence) == visa.id
        assert provider_card_of(seeded, licence) == provider_id(seeded, visa)
    assert license_card(seeded, on_visa) == visa.id
    assert not attached_at_provider(seeded, master_at_provider)
    assert [c.last4 for c in provider.list_payment_methods(customer_id=provider_customer(seeded))] == ["4242"]
    assert audit_actions(seeded)[-3:] == [
        ("payment_method.removed", "Mastercard ending in 4444; 2 licenses are now billed to Visa ending in 4242."),
        ("license.payment_method_changed", "billed to Visa ending in 4242 (was Mastercard ending in 4444, removed)"),
        ("license.payment_method_changed", "billed to Visa ending in 4242 (was Mastercard ending in 4444, removed)"),
    ]
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(PaymentMethodChange)).all() == []


def provider_customer(seeded: Seeded) -> str:
    with seeded.engine.connect() as conn:
        return conn.execute(sa.text("SELECT provider_customer_id FROM account WHERE id = :id"),
                            {"id": seeded.actor.account_id}).scalar_one()


def test_a_card_no_license_uses_is_simply_removed_and_cancelled_licenses_let_go_of_it(
        seeded: Seeded, provider: SandboxProvider) -> None:
    seeded.add_card(provider)
    master = seeded.add_card(provider, MASTERCARD)
    cancelled = buy(seeded, provider, master, "Old team")
    with session_scope(seeded.engine) as session:
        session.get(License, cancelled).status = LicenseStatus.CANCELED.value
    with session_scope(seeded.engine, write=False) as session:
        assert preview_removal(session, actor=seeded.actor, payment_method_id=master.id,
                               today=TODAY).consequence == "No license is billed to it."
    removed = remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id,
                                    today=TODAY)
    assert removed.message == "Mastercard ending in 4444 removed."
    assert cards(seeded) == [("4242", True)]
    assert license_card(seeded, cancelled) is None


def test_removing_the_default_card_makes_the_newest_usable_card_the_default(seeded: Seeded,
                                                                           provider: SandboxProvider) -> None:
    visa = seeded.add_card(provider)  # the default
    master = seeded.add_card(provider, MASTERCARD)
    seeded.add_card(provider, OTHER_VISA, expiry="12/26")  # the newest, but expired by LATER
    with session_scope(seeded.engine, write=False) as session:
        assert preview_removal(session, actor=seeded.actor, payment_method_id=visa.id, today=LATER).consequence == (
            "No license is billed to it. Mastercard ending in 4444 becomes your default card.")
    removed = remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=visa.id,
                                    today=LATER)
    assert removed.message == ("Visa ending in 4242 removed. Mastercard ending in 4444 is now your default card.")
    assert cards(seeded) == [("4444", True), ("5556", False)]
    assert provider_default(seeded) == provider_id(seeded, master)
    assert ("payment_method.default", "Mastercard ending in 4444 (the default Visa ending in 4242 was removed)") in (
        audit_actions(seeded))

    # The last usable card: none is left to be the default.
    with session_scope(seeded.engine, write=False) as session:
        assert preview_removal(session, actor=seeded.actor, payment_method_id=master.id, today=LATER).consequence == (
            "No license is billed to it. You will have no default card until you add one.")
    remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id, today=LATER)
    assert cards(seeded) == [("5556", False)]
    assert provider_default(seeded) is None


def test_the_default_card_cannot_go_while_licenses_are_billed_to_it(seeded: Seeded,
                                                                    provider: SandboxProvider) -> None:
    visa = seeded.add_card(provider)
    buy(seeded, provider, visa)
    with nothing_changes(seeded), pytest.raises(DomainError) as info:
        remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=visa.id, today=TODAY)
    assert info.value.message == ("Visa ending in 4242 is your default card and 1 license is billed to it. Add "
                                  "another card and make it the default first.")
    seeded.add_card(provider, MASTERCARD)
    with nothing_changes(seeded), pytest.raises(DomainError) as info:
        remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=visa.id, today=TODAY)
    assert info.value.message == ("Visa ending in 4242 is your default card and 1 license is billed to it. Make "
                                  "another card the default first.")
    with session_scope(seeded.engine, write=False) as session:  # the dialog says so before anything is tried
        preview = preview_removal(session, actor=seeded.actor, payment_method_id=visa.id, today=TODAY)
    assert (preview.consequence, preview.refusal) == ("", info.value.message)


def test_a_card_in_use_is_not_removed_without_a_usable_default(seeded: Seeded, provider: SandboxProvider) -> None:
    seeded.add_card(provider, expiry="12/26")  # the default, expired by LATER
    master = seeded.add_card(provider, MASTERCARD)
    buy(seeded, provider, master)
    with nothing_changes(seeded), pytest.raises(DomainError) as info:
        remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id, today=LATER)
    assert info.value.message == ("1 license is billed to Mastercard ending in 4444 and your default card has "
                                  "expired. Add another card and make it the default first.")


def test_a_purchase_still_being_confirmed_holds_its_card(seeded: Seeded, provider: SandboxProvider) -> None:
    seeded.add_card(provider)
    master = seeded.add_card(provider, MASTERCARD)
    licence = buy(seeded, provider, master)
    with session_scope(seeded.engine) as session:  # as a purchase whose provider did not answer leaves it
        session.get(License, licence).status = LicenseStatus.PENDING.value
    with nothing_changes(seeded), pytest.raises(DomainError) as info:
        remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert info.value.message == ("A purchase with Mastercard ending in 4444 is still being confirmed. Try again in "
                                  "a few minutes.")


@pytest.mark.parametrize(("method", "nth"), [
    ("set_subscription_payment_method", 1),
    ("set_subscription_payment_method", 2),  # the first license's subscription had already switched
    ("remove_payment_method", 1),  # both had switched
])
def test_a_provider_failure_half_way_leaves_everything_as_it_was(seeded: Seeded, provider: SandboxProvider,
                                                                 method: str, nth: int) -> None:
    seeded.add_card(provider)
    master = seeded.add_card(provider, MASTERCARD)
    on_master = [buy(seeded, provider, master, "Sales team"), buy(seeded, provider, master, "Helpdesk")]
    failing = FailingProvider(seeded.engine, method, nth)
    with nothing_changes(seeded), pytest.raises(DomainError) as info:
        remove_payment_method(seeded.engine, failing, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert info.value.message == ("The payment provider did not answer in time. Please try again in a moment. "
                                  "Mastercard ending in 4444 was not removed.")
    # The provider's subscriptions were put back too (nothing_changes covers the sandbox's tables).
    assert {provider_card_of(seeded, licence) for licence in on_master} == {provider_id(seeded, master)}
    # Trying again when the provider answers finishes the job.
    remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert cards(seeded) == [("4242", True)]


def test_a_card_already_detached_at_the_provider_is_forgotten_here(seeded: Seeded,
                                                                  provider: SandboxProvider) -> None:
    seeded.add_card(provider)
    master = seeded.add_card(provider, MASTERCARD)
    provider.remove_payment_method(customer_id=provider_customer(seeded), payment_method_id=provider_id(seeded, master))
    remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert cards(seeded) == [("4242", True)]


# --- other accounts, roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("whose", ["another account's card", "a card that does not exist"])
def test_another_accounts_card_is_not_found_and_nothing_changes(seeded: Seeded, provider: SandboxProvider,
                                                               whose: str) -> None:
    seeded.add_card(provider)
    other = seeded.other_actor()
    theirs = seeded.add_card(provider, MASTERCARD, actor=other)
    seeded.add_card(provider, OTHER_VISA, actor=other)
    card_id = theirs.id if whose == "another account's card" else 999_999
    with nothing_changes(seeded):
        with pytest.raises(NotFound) as info:
            remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=card_id, today=TODAY)
        assert info.value.message == "That payment method was not found."
        with pytest.raises(NotFound):
            make_default(seeded.engine, provider, actor=seeded.actor, payment_method_id=card_id, today=TODAY)
        with pytest.raises(NotFound), session_scope(seeded.engine, write=False) as session:
            preview_removal(session, actor=seeded.actor, payment_method_id=card_id, today=TODAY)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.LICENSE_ADMIN])
def test_only_owners_and_billing_admins_change_cards(seeded: Seeded, provider: SandboxProvider, role: Role) -> None:
    seeded.add_card(provider)
    master = seeded.add_card(provider, MASTERCARD)
    actor = as_role(seeded.actor, role)
    with nothing_changes(seeded):
        for change in (make_default, remove_payment_method):
            with pytest.raises(NotAllowed) as info:
                change(seeded.engine, provider, actor=actor, payment_method_id=master.id, today=TODAY)
            assert info.value.message == REFUSALS[Permission.MANAGE_PAYMENT_METHODS]
        with pytest.raises(NotAllowed), session_scope(seeded.engine, write=False) as session:
            preview_removal(session, actor=actor, payment_method_id=master.id, today=TODAY)
    billing_admin = as_role(seeded.actor, Role.BILLING_ADMIN)
    remove_payment_method(seeded.engine, provider, actor=billing_admin, payment_method_id=master.id, today=TODAY)
    assert cards(seeded) == [("4242", True)]


# --- at the same time -------------------------------------------------------------------------------------------


def test_while_a_card_is_being_removed_other_changes_wait_and_purchases_keep_off_it(
        seeded: Seeded, provider: SandboxProvider) -> None:
    visa = seeded.add_card(provider)
    master = seeded.add_card(provider, MASTERCARD)
    held = HeldProvider(seeded.engine, "remove_payment_method")
    outcome: queue.Queue[object] = queue.Queue()

    def remove() -> None:
        try:
            outcome.put(remove_payment_method(seeded.engine, held, actor=seeded.actor, payment_method_id=master.id,
                                              today=TODAY))
        except Exception as exc:  # noqa: BLE001 (handed to the test)
            outcome.put(exc)

    worker = threading.Thread(target=remove)
    worker.start()
    try:
        assert held.entered.wait(30)
        # A second admin, the same card or another: one change at a time.
        for card in (master, visa):
            with pytest.raises(ChangeUnderWay) as info:
                remove_payment_method(seeded.engine, provider, actor=seeded.actor, payment_method_id=card.id,
                                      today=TODAY)
            assert info.value.message == "Another change to your payment methods is under way. Try again in a moment."
            with pytest.raises(ChangeUnderWay):
                make_default(seeded.engine, provider, actor=seeded.actor, payment_method_id=card.id, today=TODAY)
        # A purchase with the card being removed is refused; with another card it goes through.
        with pytest.raises(DomainError) as info:
            buy(seeded, provider, master)
        assert info.value.message == "This card is being removed. Choose another payment method or add a new one."
        bought = buy(seeded, provider, visa)
    finally:
        held.release.set()
        worker.join(30)
    removed = outcome.get_nowait()
    assert not isinstance(removed, Exception), removed
    assert cards(seeded) == [("4242", True)]
    assert license_card(seeded, bought) == visa.id
    # Afterwards the next change goes through.
    third = seeded.add_card(provider, OTHER_VISA)
    make_default(seeded.engine, provider, actor=seeded.actor, payment_method_id=third.id, today=TODAY)


def test_two_admins_at_once_one_change_goes_through(seeded: Seeded, provider: SandboxProvider) -> None:
    """Five admins press Make default on five cards at the same moment: one change reaches the provider, the
    others are told to try again, and the rows agree with the provider."""
    added = [seeded.add_card(provider, number) for number in
             (VISA, MASTERCARD, OTHER_VISA, "4000002760003184", "5200828282828210")]
    held = HeldProvider(seeded.engine, "set_default_payment_method")
    start = threading.Barrier(len(added))
    outcomes: queue.Queue[object] = queue.Queue()

    def press(card: PaymentMethodView) -> None:
        start.wait(10)
        try:
            outcomes.put(make_default(seeded.engine, held, actor=seeded.actor, payment_method_id=card.id,
                                      today=TODAY))
        except Exception as exc:  # noqa: BLE001 (handed to the test)
            outcomes.put(exc)

    threads = [threading.Thread(target=press, args=(card,)) for card in added]
    for thread in threads:
        thread.start()
    try:
        assert held.entered.wait(30)
        refused = [outcomes.get(timeout=30) for _ in range(len(added) - 1)]  # before the winner is let go
    finally:
        held.release.set()
        for thread in threads:
            thread.join(30)
    assert all(isinstance(exc, ChangeUnderWay) for exc in refused), refused
    [winner] = [outcomes.get_nowait()]
    assert isinstance(winner, PaymentMethodView) and winner.is_default
    assert [last4 for last4, default in cards(seeded) if default] == [winner.last4]
    assert provider_default(seeded) == provider_id(seeded, winner)


def test_a_claim_left_by_a_crash_is_taken_over(seeded: Seeded, provider: SandboxProvider) -> None:
    seeded.add_card(provider)
    master = seeded.add_card(provider, MASTERCARD)
    with session_scope(seeded.engine) as session:
        session.add(PaymentMethodChange(account_id=seeded.actor.account_id, payment_method_id=master.id,
                                        action="remove",
                                        started_at=datetime.now(UTC) - payment_methods.CHANGE_STALE_AFTER
                                        - timedelta(minutes=1)))
    make_default(seeded.engine, provider, actor=seeded.actor, payment_method_id=master.id, today=TODAY)
    assert cards(seeded) == [("4444", True), ("4242", False)]
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(PaymentMethodChange)).all() == []


def test_the_same_card_is_not_saved_twice(seeded: Seeded, provider: SandboxProvider) -> None:
    """The demo account showed four identical "Visa ending in 0002" cards: brand, last 4 and expiry (the
    sandbox's fingerprint) name one card."""
    first = seeded.add_card(provider, "4000000000000002")
    with pytest.raises(DomainError) as info:
        seeded.add_card(provider, "4000000000000002")
    assert info.value.message == "Visa ending in 0002, expires 12/34, is already saved."
    assert seeded.add_card(provider, "4000000000000002", expiry="11/34").id != first.id  # a reissued card
    with session_scope(seeded.engine, write=False) as session:
        assert len(list_payment_methods(session, account_id=seeded.actor.account_id, today=TODAY)) == 2
        # The copy the sandbox saved was detached again: it cannot be charged.
        assert len(session.exec(select(SandboxPaymentMethod).where(
            SandboxPaymentMethod.customer_id.is_not(None))).all()) == 2


def test_the_same_card_saved_twice_at_once_is_kept_once(seeded: Seeded, provider: SandboxProvider) -> None:
    """Two saves at the same moment both find no copy: the unique index decides (run it with DB=postgres)."""
    from tests.support.concurrency import run_at_once

    outcomes: list[str] = []

    def save(_: int) -> None:
        try:
            outcomes.append(seeded.add_card(provider, "4000000000000002").label)
        except DomainError as exc:
            outcomes.append(exc.message)

    run_at_once(2, save)
    assert sorted(outcomes) == ["Visa ending in 0002, expires 12/34",
                                "Visa ending in 0002, expires 12/34, is already saved."]
    with session_scope(seeded.engine, write=False) as session:
        assert len(list_payment_methods(session, account_id=seeded.actor.account_id, today=TODAY)) == 1
