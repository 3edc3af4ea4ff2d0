"""Contract-test fixtures: every provider test runs on the sandbox provider (on the test database) and on
the Stripe provider against a throwaway localstripe (one per test session, emptied before each test)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import stripe

from cf_portal.db import session_scope
from cf_portal.models import Product
from cf_portal.payments.provider import PaymentError, PaymentProvider, SubscriptionData, SubscriptionDiscount
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.payments.sandbox_tables import SandboxPaymentMethod, SandboxSubscription
from cf_portal.payments.stripe_provider import StripeProvider
from tests.support.localstripe_server import running_localstripe
from tests.unit import conftest as unit_fixtures
from tests.unit.conftest import TODAY, Seeded

ROOT = Path(__file__).resolve().parent.parent.parent
LOCALSTRIPE_KEY = "sk_test_contract"

# The unit tests' seeded database (the demo catalog, an owner of the demo account), here too.
seeded = unit_fixtures.seeded


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """localstripe on 127.0.0.1 and a free port, in memory only, for the whole test session."""
    with running_localstripe() as url:
        yield url


@pytest.fixture
def localstripe(localstripe_url: str) -> str:
    """The URL of a localstripe with no data."""
    request = urllib.request.Request(f"{localstripe_url}/_config/data", method="DELETE")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    return localstripe_url


@pytest.fixture
def stripe_admin(localstripe: str) -> stripe.StripeClient:
    """A plain client on localstripe, to set it up and to look at what the provider left there."""
    return stripe.StripeClient(LOCALSTRIPE_KEY, base_addresses={"api": localstripe}, max_network_retries=0)


class LocalstripeProvider(StripeProvider):
    """The Stripe provider as localstripe can serve it; only the subscription request differs.

    localstripe predates Prices and refuses (400) the newer subscription parameters, so here:
    - the item names a Plan (the fixture below makes one per portal plan, with the plan code as id) instead of
      the Price found by lookup key;
    - no `description`, `default_payment_method` or `discounts`; localstripe charges the customer's default
      payment method, so the chosen card is made the default first (also when a subscription's card is switched).
    - subscription updates without `proration_behavior` or `payment_behavior`: localstripe prorates nothing now,
      so only the changes that charge nothing now (`schedule_change`, `set_cancel_at_period_end`) run here.
    The production request (Price lookup, description, payment method, coupon, idempotency keys) is checked
    request by request in test_stripe_requests.py.
    """

    previews_invoices = False  # localstripe has no invoice preview (tests/contract/test_stripe_catalog.py)

    def _subscription_item(self, *, plan_code: str, unit_amount: int, currency: str, quantity: int) -> dict[str, Any]:
        return {"plan": plan_code, "quantity": quantity}

    def _subscription_params(self, **kwargs: Any) -> dict[str, Any]:
        params = super()._subscription_params(**kwargs)
        if params.pop("discounts", None):
            raise AssertionError("localstripe cannot apply coupons to subscriptions: test them in "
                                 "test_stripe_requests.py")
        del params["description"], params["default_payment_method"]
        return params

    def create_subscription(self, *, customer_id: str, payment_method_id: str,
                            **kwargs: Any) -> SubscriptionData:
        self.set_default_payment_method(customer_id=customer_id, payment_method_id=payment_method_id)
        return super().create_subscription(customer_id=customer_id, payment_method_id=payment_method_id, **kwargs)

    def _update_subscription(self, subscription_id: str, params: dict[str, Any],
                             options: dict[str, Any] | None = None) -> Any:  # noqa: ANN401
        """localstripe's subscription update knows neither `proration_behavior` nor `payment_behavior` (it makes no
        invoice for a change of quantity or of a plan of the same interval: it prorates nothing now, as
        `proration_behavior=none` does). Both are checked in test_stripe_requests.py."""
        if params.pop("payment_behavior", None) or params.get("proration_behavior") not in (None, "none"):
            raise AssertionError("localstripe cannot charge a change at once: test it in test_stripe_requests.py")
        params.pop("proration_behavior", None)
        return super()._update_subscription(subscription_id, params, options)

    def set_subscription_payment_method(self, *, subscription_id: str, payment_method_id: str) -> None:
        """localstripe fails (500) on `default_payment_method` in a subscription update and keeps no card per
        subscription (nor metadata changes): it charges the customer's default card. So here the checks Stripe
        makes are made by hand (the subscription exists, the card is its customer's) and the card becomes the
        customer's default, which is what localstripe charges. The real request and Stripe's refusals are checked
        in test_stripe_requests.py."""
        missing = "No such subscription or payment method."
        subscription = self._call(self._client.v1.subscriptions.retrieve, subscription_id, missing=missing)
        card = self._call(self._client.v1.payment_methods.retrieve, payment_method_id, missing=missing)
        if card.get("customer") != subscription["customer"]:
            raise PaymentError("resource_missing", missing)
        self._make_default(subscription["customer"], payment_method_id)


@pytest.fixture
def localstripe_provider(localstripe: str, stripe_admin: stripe.StripeClient, seeded: Seeded) -> LocalstripeProvider:
    """The Stripe provider on an empty localstripe that knows the portal's plans."""
    with session_scope(seeded.engine, write=False) as session:
        products = {product.id: product.name for product in session.exec(sa.select(Product)).scalars()}
    for plan in seeded.plans.values():
        stripe_admin.v1.plans.create(params={
            "id": plan.code, "amount": plan.unit_amount, "currency": plan.currency, "interval": "month",
            "product": {"name": f"{products[plan.product_id]} {plan.name}"},
        })
    return LocalstripeProvider(LOCALSTRIPE_KEY, api_base=localstripe, max_network_retries=0)


@pytest.fixture(params=["sandbox", "stripe"])
def provider(request: pytest.FixtureRequest, engine: sa.Engine) -> PaymentProvider:
    """Each provider in turn: the contract holds for both."""
    if request.param == "sandbox":
        return SandboxProvider(engine, today=lambda: TODAY)
    return request.getfixturevalue("localstripe_provider")


def subscribe(provider: PaymentProvider, seeded: Seeded, customer: str, pm: str, key: str, *,
              plan: str = "awareness-business", quantity: int = 3, description: str = "Sales team",
              discount: SubscriptionDiscount | None = None) -> SubscriptionData:
    """One license's subscription, as the purchase asks for it."""
    row = seeded.plans[plan]
    return provider.create_subscription(
        customer_id=customer, payment_method_id=pm, product_name=f"Product {row.name}", plan_code=row.code,
        unit_amount=row.unit_amount, currency=row.currency, quantity=quantity, discount=discount,
        description=description, metadata={"account_id": str(seeded.actor.account_id), "license_id": "1",
                                            "purchase_key": key},
        idempotency_key=key,
    )


class SandboxStore:
    """What the sandbox keeps, read from its tables."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def default_card(self, customer: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(SandboxPaymentMethod.id).where(
                SandboxPaymentMethod.customer_id == customer, SandboxPaymentMethod.is_default)).scalar()

    def subscription_statuses(self, customer: str) -> list[str]:
        with self._engine.connect() as conn:
            return list(conn.execute(sa.select(SandboxSubscription.status)
                                     .where(SandboxSubscription.customer_id == customer)).scalars())

    def subscription_card(self, subscription: str) -> str:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(SandboxSubscription.payment_method_id)
                                .where(SandboxSubscription.id == subscription)).scalar_one()

    def cancels_at_period_end(self, subscription: str) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(sa.select(SandboxSubscription.cancel_at_period_end)
                                .where(SandboxSubscription.id == subscription)).scalar_one()


class LocalstripeStore:
    """What localstripe keeps, read through its API."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    def default_card(self, customer: str) -> str | None:
        return self._client.v1.customers.retrieve(customer).invoice_settings.default_payment_method

    def subscription_statuses(self, customer: str) -> list[str]:
        subscriptions = self._client.v1.subscriptions.list(params={"customer": customer, "status": "all"})
        return [sub.status for sub in subscriptions.data]

    def subscription_card(self, subscription: str) -> str:
        """The card localstripe charges the subscription to: its customer's default (see LocalstripeProvider)."""
        return self.default_card(self._client.v1.subscriptions.retrieve(subscription).customer)

    def cancels_at_period_end(self, subscription: str) -> bool:
        return self._client.v1.subscriptions.retrieve(subscription).cancel_at_period_end


@pytest.fixture
def provider_store(provider: PaymentProvider, engine: sa.Engine,
                   request: pytest.FixtureRequest) -> SandboxStore | LocalstripeStore:
    """The current provider's own store, to check what a call left there."""
    if provider.name == "sandbox":
        return SandboxStore(engine)
    return LocalstripeStore(request.getfixturevalue("stripe_admin"))
