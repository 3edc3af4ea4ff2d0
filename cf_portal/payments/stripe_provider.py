"""The Stripe payment provider: the `PaymentProvider` interface on Stripe's API, through stripe-python's
`StripeClient` (its pinned API version).

- One Stripe Customer per account (metadata `account_id`), created on first need.
- Cards: in production the browser sends the card to Stripe itself (a SetupIntent confirmed by the Payment
  Element: `create_setup_intent`, then `attach_confirmed_payment_method`); the server never sees a number.
  `add_card` (card numbers through the server) works with test keys only, for the test cards.
- Each license is one Subscription on the plan's Price, found by its lookup key (the plan code; the catalog
  sync creates the Prices), with the license's reference name as description and the coupon as the active
  promotion code of the same name (the catalog sync creates one per coupon), so that Stripe applies its own
  limits (expiry, redemptions) too. `payment_behavior=allow_incomplete`: a first payment that the bank wants
  authenticated (3-D Secure) leaves the subscription incomplete and raises ActionRequired; the browser
  completes it with Stripe.js, and the purchase then finds the subscription paid (`find_subscription`). A
  subscription whose first payment failed, or was not authenticated, is cancelled here, so nothing is left to
  charge later (Stripe also expires an incomplete subscription after 23 hours without charging).
- After the purchase Stripe renews each subscription by itself (`renews_by_itself`) and tells by webhook
  (`stripe_webhook.py`). More seats or a dearer plan (`change_subscription`) update the subscription's one item
  with `proration_behavior=always_invoice`, so that Stripe invoices the prorated rest of the period at once, as of
  the moment the portal priced it (`proration_date`; `preview_change` asks Stripe's figure beforehand), and with
  `payment_behavior=pending_if_incomplete`, so that the change applies only once that invoice is paid: an unpaid
  one leaves a pending update, discarded here (its invoice voided) before the refusal is raised. Fewer seats or
  a cheaper plan (`schedule_change`) update the item with `proration_behavior=none`: nothing is charged or
  refunded now, the next renewal bills the new terms. Cancel at period end, and resume, set
  `cancel_at_period_end`.
- Every POST that creates something carries an idempotency key derived from the caller's key, so a retry
  (ours, or stripe-python's own network retry) never charges twice.
- Errors become the interface's: declines → CardDeclined with the sandbox's customer messages; rate
  limits, timeouts, connection errors, 409 and 5xx → ProviderUnavailable (nothing charged, try again);
  anything else → PaymentError with a generic message, the details going to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import stripe

from cf_portal.payments.provider import (
    DECLINES,
    ENDED,
    PROCESSING_ERROR,
    ActionRequired,
    CardDeclined,
    CardDetails,
    CardSetup,
    CatalogCoupon,
    CatalogPlan,
    ChargeFigures,
    InvoiceData,
    InvoiceLineData,
    NotSupported,
    PaymentError,
    ProviderUnavailable,
    SavedCard,
    SubscriptionData,
    SubscriptionDiscount,
    SubscriptionState,
)

# The customer messages of the three declines are the sandbox's, so both providers say the same.

log = logging.getLogger(__name__)

UNAVAILABLE = "The payment provider did not answer in time. Please try again in a moment."
GENERIC = "The payment provider could not complete this request. Please try again later or contact support."
REQUIRES_ACTION = ("Your bank asked you to confirm this payment (3-D Secure) and it was not confirmed. "
                   "Try again, or use another card.")
INCOMPLETE = "The first payment could not be completed. Use another payment method or contact your bank."
PLAN_UNAVAILABLE = "This plan cannot be bought right now. Please try again later or contact support."
IDEMPOTENCY = "This request was already sent with different details. Reload the page and try again."
UNCONFIRMED_CARD = "This card was not confirmed in the card form. Open the form again and enter the card there."
COUPON_UNAVAILABLE = "This coupon code can't be used right now. Check it, or remove it to buy without a discount."
CHANGE_UNPAID = "The payment for this change could not be completed. Use another payment method or contact your bank."
NO_SUBSCRIPTION = "No such subscription."

# Stripe's codes for a payment that waits for the customer to authenticate (3-D Secure).
_REQUIRES_ACTION_CODES = {"authentication_required", "subscription_payment_intent_requires_action",
                          "invoice_payment_intent_requires_action", "payment_intent_authentication_failure"}
# The card form's field of a card error's `param`.
_FIELDS = {"number": "card_number", "exp_month": "expiry", "exp_year": "expiry", "cvc": "cvc"}


def card_failure(code: str | None, decline_code: str | None, param: str | None = None) -> PaymentError:
    """The interface's error for a Stripe card error (or a PaymentIntent's `last_payment_error`)."""
    if code in _REQUIRES_ACTION_CODES or decline_code == "authentication_required":
        return PaymentError("requires_action", REQUIRES_ACTION)
    if code == "processing_error":
        return PaymentError("processing_error", PROCESSING_ERROR)
    if decline_code == "insufficient_funds":
        behaviour = "insufficient_funds"
    elif "expired_card" in (code, decline_code):
        behaviour = "expired_card"
    else:
        behaviour = "card_declined"
    default_code, default_decline_code, message = DECLINES[behaviour]
    return CardDeclined(code or default_code, message, decline_code=decline_code or default_decline_code,
                        field=_FIELDS.get(param or ""))


def _payment_error(exc: stripe.StripeError, *, missing: str | None = None) -> PaymentError:
    """The interface's error for any error stripe-python raised."""
    if isinstance(exc, stripe.CardError):
        error = (exc.json_body or {}).get("error") or {}
        return card_failure(exc.code, error.get("decline_code"), exc.param)
    status = exc.http_status or 0
    if isinstance(exc, (stripe.RateLimitError, stripe.APIConnectionError)) or (
            isinstance(exc, stripe.APIError) and (status >= 500 or status == 409)):
        log.warning("Stripe unavailable: %s (HTTP %s, request %s)", type(exc).__name__, status or "-", exc.request_id)
        return ProviderUnavailable("provider_unavailable", UNAVAILABLE)
    if isinstance(exc, stripe.IdempotencyError):
        return PaymentError("idempotency_error", IDEMPOTENCY)
    if missing and isinstance(exc, stripe.InvalidRequestError) and _is_missing(exc):
        return PaymentError("resource_missing", missing)
    log.error("Stripe refused a request: %s %s (HTTP %s, request %s): %s", type(exc).__name__, exc.code, status,
              exc.request_id, exc.user_message)
    return PaymentError(exc.code or "provider_error", GENERIC)


