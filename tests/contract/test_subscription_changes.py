"""The life of a subscription after the purchase, on both providers: cancelling at period end and taking it back,
changes that wait for the next renewal, renewals charged by the portal (the sandbox) or by the provider itself
(Stripe).

localstripe makes no invoice for a change of seats (it prorates nothing at once), so changes charged at once
(`change_subscription`) run on the sandbox here; the Stripe provider's requests for them, its decline path and its
preview are checked in test_stripe_requests.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from cf_portal.payments.provider import (
    DECLINES,
    CardDeclined,
    ChargeFigures,
    InvoiceLineData,
    NotSupported,
    PaymentError,
    PaymentProvider,
)
from cf_portal.payments.sandbox import SandboxProvider
from tests.contract.conftest import subscribe
from tests.contract.test_provider_contract import add, new_customer
from tests.unit.conftest import NOW, TODAY, Seeded


def figures(total: int, *, quantity: int = 2, description: str = "Sales team · 2 more seats") -> ChargeFigures:
    return ChargeFigures(currency="usd", subtotal=total, discount=0,
                         lines=(InvoiceLineData(description=description, quantity=quantity,
                                                unit_amount=total // quantity, amount=total),))


def test_cancel_at_period_end_keeps_the_subscription_until_then_and_can_be_taken_back(
        provider: PaymentProvider, provider_store, seeded: Seeded) -> None:  # noqa: ANN001
    customer = new_customer(provider)
    sub = subscribe(provider, seeded, customer, add(provider, customer), "sub-cancel-later").provider_id
    provider.set_cancel_at_period_end(subscription_id=sub, cancel=True)
    assert provider_store.cancels_at_period_end(sub) is True
    assert provider.get_subscription(subscription_id=sub).status == "active"  # until its period ends
    provider.set_cancel_at_period_end(subscription_id=sub, cancel=True)  # again: no harm
    provider.set_cancel_at_period_end(subscription_id=sub, cancel=False)  # resumed
    assert provider_store.cancels_at_period_end(sub) is False
    assert provider.get_subscription(subscription_id=sub).status == "active"
    with pytest.raises(PaymentError) as info:
        provider.set_cancel_at_period_end(subscription_id="sub_missing0000", cancel=True)
    assert info.value.code == "resource_missing"


def test_a_change_for_the_next_renewal_shows_at_once_and_charges_nothing_now(
        provider: PaymentProvider, seeded: Seeded) -> None:
    customer = new_customer(provider)
    first = subscribe(provider, seeded, customer, add(provider, customer), "sub-fewer", quantity=3)
    sub = first.provider_id
    cheaper = seeded.plans["awareness-starter"]
    provider.schedule_change(subscription_id=sub, plan_code=cheaper.code, unit_amount=cheaper.unit_amount,
                             currency=cheaper.currency, quantity=2)
    now = provider.get_subscription(subscription_id=sub)
    assert (now.status, now.quantity) == ("active", 2)
    business = seeded.plans["awareness-business"]  # taken back: the terms it had
    provider.schedule_change(subscription_id=sub, plan_code=business.code, unit_amount=business.unit_amount,
                             currency=business.currency, quantity=3)
    assert provider.get_subscription(subscription_id=sub).quantity == 3
    assert [i.provider_id for i in provider.list_invoices(customer_id=customer)] == [
        first.latest_invoice.provider_id]  # nothing charged or refunded now
    with pytest.raises(PaymentError) as info:
        provider.schedule_change(subscription_id="sub_missing0000", plan_code=cheaper.code,
                                 unit_amount=cheaper.unit_amount, currency=cheaper.currency, quantity=2)
    assert info.value.code == "resource_missing"


def test_a_period_is_charged_once_by_the_portal_or_left_to_the_provider(provider: PaymentProvider,
                                                                        seeded: Seeded) -> None:
    customer = new_customer(provider)
    sub = subscribe(provider, seeded, customer, add(provider, customer), "sub-renew", quantity=3).provider_id
    renewal = figures(5700, quantity=3, description="Sales team · 3 × Business")
    if provider.renews_by_itself:  # Stripe charges each period itself and tells by webhook
        with pytest.raises(NotSupported):
            provider.charge_renewal(subscription_id=sub, period_index=1, charge=renewal, idempotency_key="renew-1")
        assert len(provider.list_invoices(customer_id=customer)) == 1
        return
    charged = provider.charge_renewal(subscription_id=sub, period_index=1, charge=renewal, idempotency_key="renew-1")
    again = provider.charge_renewal(subscription_id=sub, period_index=1, charge=renewal, idempotency_key="renew-1")
    assert again == charged and (charged.status, charged.total) == ("paid", 5700)
    assert [i.provider_id for i in provider.list_invoices(customer_id=customer)][1:] == [charged.provider_id]


# --- changes charged at once, on the sandbox (see the module's docstring) -------------------------------------

@pytest.fixture
def sandbox(engine: sa.Engine) -> SandboxProvider:
    return SandboxProvider(engine, today=lambda: TODAY)


def test_sandbox_a_declined_change_changes_nothing_and_a_paid_one_charges_the_portals_figures(
        sandbox: SandboxProvider, seeded: Seeded) -> None:
    customer = new_customer(sandbox)
    good = add(sandbox, customer)
    sub = subscribe(sandbox, seeded, customer, good, "sub-more", quantity=3).provider_id
    refusing = add(sandbox, customer, "4000000000000341", default=False)  # saved; every charge declined
    sandbox.set_subscription_payment_method(subscription_id=sub, payment_method_id=refusing)
    plan = seeded.plans["awareness-business"]
    more = figures(2533)

    def change(key: str):  # noqa: ANN202
        return sandbox.change_subscription(subscription_id=sub, plan_code=plan.code, unit_amount=plan.unit_amount,
                                           currency=plan.currency, quantity=5, proration_date=NOW + timedelta(days=9),
                                           charge=more, idempotency_key=key)

    with pytest.raises(CardDeclined) as info:
        change("change-1")
    code, decline_code, message = DECLINES["card_declined"]
    assert (info.value.code, info.value.decline_code, info.value.message) == (code, decline_code, message)
    assert sandbox.get_subscription(subscription_id=sub).quantity == 3
    assert len(sandbox.list_invoices(customer_id=customer)) == 1

    sandbox.set_subscription_payment_method(subscription_id=sub, payment_method_id=good)
    invoice = change("change-2")
    assert invoice is not None and (invoice.status, invoice.total, invoice.lines) == ("paid", more.total, more.lines)
    assert sandbox.get_subscription(subscription_id=sub).quantity == 5
    assert change("change-2") == invoice  # the same key: the same invoice, charged once
    assert [i.provider_id for i in sandbox.list_invoices(customer_id=customer)][1:] == [invoice.provider_id]


def test_sandbox_a_change_with_nothing_due_charges_nothing(sandbox: SandboxProvider, seeded: Seeded) -> None:
    customer = new_customer(sandbox)
    sub = subscribe(sandbox, seeded, customer, add(sandbox, customer), "sub-same", quantity=3).provider_id
    plan = seeded.plans["awareness-business"]
    assert sandbox.change_subscription(subscription_id=sub, plan_code=plan.code, unit_amount=plan.unit_amount,
                                       currency=plan.currency, quantity=4, proration_date=NOW, charge=None,
                                       idempotency_key="change-free") is None
    assert sandbox.get_subscription(subscription_id=sub).quantity == 4
    assert len(sandbox.list_invoices(customer_id=customer)) == 1
