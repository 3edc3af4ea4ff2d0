"""The payment-provider interface. The sandbox and Stripe providers both implement it.

Amounts are integer minor units. Card numbers pass through `add_card` (sandbox only: with Stripe the
browser sends them to Stripe directly) and are never stored, logged or returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class PaymentError(Exception):
    """The provider refused or failed. `message` is written for the customer."""

    def __init__(self, code: str, message: str, *, decline_code: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.decline_code = decline_code
        self.field = field


# The customer's words for each kind of decline, the same with every provider: (code, decline code, message).
DECLINES = {
    "card_declined": ("card_declined", "generic_decline", "Your card was declined."),
    "insufficient_funds": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "expired_card": ("expired_card", None, "Your card has expired."),
}
PROCESSING_ERROR = "An error occurred while processing your card. Try again in a little bit."


class CardDeclined(PaymentError):
    pass


class ActionRequired(PaymentError):
    """The bank asks the customer to authenticate the first payment (3-D Secure). The subscription waits,
    incomplete (it charges nothing more and expires by itself after a day); the browser completes the payment
    with `client_secret` (meant for the browser only: never store or log it), then the purchase asks the
    provider again (`find_subscription`)."""

    def __init__(self, *, subscription_id: str, client_secret: str) -> None:
        super().__init__("requires_action", "Your bank asks you to confirm this payment.")
        self.subscription_id = subscription_id
        self.client_secret = client_secret


class ProviderUnavailable(PaymentError):
    """A timeout, a rate limit or an outage: nothing was charged, and trying again may work."""


class NotSupported(PaymentError):
    """This provider has no such step (an optional capability it does not have: see `PaymentProvider`)."""

    def __init__(self, provider: str, step: str) -> None:
        super().__init__("not_supported", f"The {provider} payment provider has no {step}.")


@dataclass(frozen=True)
class CardDetails:
    """What a person types into the card form. Lives only for the duration of one call."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)


@dataclass(frozen=True)
class SavedCard:
    provider_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    # The same for the same card number at this provider (Stripe's card fingerprint), whoever saved it.
    fingerprint: str = ""


@dataclass(frozen=True)
class CardSetup:
    """A provider's SetupIntent (Stripe): the card form in the browser confirms it with the typed card."""

    provider_id: str
    customer_id: str
    status: str  # Stripe's words: requires_payment_method (waits for a card), succeeded, canceled, ...
    client_secret: str = field(repr=False)  # for the browser only: never store or log it
    payment_method_id: str | None = None  # the confirmed card


@dataclass(frozen=True)
class SubscriptionDiscount:
    percent_off: int | None
    amount_off: int | None
    months: int | None  # None: forever
    coupon_code: str


@dataclass(frozen=True)
class InvoiceLineData:
    description: str
    quantity: int
    unit_amount: int
    amount: int


@dataclass(frozen=True)
class InvoiceData:
    provider_id: str
    number: str
    status: str
    currency: str
    subtotal: int
    discount: int
    total: int
    lines: tuple[InvoiceLineData, ...]


@dataclass(frozen=True)
class ChargeFigures:
    """An invoice the portal worked out (`services.pricing`) for a provider that charges the portal's figures."""

    currency: str
    subtotal: int
    discount: int
    lines: tuple[InvoiceLineData, ...]

    @property
    def total(self) -> int:
        return self.subtotal - self.discount


@dataclass(frozen=True)
class SubscriptionData:
    provider_id: str
    status: str
    latest_invoice: InvoiceData


class EventKind(StrEnum):
    """What a provider's webhook event says happened, in the portal's words."""

    INVOICE_PAID = "invoice_paid"
    INVOICE_PAYMENT_FAILED = "invoice_payment_failed"
    SUBSCRIPTION_UPDATED = "subscription_updated"
    SUBSCRIPTION_DELETED = "subscription_deleted"