def _unanswered(exc: PaymentError, what: str, ident: str) -> ProviderUnavailable:
    """A failed look-up says nothing about a payment: it never counts as a refusal (which would undo a purchase
    that may have been paid for), only as "ask again later"."""
    if isinstance(exc, ProviderUnavailable):
        return exc
    log.error("Stripe refused %s: %s (%s)", what % ident, exc.code, exc.message)
    return ProviderUnavailable(exc.code, UNAVAILABLE)


def _is_missing(exc: stripe.StripeError) -> bool:
    return exc.code == "resource_missing" or exc.http_status == 404


def _retrieved_or_none(retrieve, object_id: str) -> dict | None:  # noqa: ANN001
    """Stripe's object `object_id` as a dict, or None when Stripe has no such object; other failures as a
    PaymentError."""
    try:
        return retrieve(object_id).to_dict()
    except stripe.InvalidRequestError as exc:
        if not _is_missing(exc):
            raise _payment_error(exc) from exc
        return None
    except stripe.StripeError as exc:
        raise _payment_error(exc) from exc


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware time is needed")
    return int(moment.timestamp())


def _saved_card(pm: dict[str, Any]) -> SavedCard:
    card = pm["card"]
    brand = card.get("brand") or "card"
    return SavedCard(provider_id=pm["id"], brand="card" if brand == "unknown" else brand, last4=card["last4"],
                     exp_month=int(card["exp_month"]), exp_year=int(card["exp_year"]),
                     fingerprint=card.get("fingerprint") or "")


def _card_setup(intent: dict[str, Any]) -> CardSetup:
    payment_method = intent.get("payment_method")
    return CardSetup(provider_id=intent["id"], customer_id=intent.get("customer") or "", status=intent["status"],
                     client_secret=intent["client_secret"],
                     payment_method_id=payment_method["id"] if isinstance(payment_method, dict) else payment_method)


def _unit_amount(line: dict[str, Any], amount: int, quantity: int) -> int:
    # Newer API versions give the unit price under `pricing`; older ones (and localstripe) name the Price or Plan.
    unit = ((line.get("pricing") or {}).get("unit_amount_decimal")
            or (line.get("price") or {}).get("unit_amount")
            or (line.get("plan") or {}).get("amount"))
    return int(Decimal(str(unit))) if unit is not None else amount // max(1, quantity)


def _reference_name(invoice: dict[str, Any]) -> str | None:
    """The license's reference name, from the snapshot of its subscription's metadata on the invoice."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return (details.get("metadata") or {}).get("reference_name")


def invoice_data(invoice: dict[str, Any], *, reference_name: str | None = None) -> InvoiceData:
    """A Stripe invoice as the interface's InvoiceData; each line carries the license's reference name, as
    the sandbox's lines do."""
    name = reference_name or _reference_name(invoice)
    lines = []
    for line in (invoice.get("lines") or {}).get("data") or []:
        quantity = int(line.get("quantity") or 1)
        amount = int(line.get("amount") or 0)
        description = line.get("description") or "Subscription"
        lines.append(InvoiceLineData(description=f"{name} · {description}" if name else description,
                                     quantity=quantity, unit_amount=_unit_amount(line, amount, quantity),
                                     amount=amount))
    return InvoiceData(
        provider_id=invoice["id"],
        number=invoice.get("number") or invoice["id"],  # only drafts (and localstripe's invoices) have none
        status=invoice["status"], currency=invoice["currency"], subtotal=int(invoice["subtotal"]),
        discount=sum(int(d["amount"]) for d in invoice.get("total_discount_amounts") or []),
        total=int(invoice["total"]), lines=tuple(lines),
    )


