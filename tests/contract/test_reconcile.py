"""Reconcile on each provider: a license whose subscription changed at the provider (quantity, status) or
vanished is reported, and repaired on request; a license that matches is not mentioned."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, AuditEvent, License, PaymentMethod
from cf_portal.payments.provider import PaymentProvider
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.payments.sandbox_tables import SandboxSubscription
from cf_portal.services.payment_methods import list_payment_methods
from cf_portal.services.provider_sync import reconcile
from cf_portal.services.purchase import PurchaseRequest, create_license
from tests.unit.conftest import NOW, TODAY, Seeded


def buy(provider: PaymentProvider, seeded: Seeded, name: str, quantity: int = 5) -> License:
    with session_scope(seeded.engine, write=False) as session:  # one card (the same card is saved once)
        cards = list_payment_methods(session, account_id=seeded.actor.account_id, today=TODAY)
    pm = cards[0] if cards else seeded.add_card(provider)
    plan = seeded.plans["awareness-business"]
    result = create_license(seeded.engine, provider, actor=seeded.actor, now=NOW, request=PurchaseRequest(
        reference_name=name, plan_id=plan.id, quantity=quantity, payment_method_id=pm.id,
        expected_total=plan.unit_amount * quantity, idempotency_key=uuid.uuid4().hex))
    with session_scope(seeded.engine, write=False) as session:
        return session.get(License, result.license_id)


def change_at_provider(provider: PaymentProvider, seeded: Seeded, subscription_id: str, *, quantity: int,
                       request: pytest.FixtureRequest) -> None:
    """Someone changed the subscription at the provider (its dashboard, say)."""
    if isinstance(provider, SandboxProvider):
        with session_scope(seeded.engine) as session:
            session.get(SandboxSubscription, subscription_id).quantity = quantity
    else:
        admin = request.getfixturevalue("stripe_admin")
        plan = admin.v1.subscriptions.retrieve(subscription_id).to_dict()["items"]["data"][0]["plan"]["id"]
        # localstripe changes a quantity through the items, naming the plan (Stripe would name the item).
        admin.v1.subscriptions.update(subscription_id, params={"items": [{"plan": plan, "quantity": quantity}]})


def licenses(seeded: Seeded) -> dict[str, License]:
    with session_scope(seeded.engine, write=False) as session:
        return {lic.reference_name: lic for lic in session.exec(select(License)).all()}


def test_reconcile_reports_drift_and_repairs_it(provider: PaymentProvider, seeded: Seeded,
                                                request: pytest.FixtureRequest) -> None:
    kept = buy(provider, seeded, "Matches")
    more = buy(provider, seeded, "Quantity changed")
    gone = buy(provider, seeded, "Cancelled there")
    change_at_provider(provider, seeded, more.provider_subscription_id, quantity=8, request=request)
    provider.cancel_subscription(subscription_id=gone.provider_subscription_id)

    report = reconcile(seeded.engine, provider, repair=False, now=NOW)
    assert sorted(d.reference_name for d in report) == ["Cancelled there", "Quantity changed"]
    by_name = {d.reference_name: d.problem for d in report}
    assert by_name["Quantity changed"] == "5 licenses here, 8 at the provider"
    assert by_name["Cancelled there"].startswith("status is active here, canceled at the provider")
    assert licenses(seeded)["Quantity changed"].quantity == 5  # only reported

    repaired = reconcile(seeded.engine, provider, repair=True, now=NOW)
    assert all(d.repaired for d in repaired) and len(repaired) == 2
    after = licenses(seeded)
    assert (after["Quantity changed"].quantity, after["Cancelled there"].status) == (8, "canceled")
    assert after[kept.reference_name].quantity == 5
    assert reconcile(seeded.engine, provider, repair=False, now=NOW) == []
    with session_scope(seeded.engine, write=False) as session:
        assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "license.reconciled")).all()) == 2


def test_a_subscription_missing_at_the_provider_is_reported(provider: PaymentProvider, seeded: Seeded) -> None:
    lic = buy(provider, seeded, "Vanished")
    with session_scope(seeded.engine) as session:
        session.get(License, lic.id).provider_subscription_id = "sub_unknown_to_the_provider"
    report = reconcile(seeded.engine, provider, repair=False, now=NOW)
    assert [d.problem for d in report][0] == "its subscription sub_unknown_to_the_provider is missing at the provider"
    # ... and the subscription it really had now belongs to no license: reported, never cancelled by reconcile.
    assert [d.problem.split(" (")[0] for d in report][1:] == [f"subscription {lic.provider_subscription_id}"]
    reconcile(seeded.engine, provider, repair=True, now=NOW)
    assert licenses(seeded)["Vanished"].status == "canceled"
    assert [d.license_id for d in reconcile(seeded.engine, provider, repair=False, now=NOW)] == [0]
    assert provider.get_subscription(subscription_id=lic.provider_subscription_id).status == "active"


def test_a_live_subscription_that_no_license_has_is_reported(provider: PaymentProvider, seeded: Seeded) -> None:
    kept = buy(provider, seeded, "Kept")
    with session_scope(seeded.engine, write=False) as session:
        customer = session.get(Account, seeded.actor.account_id).provider_customer_id
        card = session.get(PaymentMethod, kept.payment_method_id).provider_id
    plan = seeded.plans["awareness-business"]

    def subscription(license_id: str) -> str:  # made at the provider for a license the portal does not have
        return provider.create_subscription(
            customer_id=customer, payment_method_id=card, product_name="Product", plan_code=plan.code,
            unit_amount=plan.unit_amount, currency=plan.currency, quantity=2, discount=None, description="Lost",
            metadata={"account_id": str(seeded.actor.account_id), "license_id": license_id},
            idempotency_key=f"orphan-{license_id}").provider_id

    orphan, ended = subscription("998"), subscription("999")
    provider.cancel_subscription(subscription_id=ended)
    [drift] = reconcile(seeded.engine, provider, repair=True, now=NOW)
    assert (drift.license_id, drift.account_id, drift.repaired) == (0, seeded.actor.account_id, False)
    assert drift.problem.startswith(f"subscription {orphan} (active, 2 licenses, made for license 998) has no "
                                    "license here")
    assert str(drift).startswith(f"account {seeded.actor.account_id}: subscription {orphan}")
    assert provider.get_subscription(subscription_id=orphan).status == "active"  # a person decides


def test_repair_never_leaves_fewer_seats_than_held(provider: PaymentProvider, seeded: Seeded,
                                                   request: pytest.FixtureRequest) -> None:
    lic = buy(provider, seeded, "Busy", quantity=5)
    with session_scope(seeded.engine) as session:
        session.get(License, lic.id).seats_assigned = 4
    change_at_provider(provider, seeded, lic.provider_subscription_id, quantity=2, request=request)
    reconcile(seeded.engine, provider, repair=True, now=NOW)
    assert licenses(seeded)["Busy"].quantity == 4


def test_a_customer_the_provider_will_not_list_does_not_stop_the_report(provider: PaymentProvider,
                                                                       seeded: Seeded) -> None:
    buy(provider, seeded, "Listed")
    other = seeded.other_actor()
    with session_scope(seeded.engine) as session:
        session.get(Account, other.account_id).provider_customer_id = "cus_unknown_to_the_provider"
    lost = buy(provider, seeded, "Lost")
    with session_scope(seeded.engine) as session:
        session.get(License, lost.id).provider_subscription_id = None
    problems = [(d.account_id, d.problem) for d in reconcile(seeded.engine, provider, repair=False, now=NOW)]
    assert (lost.account_id, "has no subscription at the provider") in problems
    assert any(account == other.account_id and "could not be listed" in problem for account, problem in problems) \
        or provider.name == "sandbox"  # the sandbox lists an unknown customer as having none