@dataclass(frozen=True)
class PaymentEvent:
    """One verified webhook event of a provider, read from the provider's own shape (`stripe_webhook.py`)."""

    provider: str
    event_id: str
    type: str  # the provider's own name for it, kept on its row
    kind: EventKind | None  # None: an event the portal does not use
    occurred_at: datetime | None  # None: the event does not say (its time of receipt stands)
    subscription_id: str | None = None
    subscription_status: str | None = None  # subscription_updated: in `SubscriptionState.status`'s words
    quantity: int | None = None  # subscription_updated: the seats the subscription is for, when it says
    invoice: InvoiceData | None = None  # invoice_*: the invoice; its currency "" when the event does not say
    # invoice_*: why the invoice was made, in the provider's words (Stripe: subscription_create, subscription_cycle
    # for a renewal, subscription_update for a change charged at once, manual, ...); None when it does not say.
    billing_reason: str | None = None
    # invoice_*: the end of the period the invoice's subscription line covers; subscription_updated: the end of the
    # subscription's current period. None when the event does not say.
    period_end: datetime | None = None
    cancel_at_period_end: bool | None = None  # subscription_updated: ends when its period ends, when it says


# A provider's subscription statuses that charge nothing more.
ENDED = ("canceled", "incomplete_expired")


@dataclass(frozen=True)
class SubscriptionState:
    """What the provider says about a subscription now (for reconcile)."""

    provider_id: str
    status: str  # the provider's words: active, past_due, unpaid, canceled, incomplete, …
    quantity: int
    license_id: str | None = None  # the portal license it was made for (its metadata)


@dataclass(frozen=True)
class CatalogPlan:
    product_code: str
    product_name: str
    plan_code: str
    plan_name: str
    unit_amount: int
    currency: str


@dataclass(frozen=True)
class CatalogCoupon:
    code: str
    percent_off: int | None
    amount_off: int | None
    currency: str | None
    duration: str  # once | repeating | forever
    duration_months: int | None
    max_redemptions: int | None
    redeem_by: int | None  # a Unix time
    product_codes: tuple[str, ...]


