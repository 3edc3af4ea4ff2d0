"""Stripe's events read into `PaymentEvent`: why an invoice was made, the period it covers, and a subscription's
period and cancellation at its end, from events of older and newer API versions (samples shaped as in Stripe's
API reference)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cf_portal.payments.provider import EventKind
from cf_portal.payments.stripe_webhook import parse_event

SUB = "sub_1MowQVLkdIwHu7ix"
PERIOD_START, PERIOD_END = 1764417600, 1767096000  # 2025-11-29 12:00 → 2025-12-30 12:00 UTC
END = datetime.fromtimestamp(PERIOD_END, UTC)


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"evt_{kind}", "object": "event", "api_version": "2025-03-31.basil", "type": kind,
            "created": PERIOD_START + 5, "data": {"object": obj}}


def subscription_line(*, amount: int = 5700, quantity: int = 3, start: int = PERIOD_START, end: int = PERIOD_END,
                      proration: bool = False) -> dict[str, Any]:
    """A line of a subscription's item, as API versions from 2025-03 have it (`parent`)."""
    return {"id": "il_1", "object": "line_item", "amount": amount, "currency": "usd", "quantity": quantity,
            "description": f"{quantity} × Security Awareness Training Business (at $19.00 / month)",
            "parent": {"type": "subscription_item_details", "subscription_item_details": {
                "proration": proration, "subscription": SUB, "subscription_item": "si_NcLYdDxLHxlFo7"}},
            "period": {"start": start, "end": end}}


def new_invoice(reason: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    total = sum(line["amount"] for line in lines)
    return {"id": "in_1", "object": "invoice", "billing_reason": reason, "currency": "usd", "number": "A-0002",
            "status": "paid", "subtotal": total, "total": total, "lines": {"object": "list", "data": lines},
            "parent": {"type": "subscription_details", "subscription_details": {"subscription": SUB}}}


def test_a_renewal_invoice_says_why_it_was_made_and_the_period_it_pays_for() -> None:
    parsed = parse_event(event("invoice.paid", new_invoice("subscription_cycle", [subscription_line()])))
    assert (parsed.kind, parsed.subscription_id, parsed.billing_reason, parsed.period_end) == (
        EventKind.INVOICE_PAID, SUB, "subscription_cycle", END)
    assert parsed.invoice.total == 5700


def test_a_change_charged_at_once_covers_the_rest_of_the_period() -> None:
    mid = PERIOD_START + 9 * 86400
    lines = [subscription_line(amount=-3990, quantity=3, start=mid, proration=True),
             subscription_line(amount=6650, quantity=5, start=mid, proration=True)]
    parsed = parse_event(event("invoice.paid", new_invoice("subscription_update", lines)))
    assert (parsed.billing_reason, parsed.period_end, parsed.invoice.total) == ("subscription_update", END, 2660)


def test_an_older_api_versions_invoice_is_read_from_its_subscription_line() -> None:
    """Before 2025-03 the subscription is at the top and lines say their `type`; a one-off item line (here first)
    covers another period."""
    one_off = {"id": "il_0", "object": "line_item", "type": "invoiceitem", "amount": 500, "quantity": 1,
               "period": {"start": PERIOD_START, "end": PERIOD_START}}
    line = {**subscription_line(), "type": "subscription"}
    del line["parent"]
    obj = {"id": "in_2", "object": "invoice", "subscription": SUB, "billing_reason": "subscription_cycle",
           "currency": "usd", "status": "open", "subtotal": 6200, "total": 6200,
           "lines": {"object": "list", "data": [one_off, line]}}
    parsed = parse_event(event("invoice.payment_failed", obj))
    assert (parsed.kind, parsed.subscription_id, parsed.billing_reason, parsed.period_end) == (
        EventKind.INVOICE_PAYMENT_FAILED, SUB, "subscription_cycle", END)


def subscription(**fields: Any) -> dict[str, Any]:
    return {"id": SUB, "object": "subscription", "status": "active", **fields}


@pytest.mark.parametrize("obj", [
    subscription(cancel_at_period_end=True, items={"data": [{"id": "si_1", "quantity": 4,
                                                             "current_period_end": PERIOD_END}]}),
    subscription(cancel_at_period_end=True, current_period_end=PERIOD_END, items={"data": [{"quantity": 4}]}),
], ids=["period-on-the-item", "period-on-the-subscription"])
def test_a_subscription_update_says_when_its_period_ends_and_whether_it_renews(obj: dict[str, Any]) -> None:
    parsed = parse_event(event("customer.subscription.updated", obj))
    assert (parsed.kind, parsed.quantity, parsed.period_end, parsed.cancel_at_period_end) == (
        EventKind.SUBSCRIPTION_UPDATED, 4, END, True)
    resumed = parse_event(event("customer.subscription.updated", {**obj, "cancel_at_period_end": False}))
    assert resumed.cancel_at_period_end is False


@pytest.mark.parametrize(("kind", "obj"), [
    ("customer.subscription.updated", subscription()),
    ("customer.subscription.updated", subscription(cancel_at_period_end="yes", current_period_end="soon",
                                                   items={"data": [{"current_period_end": None}]})),
    ("invoice.paid", {"id": "in_3", "object": "invoice", "subscription": SUB, "total": 0}),
    ("invoice.paid", {"id": "in_4", "object": "invoice", "subscription": SUB, "billing_reason": None,
                      "lines": {"data": [{"amount": 0, "period": {"end": None}}]}}),
], ids=["subscription-says-nothing", "subscription-odd-values", "invoice-says-nothing", "invoice-odd-values"])
def test_what_an_event_does_not_say_is_none(kind: str, obj: dict[str, Any]) -> None:
    parsed = parse_event(event(kind, obj))
    assert (parsed.billing_reason, parsed.period_end, parsed.cancel_at_period_end) == (None, None, None)
    assert parsed.subscription_id == SUB


def test_other_events_carry_none_of_these() -> None:
    parsed = parse_event(event("customer.subscription.deleted", subscription(status="canceled",
                                                                              current_period_end=PERIOD_END)))
    assert (parsed.kind, parsed.period_end, parsed.cancel_at_period_end) == (EventKind.SUBSCRIPTION_DELETED, None,
                                                                             None)
