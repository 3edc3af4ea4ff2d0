"""Stripe's webhooks: the `Stripe-Signature` check and Stripe's event shapes, read into the provider-neutral
`PaymentEvent` that `services/provider_events.py` applies. Nothing here touches the database.

Events of different API versions carry the same news in different places (an invoice's subscription, a
subscription's current period); each is read where either version puts it. Only the events the portal uses
are read (`KINDS`); any other verified event becomes a `PaymentEvent` of kind None, which the service records
and leaves alone.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import stripe

from cf_portal.payments.provider import EventKind, InvoiceData, InvoiceLineData, PaymentEvent

# How old a signature may be (seconds): Stripe's own default, against replays of a captured delivery.
SIGNATURE_TOLERANCE_S = 300

KINDS = {
    "invoice.paid": EventKind.INVOICE_PAID,
    "invoice.payment_failed": EventKind.INVOICE_PAYMENT_FAILED,
    "customer.subscription.updated": EventKind.SUBSCRIPTION_UPDATED,
    "customer.subscription.deleted": EventKind.SUBSCRIPTION_DELETED,
}


class InvalidSignature(Exception):  # noqa: N818 (the name says what it is)
    """The payload is unsigned, badly signed, too old, or not the JSON that was signed."""


def verified_event(payload: bytes, signature_header: str, secret: str) -> PaymentEvent:
    """Check the `Stripe-Signature` header (HMAC with the endpoint's secret, within SIGNATURE_TOLERANCE_S)
    before the payload is read as JSON, then read the event."""
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature_header, secret,
                                              tolerance=SIGNATURE_TOLERANCE_S)
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError, stripe.SignatureVerificationError) as exc:
        raise InvalidSignature() from exc
    return parse_event(event)


def parse_event(event: dict[str, Any]) -> PaymentEvent:
    """A Stripe event (already verified) in the portal's words."""
    kind = KINDS.get(str(event.get("type", "")))
    obj = (event.get("data") or {}).get("object") or {}
    created = event.get("created")
    parsed = PaymentEvent(provider="stripe", event_id=str(event["id"]), type=str(event.get("type", "")), kind=kind,
                          occurred_at=datetime.fromtimestamp(int(created), UTC) if created else None)
    if kind in (EventKind.INVOICE_PAID, EventKind.INVOICE_PAYMENT_FAILED):
        reason = obj.get("billing_reason")
        return replace(parsed, subscription_id=_invoice_subscription_id(obj), invoice=_invoice(obj),
                       billing_reason=str(reason) if reason else None, period_end=_invoice_period_end(obj))
    if kind is EventKind.SUBSCRIPTION_UPDATED:
        status = obj.get("status")
        cancel = obj.get("cancel_at_period_end")
        return replace(parsed, subscription_id=obj.get("id"), quantity=_quantity_of(obj),
                       subscription_status=str(status) if status else None,
                       period_end=_subscription_period_end(obj),
                       cancel_at_period_end=cancel if isinstance(cancel, bool) else None)
    if kind is EventKind.SUBSCRIPTION_DELETED:
        return replace(parsed, subscription_id=obj.get("id"))
    return parsed


def _invoice_subscription_id(obj: dict[str, Any]) -> str | None:
    """An invoice names its subscription at the top (older API versions) or under `parent` (newer)."""
    if isinstance(obj.get("subscription"), str):
        return obj["subscription"]
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    return details.get("subscription")


def _invoice(obj: dict[str, Any]) -> InvoiceData:
    provider_id = str(obj.get("id", ""))
    subtotal = int(obj.get("subtotal") or 0)
    total = int(obj.get("total") or 0)
    lines = []
    for line in ((obj.get("lines") or {}).get("data") or []):
        quantity = max(1, int(line.get("quantity") or 1))
        amount = int(line.get("amount") or 0)
        lines.append(InvoiceLineData(description=str(line.get("description") or "Subscription"), quantity=quantity,
                                     unit_amount=amount // quantity, amount=amount))
    return InvoiceData(provider_id=provider_id, number=str(obj.get("number") or provider_id),
                       status=str(obj.get("status") or ""), currency=str(obj.get("currency") or ""),
                       subtotal=subtotal, discount=max(0, subtotal - total), total=total, lines=tuple(lines))


def _quantity_of(obj: dict[str, Any]) -> int | None:
    items = ((obj.get("items") or {}).get("data") or [])
    if items and items[0].get("quantity"):
        return int(items[0]["quantity"])
    return int(obj["quantity"]) if obj.get("quantity") else None


def _time(value: Any) -> datetime | None:  # noqa: ANN401 (a field of any API version)
    """A Unix time of the event as an aware datetime; None when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _invoice_period_end(obj: dict[str, Any]) -> datetime | None:
    """The end of the period the invoice's subscription line covers (for a renewal, the new period's end; for a
    change charged at once, the end of the period it was prorated to). A subscription line says so in `type`
    (older API versions) or `parent` (newer ones); without one, the first line stands for it."""
    lines = [line for line in ((obj.get("lines") or {}).get("data") or []) if isinstance(line, dict)]
    subscription_lines = [line for line in lines if line.get("type") == "subscription"
                          or (line.get("parent") or {}).get("type") == "subscription_item_details"]
    line = (subscription_lines or lines or [None])[0]
    return _time(((line or {}).get("period") or {}).get("end"))


def _subscription_period_end(obj: dict[str, Any]) -> datetime | None:
    """The end of the subscription's current period: on the subscription (older API versions) or on its item
    (from 2025-03)."""
    items = (obj.get("items") or {}).get("data") or []
    on_item = items[0].get("current_period_end") if items and isinstance(items[0], dict) else None
    return _time(obj.get("current_period_end") or on_item)