class PaymentProvider(Protocol):
    """What every provider does, plus two optional capabilities, each announced by a flag; a provider without
    one raises NotSupported from its methods:

    - `collects_cards_in_browser`: the card form is the provider's own, in the browser (Stripe's Payment
      Element): `create_setup_intent`, `get_setup_intent`, `attach_confirmed_payment_method`. Without it, the
      server's card form hands the typed card to `add_card` (the sandbox).
    - `previews_invoices`: the provider prices with its own catalog and can say beforehand what it will charge
      (`preview_first_invoice`, `preview_change`). Without it, the provider charges the portal's figures as given.
    - `renews_by_itself`: the provider charges each new period of a subscription on its own and tells the portal
      by webhook (Stripe). Without it, the portal's `bill-due` asks it to (`charge_renewal`: the sandbox).
    - `hosts_invoice_documents`: the provider keeps a PDF of each invoice of its own (Stripe's `invoice_pdf`),
      which `invoice_document_url` finds. Without it, the portal's own PDF is the only one.
    """

    name: str
    collects_cards_in_browser: bool
    previews_invoices: bool
    renews_by_itself: bool
    hosts_invoice_documents: bool

    def ensure_customer(self, *, account_id: int, account_name: str, customer_id: str | None) -> str:
        """The provider's customer of this account, created on first need."""

    def add_card(self, *, customer_id: str, card: CardDetails, make_default: bool,
                 idempotency_key: str) -> SavedCard: ...

    def list_payment_methods(self, *, customer_id: str) -> list[SavedCard]: ...

    def create_setup_intent(self, *, customer_id: str, idempotency_key: str) -> CardSetup:
        """`collects_cards_in_browser` only: a setup for the browser's card form to confirm with a card."""

    def get_setup_intent(self, *, setup_intent_id: str) -> CardSetup | None:
        """`collects_cards_in_browser` only: the setup as the provider has it now; None when it does not know it."""

    def attach_confirmed_payment_method(self, *, customer_id: str, setup_intent_id: str, payment_method_id: str,
                                        make_default: bool) -> SavedCard:
        """`collects_cards_in_browser` only: keep the card that this customer's own setup was confirmed with;
        any other card is refused (PaymentError "setup_unconfirmed" or "resource_missing")."""

    def set_default_payment_method(self, *, customer_id: str, payment_method_id: str) -> None:
        """Make one of the customer's cards their default (raise PaymentError "resource_missing" for a card
        the customer does not have)."""

    def remove_payment_method(self, *, customer_id: str, payment_method_id: str) -> None:
        """Detach the card from the customer: it can no longer be charged. Subscriptions that name it must be
        moved to another card first (`set_subscription_payment_method`)."""

    def create_subscription(
        self,
        *,
        customer_id: str,
        payment_method_id: str,
        product_name: str,
        plan_code: str,
        unit_amount: int,
        currency: str,
        quantity: int,
        discount: SubscriptionDiscount | None,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> SubscriptionData:
        """Start a monthly subscription and charge its first month; raise PaymentError if that fails
        (then nothing stays charged or active). The same idempotency key gives the same result."""

    def set_subscription_payment_method(self, *, subscription_id: str, payment_method_id: str) -> None:
        """Charge the subscription's next invoices to this card, one of its customer's (else PaymentError
        "resource_missing", as for a subscription the provider does not know). Setting the card it already
        has changes nothing."""

    def find_subscription(self, *, customer_id: str, license_id: str, purchase_key: str) -> SubscriptionData | None:
        """The subscription an earlier attempt made for this license (its metadata `license_id` and
        `purchase_key`), settled: paid → its data; waiting for the customer to authenticate → ActionRequired;
        not known yet, or not readable → ProviderUnavailable; unpaid → cancelled, and the PaymentError of why.
        None when no attempt made one."""

    def cancel_subscription(self, *, subscription_id: str) -> None: ...

    def charge_renewal(self, *, subscription_id: str, period_index: int, charge: ChargeFigures,
                       idempotency_key: str) -> InvoiceData:
        """Without `renews_by_itself` only: charge period `period_index` of the subscription to its card, with the
        portal's figures; raise PaymentError (CardDeclined, …) when the card refuses. The same key gives the
        same result, so one period is charged once."""

    def change_subscription(self, *, subscription_id: str, plan_code: str, unit_amount: int, currency: str,
                            quantity: int, proration_date: datetime, charge: ChargeFigures | None,
                            idempotency_key: str) -> InvoiceData | None:
        """Change the subscription now (more seats, a dearer plan) and charge the rest of the period at once:
        `charge` is the portal's prorated figures (the sandbox charges them as given; Stripe prorates by itself as
        of `proration_date` and must agree). Paid or nothing: when the card refuses, PaymentError and the
        subscription is as it was. Returns the invoice of the charge (None when nothing was due)."""

    def preview_change(self, *, subscription_id: str, plan_code: str, unit_amount: int, currency: str,
                       quantity: int, proration_date: datetime) -> int:
        """`previews_invoices` only: what `change_subscription` would charge now, in minor units."""

    def schedule_change(self, *, subscription_id: str, plan_code: str, unit_amount: int, currency: str,
                        quantity: int) -> None:
        """Bill this plan and quantity from the next renewal on, with nothing charged or refunded now (fewer
        seats, a cheaper plan, or taking such a change back)."""

    def set_cancel_at_period_end(self, *, subscription_id: str, cancel: bool) -> None:
        """End the subscription when its period ends (True), or keep renewing it (False)."""

    def list_invoices(self, *, customer_id: str) -> list[InvoiceData]: ...

    def invoice_document_url(self, *, invoice_id: str) -> str | None:
        """`hosts_invoice_documents` only: the address of the provider's own PDF of this invoice (asked each time:
        Stripe's links are not kept, they may change); None when the provider has no such invoice or no PDF
        of it (yet)."""

    def get_subscription(self, *, subscription_id: str) -> SubscriptionState | None:
        """The subscription as the provider has it now; None when the provider does not know it."""

    def list_subscriptions(self, *, customer_id: str) -> list[SubscriptionState]:
        """Every subscription of the customer, ended ones included (for reconcile)."""

    def preview_first_invoice(self, *, customer_id: str, plan_code: str, unit_amount: int, currency: str,
                              quantity: int, coupon_code: str | None) -> int:
        """`previews_invoices` only: the provider's own total of the first month's invoice, in minor units."""

    def sync_catalog(self, *, plans: list[CatalogPlan], coupons: list[CatalogCoupon]) -> list[str]:
        """Make the provider's catalog match the portal's (safe to re-run); returns what was done, line by line."""