class StripeProvider:
    """Stripe behind the `PaymentProvider` interface.

    `api_base` points the client elsewhere than api.stripe.com (localstripe in tests); `http_client`
    replaces stripe-python's HTTP client (tests record requests with it). stripe-python retries network
    errors, 409 and 5xx `max_network_retries` times with the same idempotency key; callers retry
    ProviderUnavailable on top of that (the purchase does, three times), so keep both small.
    """

    name = "stripe"
    collects_cards_in_browser = True
    previews_invoices = True
    renews_by_itself = True  # Stripe charges each new period itself and tells by webhook (invoice.paid, ...)
    hosts_invoice_documents = True  # Stripe's invoice_pdf (`invoice_document_url`)

    def __init__(self, secret_key: str, *, api_base: str | None = None, http_client: stripe.HTTPClient | None = None,
                 max_network_retries: int = 1, timeout: float = 20.0) -> None:
        self._test_mode = secret_key.startswith(("sk_test_", "rk_test_"))
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=http_client or stripe.RequestsClient(timeout=timeout),
            max_network_retries=max_network_retries,
        )

    def _call(self, method: Callable[..., Any], *args: Any, missing: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Call a StripeClient method; its answer as plain dicts, its errors as the interface's."""
        try:
            return method(*args, **kwargs).to_dict()
        except stripe.StripeError as exc:
            raise _payment_error(exc, missing=missing) from exc

    def _list(self, service: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every object of a list call, following Stripe's pages."""
        try:
            return [obj.to_dict() for obj in service.list(params=params).auto_paging_iter()]
        except stripe.StripeError as exc:
            raise _payment_error(exc) from exc

    # --- customers and payment methods ------------------------------------------------------------------------

    def ensure_customer(self, *, account_id: int, account_name: str, customer_id: str | None) -> str:
        """The account's Stripe Customer: the one it has, or a new one when it has none (or one Stripe no
        longer knows: deleted, or made by another provider or Stripe account)."""
        if customer_id:
            existing = _retrieved_or_none(self._client.v1.customers.retrieve, customer_id)
            if existing is not None and not existing.get("deleted"):
                return existing["id"]
        # A key of its own per account and situation: two first requests of one account at the same time get
        # one customer (Stripe keeps keys for 24 hours; the account then holds the customer's id).
        customer = self._call(self._client.v1.customers.create,
                              params={"name": account_name, "metadata": {"account_id": str(account_id)}},
                              options={"idempotency_key": f"customer-of-account-{account_id}-"
                                                          f"replacing-{customer_id or 'none'}"})
        return customer["id"]

    def add_card(self, *, customer_id: str, card: CardDetails, make_default: bool,
                 idempotency_key: str) -> SavedCard:
        """Test mode only: make a PaymentMethod from a test card number and attach it.

        In production card numbers never reach the server: the browser confirms a SetupIntent with Stripe's
        Payment Element (`create_setup_intent`), then the server keeps the card with
        `attach_confirmed_payment_method`. Stripe accepts raw numbers from a server only for test keys (and
        only on accounts allowed to send them); localstripe accepts them, which the contract tests use.
        """
        if not self._test_mode:
            raise PaymentError("card_entry_unsupported",
                               "Cards are entered in Stripe's secure card form. Reload the page and try again.")
        pm = self._call(self._client.v1.payment_methods.create,
                        params={"type": "card", "card": {"number": card.number, "exp_month": card.exp_month,
                                                         "exp_year": card.exp_year, "cvc": card.cvc}},
                        options={"idempotency_key": f"{idempotency_key}:payment_method"})
        attached = self._call(self._client.v1.payment_methods.attach, pm["id"], params={"customer": customer_id},
                              options={"idempotency_key": f"{idempotency_key}:attach"}, missing="No such customer.")
        if make_default:
            self._make_default(customer_id, pm["id"])
        return _saved_card(attached)

    def create_setup_intent(self, *, customer_id: str, idempotency_key: str) -> CardSetup:
        """A SetupIntent for the Payment Element to save a card for later payments."""
        intent = self._call(self._client.v1.setup_intents.create,
                            params={"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]},
                            options={"idempotency_key": f"{idempotency_key}:setup_intent"},
                            missing="No such customer.")
        return _card_setup(intent)

    def get_setup_intent(self, *, setup_intent_id: str) -> CardSetup | None:
        """The SetupIntent as Stripe has it now; None when Stripe does not know it."""
        try:
            return _card_setup(self._call(self._client.v1.setup_intents.retrieve, setup_intent_id, missing="-"))
        except PaymentError as exc:
            if exc.code == "resource_missing":
                return None
            raise

    def attach_confirmed_payment_method(self, *, customer_id: str, setup_intent_id: str, payment_method_id: str,
                                        make_default: bool) -> SavedCard:
        """Keep the card of a SetupIntent the browser confirmed: only the card that this customer's own
        SetupIntent (the one the server made for the card form) succeeded with, so that an id from anywhere else
        (a card of another customer, or one never confirmed) is refused. Attached to the customer (Stripe has
        done that already when the SetupIntent named the customer), the default if asked."""
        intent = self.get_setup_intent(setup_intent_id=setup_intent_id)
        if (intent is None or intent.customer_id != customer_id or intent.status != "succeeded"
                or intent.payment_method_id != payment_method_id):
            raise PaymentError("setup_unconfirmed", UNCONFIRMED_CARD)
        pm = self._call(self._client.v1.payment_methods.retrieve, payment_method_id,
                        missing="No such payment method.")
        if pm.get("customer") not in (None, customer_id) or pm.get("type") != "card":
            raise PaymentError("resource_missing", "No such payment method.")
        if pm.get("customer") is None:
            pm = self._call(self._client.v1.payment_methods.attach, payment_method_id,
                            params={"customer": customer_id},
                            options={"idempotency_key": f"attach-{payment_method_id}-to-{customer_id}"},
                            missing="No such customer.")
        if make_default:
            self._make_default(customer_id, payment_method_id)
        return _saved_card(pm)

    def list_payment_methods(self, *, customer_id: str) -> list[SavedCard]:
        methods = self._list(self._client.v1.payment_methods, {"customer": customer_id, "type": "card", "limit": 100})
        return [_saved_card(pm) for pm in sorted(methods, key=lambda pm: pm["created"])]

    def set_default_payment_method(self, *, customer_id: str, payment_method_id: str) -> None:
        """The card the customer's invoices are charged to when a subscription names none."""
        self._owned_payment_method(customer_id, payment_method_id, missing="No such payment method.")
        self._make_default(customer_id, payment_method_id)

    def remove_payment_method(self, *, customer_id: str, payment_method_id: str) -> None:
        self._owned_payment_method(customer_id, payment_method_id, missing="No such payment method.")
        self._call(self._client.v1.payment_methods.detach, payment_method_id)

    def _owned_payment_method(self, customer_id: str, payment_method_id: str, *, missing: str) -> dict[str, Any]:
        pm = self._call(self._client.v1.payment_methods.retrieve, payment_method_id, missing=missing)
        if pm.get("customer") != customer_id:
            raise PaymentError("resource_missing", missing)
        return pm

    def _make_default(self, customer_id: str, payment_method_id: str) -> None:
        self._call(self._client.v1.customers.update, customer_id,
                   params={"invoice_settings": {"default_payment_method": payment_method_id}},
                   missing="No such customer.")

    # --- subscriptions ----------------------------------------------------------------------------------------

    def create_subscription(self, *, customer_id: str, payment_method_id: str, product_name: str, plan_code: str,
                            unit_amount: int, currency: str, quantity: int,
                            discount: SubscriptionDiscount | None, description: str, metadata: dict[str, str],
                            idempotency_key: str) -> SubscriptionData:
        self._owned_payment_method(customer_id, payment_method_id,
                                   missing="This payment method is no longer available.")
        params = self._subscription_params(
            customer_id=customer_id, payment_method_id=payment_method_id, plan_code=plan_code,
            unit_amount=unit_amount, currency=currency, quantity=quantity, discount=discount,
            description=description, metadata=metadata)
        subscription = self._call(self._client.v1.subscriptions.create, params=params,
                                  options={"idempotency_key": f"{idempotency_key}:subscription"})
        invoice = subscription["latest_invoice"]
        if subscription["status"] == "active" and invoice["status"] == "paid":
            return SubscriptionData(provider_id=subscription["id"], status=subscription["status"],
                                    latest_invoice=invoice_data(invoice, reference_name=description))
        # Incomplete: the bank wants the customer to authenticate, or the card was refused. A replayed key
        # answers with the first response, which may be stale: look at the subscription as it is now.
        return self._settle(subscription["id"])

    def list_subscriptions(self, *, customer_id: str) -> list[SubscriptionState]:
        subscriptions = self._list(self._client.v1.subscriptions,
                                   {"customer": customer_id, "status": "all", "limit": 100})
        return [self._state(sub) for sub in subscriptions]

    @staticmethod
    def _state(sub: dict[str, Any]) -> SubscriptionState:
        items = (sub.get("items") or {}).get("data") or []
        quantity = int(items[0].get("quantity") or 0) if items else int(sub.get("quantity") or 0)
        return SubscriptionState(provider_id=sub["id"], status=sub["status"], quantity=quantity,
                                 license_id=(sub.get("metadata") or {}).get("license_id"))

    def find_subscription(self, *, customer_id: str, license_id: str, purchase_key: str) -> SubscriptionData | None:
        try:
            subscriptions = self._list(self._client.v1.subscriptions,
                                       {"customer": customer_id, "status": "all", "limit": 100})
        except PaymentError as exc:
            raise _unanswered(exc, "listing the subscriptions of %s", customer_id) from exc
        mine = [sub for sub in subscriptions
                if (sub.get("metadata") or {}).get("license_id") == license_id
                and (sub.get("metadata") or {}).get("purchase_key") in (purchase_key, None)]
        if not mine:
            return None
        # One attempt makes one subscription (its idempotency key); should there be more, a live one counts. Only
        # ended ones: the earlier attempt failed (e.g. the bank's step was failed), and `_settle` says why.
        live = [sub for sub in mine if sub["status"] not in ENDED]
        return self._settle((live or mine)[0]["id"])

    def _settle(self, subscription_id: str) -> SubscriptionData:
        """A subscription as it is now: paid → its data; its first payment waiting for the customer to
        authenticate → ActionRequired with the payment's client secret; a payment that went through (or is
        going through) but is not booked yet, or that cannot be read → ProviderUnavailable (the purchase stays
        pending and is asked again); a payment that failed → the subscription is cancelled (so nothing charges
        later) and the reason raised. If the cancel cannot be sent, ProviderUnavailable goes up too."""
        try:
            sub = self._call(self._client.v1.subscriptions.retrieve, subscription_id,
                             params={"expand": ["latest_invoice"]})
            invoice = sub["latest_invoice"]
            if sub["status"] in ("active", "trialing") and invoice["status"] == "paid":
                name = (sub.get("metadata") or {}).get("reference_name") or sub.get("description")
                return SubscriptionData(provider_id=sub["id"], status=sub["status"],
                                        latest_invoice=invoice_data(invoice, reference_name=name))
            intent = self._payment_intent_of(invoice)
        except PaymentError as exc:
            raise _unanswered(exc, "reading subscription %s", subscription_id) from exc
        paying = (intent or {}).get("status")
        if invoice["status"] == "paid" or paying in ("succeeded", "processing"):
            # Money moved (or is moving) but the subscription does not show it yet: never cancel that here.
            log.warning("subscription %s is %s with invoice %s and payment %s: asked again later", sub["id"],
                        sub["status"], invoice["status"], paying)
            raise ProviderUnavailable("payment_not_settled", UNAVAILABLE)
        if sub["status"] == "incomplete" and paying == "requires_action" and (intent or {}).get("client_secret"):
            raise ActionRequired(subscription_id=sub["id"], client_secret=intent["client_secret"])
        failure = self._payment_failure(intent)
        log.warning("subscription %s is %s (invoice %s): cancelling it", sub["id"], sub["status"], invoice["status"])
        self.cancel_subscription(subscription_id=sub["id"])
        raise failure

    def _subscription_params(self, *, customer_id: str, payment_method_id: str, plan_code: str, unit_amount: int,
                             currency: str, quantity: int, discount: SubscriptionDiscount | None,
                             description: str, metadata: dict[str, str]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "customer": customer_id,
            "items": [self._subscription_item(plan_code=plan_code, unit_amount=unit_amount, currency=currency,
                                              quantity=quantity)],
            "default_payment_method": payment_method_id,
            "description": description,
            # Stripe copies the subscription's metadata onto its invoices: the reference name names their lines.
            "metadata": {**metadata, "reference_name": description},
            # A first payment the bank wants authenticated (3-D Secure) leaves the subscription incomplete
            # until the customer does so in the browser; refused ones are cancelled at once (`_settle`).
            "payment_behavior": "allow_incomplete",
            "expand": ["latest_invoice"],
        }
        if discount is not None:
            params["discounts"] = [{"promotion_code": self._promotion_code_id(discount.coupon_code)}]
        return params

    def _promotion_code_id(self, code: str) -> str:
        """The id of the active promotion code `code` (Stripe compares codes case-insensitively; a promotion
        code is only active while its coupon is valid). PaymentError("coupon_unavailable") when there is none."""
        found = self._call(self._client.v1.promotion_codes.list,
                           params={"code": code, "active": True, "limit": 1})["data"]
        if not found:
            log.warning("Stripe has no active promotion code %r: run the catalog sync, or the code has run out", code)
            raise PaymentError("coupon_unavailable", COUPON_UNAVAILABLE, field="coupon_code")
        return found[0]["id"]

    def _subscription_item(self, *, plan_code: str, unit_amount: int, currency: str, quantity: int) -> dict[str, Any]:
        """The subscription's item: the plan's Price (lookup key = plan code), checked against the price the
        portal showed, so that Stripe never charges another one."""
        prices = self._call(self._client.v1.prices.list,
                            params={"lookup_keys": [plan_code], "active": True, "limit": 1})["data"]
        if not prices:
            log.error("No active Stripe price has the lookup key %r: run the catalog sync", plan_code)
            raise PaymentError("price_missing", PLAN_UNAVAILABLE)
        price = prices[0]
        recurring = price.get("recurring") or {}
        found = (price.get("unit_amount"), str(price.get("currency")).lower(), recurring.get("interval"),
                 recurring.get("interval_count"))
        if found != (unit_amount, currency.lower(), "month", 1):
            log.error("Stripe price %s (%s) is %s; the portal sells %s %s a month: run the catalog sync",
                      price.get("id"), plan_code, found, unit_amount, currency)
            raise PaymentError("price_mismatch", PLAN_UNAVAILABLE)
        return {"price": price["id"], "quantity": quantity}

    @staticmethod
    def _payment_failure(intent: dict[str, Any] | None, *, unpaid: str = INCOMPLETE) -> PaymentError:
        """Why a payment (by default a first payment) is unpaid, from its PaymentIntent."""
        error = (intent or {}).get("last_payment_error") or {}
        if error.get("code"):
            return card_failure(error["code"], error.get("decline_code"))
        return PaymentError("payment_incomplete", unpaid)

    def _payment_intent_of(self, invoice: dict[str, Any]) -> dict[str, Any] | None:
        # Older API versions (and localstripe) name the PaymentIntent on the invoice; newer ones list it
        # among the invoice's payments.
        intent = invoice.get("payment_intent")
        if intent is None:
            payments = self._call(self._client.v1.invoice_payments.list,
                                  params={"invoice": invoice["id"], "expand": ["data.payment.payment_intent"]})
            intents = [p["payment"].get("payment_intent") for p in payments["data"]
                       if p["payment"].get("type") == "payment_intent"]
            intent = intents[0] if intents else None
        if isinstance(intent, str):
            intent = self._call(self._client.v1.payment_intents.retrieve, intent)
        return intent

    def set_subscription_payment_method(self, *, subscription_id: str, payment_method_id: str) -> None:
        """The card the subscription's next invoices are charged to (it overrides the customer's default).
        Stripe refuses a card that is not attached to the subscription's customer (400 on the parameter
        `default_payment_method`): resource_missing, as for a subscription it does not know."""
        missing = "No such subscription or payment method."
        try:
            self._client.v1.subscriptions.update(subscription_id,
                                                 params={"default_payment_method": payment_method_id})
        except stripe.InvalidRequestError as exc:
            if exc.param == "default_payment_method":
                raise PaymentError("resource_missing", missing) from exc
            raise _payment_error(exc, missing=missing) from exc
        except stripe.StripeError as exc:
            raise _payment_error(exc) from exc

    def cancel_subscription(self, *, subscription_id: str) -> None:
        """Cancel now. Cancelling a cancelled subscription is harmless, as in the sandbox."""
        try:
            self._client.v1.subscriptions.cancel(subscription_id)
        except stripe.InvalidRequestError as exc:
            current = self._call(self._client.v1.subscriptions.retrieve, subscription_id,
                                 missing="No such subscription.")
            if current["status"] not in ENDED:
                raise _payment_error(exc, missing="No such subscription.") from exc
        except stripe.StripeError as exc:
            raise _payment_error(exc) from exc

    # --- renewals and changes ---------------------------------------------------------------------------------

    def charge_renewal(self, *, subscription_id: str, period_index: int, charge: ChargeFigures,
                       idempotency_key: str) -> InvoiceData:
        raise NotSupported(self.name, "renewal charged by the portal")

    def change_subscription(self, *, subscription_id: str, plan_code: str, unit_amount: int, currency: str,
                            quantity: int, proration_date: datetime, charge: ChargeFigures | None,
                            idempotency_key: str) -> InvoiceData | None:
        """Change the subscription now; Stripe charges the prorated rest of the period at once (see the module's
        docstring). Paid → that invoice; unpaid → its pending update discarded, then the card's refusal (with the
        sandbox's codes and messages) raised. A 402 (Stripe refusing the card outright) leaves no pending update.
        The same key replays Stripe's first answer, and the discarding with it."""
        prorated_as_of = _unix(proration_date)
        item = self._changed_item(subscription_id, plan_code=plan_code, unit_amount=unit_amount, currency=currency,
                                  quantity=quantity)
        sub = self._call(self._update_subscription, subscription_id, {
            "items": [item],
            "proration_behavior": "always_invoice",
            "proration_date": prorated_as_of,
            "payment_behavior": "pending_if_incomplete",
            "expand": ["latest_invoice"],
        }, options={"idempotency_key": f"{idempotency_key}:change"}, missing=NO_SUBSCRIPTION)
        invoice = sub.get("latest_invoice")
        if sub.get("pending_update"):
            failure = self._unpaid_change(invoice)
            self._void_pending_invoice(sub["id"], invoice, idempotency_key)
            raise failure
        due = charge.total if charge is not None else 0
        if not isinstance(invoice, dict) or invoice.get("billing_reason") not in (None, "subscription_update"):
            # Nothing was prorated, so no invoice was made: the latest one is an older invoice of the subscription.
            if due:
                log.warning("subscription %s changed with no invoice where the portal worked out %s", sub["id"], due)
            return None
        if invoice["status"] != "paid":
            # Not pending and not paid: Stripe applied the change with its invoice still open (not a card's
            # behaviour). Never taken for a refusal: the webhooks bring what comes of it.
            log.error("subscription %s changed with invoice %s %s", sub["id"], invoice["id"], invoice["status"])
            raise ProviderUnavailable("payment_not_settled", UNAVAILABLE)
        if int(invoice["total"]) != due:
            log.warning("Stripe charged %s for changing subscription %s; the portal worked out %s",
                        invoice["total"], sub["id"], due)
        name = (sub.get("metadata") or {}).get("reference_name") or sub.get("description")
        return invoice_data(invoice, reference_name=name)

    def preview_change(self, *, subscription_id: str, plan_code: str, unit_amount: int, currency: str,
                       quantity: int, proration_date: datetime) -> int:
        """Stripe's total of the invoice `change_subscription` would make, prorated as of `proration_date`. Its
        total, as the invoice's, not its amount due (which a customer's credit balance would lower)."""
        prorated_as_of = _unix(proration_date)
        item = self._changed_item(subscription_id, plan_code=plan_code, unit_amount=unit_amount, currency=currency,
                                  quantity=quantity)
        preview = self._call(self._client.v1.invoices.create_preview, params={
            "subscription": subscription_id,
            "subscription_details": {"items": [item], "proration_date": prorated_as_of,
                                     "proration_behavior": "always_invoice"},
        }, missing=NO_SUBSCRIPTION)
        return int(preview["total"])

    def schedule_change(self, *, subscription_id: str, plan_code: str, unit_amount: int, currency: str,
                        quantity: int) -> None:
        """The item's new price and quantity with `proration_behavior=none`: Stripe shows the new terms at once and
        bills them from the next renewal; nothing is charged or refunded now. Setting the same terms again changes
        nothing, so no idempotency key is needed."""
        item = self._changed_item(subscription_id, plan_code=plan_code, unit_amount=unit_amount, currency=currency,
                                  quantity=quantity)
        self._call(self._update_subscription, subscription_id, {"items": [item], "proration_behavior": "none"},
                   missing=NO_SUBSCRIPTION)

    def set_cancel_at_period_end(self, *, subscription_id: str, cancel: bool) -> None:
        self._call(self._update_subscription, subscription_id, {"cancel_at_period_end": cancel},
                   missing=NO_SUBSCRIPTION)

    def _update_subscription(self, subscription_id: str, params: dict[str, Any],
                             options: dict[str, Any] | None = None) -> Any:  # noqa: ANN401 (stripe's object)
        return self._client.v1.subscriptions.update(subscription_id, params=params, options=options)

    def _changed_item(self, subscription_id: str, *, plan_code: str, unit_amount: int, currency: str,
                      quantity: int) -> dict[str, Any]:
        """The subscription's one item with the plan's Price and the new quantity: named by its id, so that Stripe
        replaces its price and quantity (without the id, Stripe would add a second item)."""
        sub = self._call(self._client.v1.subscriptions.retrieve, subscription_id, missing=NO_SUBSCRIPTION)
        items = (sub.get("items") or {}).get("data") or []
        if len(items) != 1:
            log.error("Stripe subscription %s has %s items; the portal makes one", subscription_id, len(items))
            raise PaymentError("subscription_items", GENERIC)
        return {"id": items[0]["id"], **self._subscription_item(plan_code=plan_code, unit_amount=unit_amount,
                                                                currency=currency, quantity=quantity)}

    def _unpaid_change(self, invoice: dict[str, Any] | str | None) -> PaymentError:
        """Why a change's invoice is unpaid, from its PaymentIntent; a change never waits for the bank's step."""
        if invoice is None:
            return PaymentError("payment_incomplete", CHANGE_UNPAID)
        try:
            intent = self._payment_intent_of(invoice if isinstance(invoice, dict) else {"id": invoice})
        except PaymentError as exc:
            log.warning("the payment of invoice %s could not be read: %s", invoice, exc.code)
            intent = None
        if (intent or {}).get("status") == "requires_action":
            return PaymentError("requires_action", REQUIRES_ACTION)
        return self._payment_failure(intent, unpaid=CHANGE_UNPAID)

    def _void_pending_invoice(self, subscription_id: str, invoice: dict[str, Any] | str | None,
                              idempotency_key: str) -> None:
        """Void the open invoice of a pending update, which discards the update: nothing stays changed, and nothing
        is charged later. Stripe would void it by itself after 23 hours; should voiding fail now, the change
        answers ProviderUnavailable, and its retry with the same key (a replayed update) voids again."""
        invoice_id = invoice.get("id") if isinstance(invoice, dict) else invoice
        status = invoice.get("status") if isinstance(invoice, dict) else "open"
        if not invoice_id or status != "open":
            return
        try:
            self._client.v1.invoices.void_invoice(invoice_id, options={"idempotency_key": f"{idempotency_key}:void"})
        except stripe.StripeError as exc:
            log.error("could not void invoice %s of the pending update of subscription %s: %s (request %s)",
                      invoice_id, subscription_id, type(exc).__name__, exc.request_id)
            raise ProviderUnavailable("pending_update_kept", UNAVAILABLE) from exc

    def get_subscription(self, *, subscription_id: str) -> SubscriptionState | None:
        try:
            sub = self._client.v1.subscriptions.retrieve(subscription_id).to_dict()
        except stripe.InvalidRequestError as exc:
            if _is_missing(exc):
                return None
            raise _payment_error(exc) from exc
        except stripe.StripeError as exc:
            raise _payment_error(exc) from exc
        return self._state(sub)

    def preview_first_invoice(self, *, customer_id: str, plan_code: str, unit_amount: int, currency: str,
                              quantity: int, coupon_code: str | None) -> int:
        """Stripe's own total for the first month of this purchase (its invoice preview), in minor units, with
        the coupon's promotion code as the subscription will have it."""
        item = self._subscription_item(plan_code=plan_code, unit_amount=unit_amount, currency=currency,
                                       quantity=quantity)
        params: dict[str, Any] = {"customer": customer_id, "subscription_details": {"items": [item]}}
        if coupon_code:
            params["discounts"] = [{"promotion_code": self._promotion_code_id(coupon_code)}]
        return int(self._call(self._client.v1.invoices.create_preview, params=params)["total"])

    # --- catalog ----------------------------------------------------------------------------------------------

    def sync_catalog(self, *, plans: list[CatalogPlan], coupons: list[CatalogCoupon]) -> list[str]:
        """Products, monthly Prices and coupons (each with a promotion code of the same name) as the portal has
        them. Safe to re-run: what exists and matches is left alone. A Price is never edited: a changed price
        gets a new Price that takes over the plan's lookup key. A coupon cannot be edited in Stripe either: one
        that differs is reported (give the new terms a new code)."""
        done: list[str] = []
        for product_code, product_name in dict.fromkeys((p.product_code, p.product_name) for p in plans):
            try:
                self._client.v1.products.retrieve(product_code)
                done.append(f"product {product_code}: already there")
            except stripe.InvalidRequestError as exc:
                if not _is_missing(exc):
                    raise _payment_error(exc) from exc
                self._call(self._client.v1.products.create, params={"id": product_code, "name": product_name},
                           options={"idempotency_key": f"catalog-product-{product_code}"})
                done.append(f"product {product_code}: created")
            except stripe.StripeError as exc:
                raise _payment_error(exc) from exc
        for plan in plans:
            prices = self._call(self._client.v1.prices.list,
                                params={"lookup_keys": [plan.plan_code], "active": True, "limit": 1})["data"]
            price = prices[0] if prices else None
            recurring = (price or {}).get("recurring") or {}
            if price and (price.get("unit_amount"), str(price.get("currency")).lower(), recurring.get("interval"),
                          recurring.get("interval_count")) == (plan.unit_amount, plan.currency.lower(), "month", 1):
                done.append(f"price {plan.plan_code}: already {plan.unit_amount} {plan.currency} a month")
                continue
            self._call(self._client.v1.prices.create, params={
                "product": plan.product_code, "unit_amount": plan.unit_amount, "currency": plan.currency.lower(),
                "recurring": {"interval": "month", "interval_count": 1}, "lookup_key": plan.plan_code,
                "transfer_lookup_key": True, "nickname": plan.plan_name, "metadata": {"plan_code": plan.plan_code},
            }, options={"idempotency_key": f"catalog-price-{plan.plan_code}-{plan.unit_amount}-{plan.currency}"})
            done.append(f"price {plan.plan_code}: {'new price' if price else 'created'} "
                        f"{plan.unit_amount} {plan.currency} a month")
        for coupon in coupons:
            done.append(self._sync_coupon(coupon))
        return done

    def _sync_coupon(self, coupon: CatalogCoupon) -> str:
        terms: dict[str, Any] = {"duration": coupon.duration, "name": coupon.code}
        if coupon.percent_off is not None:
            terms["percent_off"] = coupon.percent_off
        else:
            terms["amount_off"], terms["currency"] = coupon.amount_off, (coupon.currency or "usd").lower()
        if coupon.duration == "repeating":
            terms["duration_in_months"] = coupon.duration_months
        if coupon.max_redemptions is not None:
            terms["max_redemptions"] = coupon.max_redemptions
        if coupon.redeem_by is not None:
            terms["redeem_by"] = coupon.redeem_by
        if coupon.product_codes:
            terms["applies_to"] = {"products": list(coupon.product_codes)}
        existing = _retrieved_or_none(self._client.v1.coupons.retrieve, coupon.code)
        if existing is None:
            self._call(self._client.v1.coupons.create, params={"id": coupon.code, **terms},
                       options={"idempotency_key": f"catalog-coupon-{coupon.code}"})
            self._call(self._client.v1.promotion_codes.create,
                       params={"code": coupon.code, "promotion": {"type": "coupon", "coupon": coupon.code}},
                       options={"idempotency_key": f"catalog-promotion-code-{coupon.code}"})
            return f"coupon {coupon.code}: created, with its promotion code"
        compared = ("percent_off", "amount_off", "duration", "duration_in_months", "max_redemptions", "redeem_by")
        differs = [key for key in compared if key in terms and existing.get(key) != terms[key]]
        if differs:
            log.warning("Stripe coupon %s differs from the portal's (%s)", coupon.code, ", ".join(differs))
            return f"coupon {coupon.code}: DIFFERS in Stripe ({', '.join(differs)}); coupons cannot be edited"
        return f"coupon {coupon.code}: already there"

    def invoice_document_url(self, *, invoice_id: str) -> str | None:
        """Stripe's PDF of the invoice (`invoice_pdf`), else its hosted invoice page; None for an invoice Stripe
        does not know or that has neither yet (a draft)."""
        invoice = _retrieved_or_none(self._client.v1.invoices.retrieve, invoice_id)
        if invoice is None:
            return None
        url = invoice.get("invoice_pdf") or invoice.get("hosted_invoice_url")
        return url if isinstance(url, str) and url.startswith("https://") else None

    def list_invoices(self, *, customer_id: str) -> list[InvoiceData]:
        """The customer's invoices, oldest first; drafts (not yet sent, no number) are left out."""
        invoices = self._list(self._client.v1.invoices, {"customer": customer_id, "limit": 100})
        return [invoice_data(inv) for inv in sorted(invoices, key=lambda inv: inv["created"])
                if inv["status"] != "draft"]
