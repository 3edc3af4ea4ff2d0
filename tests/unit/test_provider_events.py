"""Webhook events: stored once, applied in the order they happened, keeping licenses and invoices in step;
and the signed webhook route that receives them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from cf_portal import api, db, settings
from cf_portal.db import session_scope
from cf_portal.models import Invoice, InvoiceLine, License, ProviderEvent
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.payments.stripe_webhook import parse_event
from cf_portal.services.licenses import list_licenses
from cf_portal.services.provider_events import handle_event
from cf_portal.services.purchase import create_license
from tests.unit.conftest import NOW, Seeded
from tests.unit.test_purchase import request_for

SECRET = "whsec_test_secret"


@pytest.fixture
def bought(seeded: Seeded, provider: SandboxProvider) -> License:
    card = seeded.add_card(provider)
    result = create_license(seeded.engine, provider, actor=seeded.actor, now=NOW,
                            request=request_for(seeded, card.id, quantity=5, name="Sales team"))
    with session_scope(seeded.engine, write=False) as session:
        return session.get(License, result.license_id)


def event(kind: str, obj: dict, *, at: int, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt_{kind}_{at}", "object": "event", "type": kind, "created": at,
            "data": {"object": obj}}


def invoice_obj(lic: License, invoice_id: str, *, total: int = 9500, new_api: bool = False) -> dict:
    obj = {"id": invoice_id, "object": "invoice", "number": f"INV-{invoice_id[-4:]}", "currency": "usd",
           "subtotal": total, "total": total, "status": "paid",
           "lines": {"data": [{"description": "5 × Security Awareness Training Business", "quantity": 5,
                               "amount": total}]}}
    if new_api:  # API versions from 2025-03 name the subscription under `parent`
        obj["parent"] = {"subscription_details": {"subscription": lic.provider_subscription_id}}
    else:
        obj["subscription"] = lic.provider_subscription_id
    return obj


def apply(seeded: Seeded, evt: dict) -> str:
    with session_scope(seeded.engine) as session:
        return handle_event(session, event=parse_event(evt), now=NOW)


def license_now(seeded: Seeded, lic: License) -> License:
    with session_scope(seeded.engine, write=False) as session:
        return session.get(License, lic.id)


T0 = int(NOW.timestamp())


def test_a_failed_renewal_makes_the_license_past_due_and_a_paid_one_active_again(seeded: Seeded,
                                                                                 bought: License) -> None:
    assert apply(seeded, event("invoice.payment_failed", invoice_obj(bought, "in_0001"), at=T0 + 10)) == (
        "status past_due")
    assert license_now(seeded, bought).status == "past_due"
    with session_scope(seeded.engine, write=False) as session:
        shown = list_licenses(session, account_id=seeded.actor.account_id)
        assert [row.status for row in shown] == ["past_due"]  # the Licenses page counts these for its banner
        failed = session.exec(select(Invoice).where(Invoice.provider_invoice_id == "in_0001")).one()
        lines = session.exec(select(InvoiceLine).where(InvoiceLine.invoice_id == failed.id)).all()
    assert failed.status == "open" and lines[0].description.startswith("Sales team · ")
    apply(seeded, event("invoice.paid", invoice_obj(bought, "in_0001", new_api=True), at=T0 + 20))
    assert license_now(seeded, bought).status == "active"
    with session_scope(seeded.engine, write=False) as session:
        invoices = session.exec(select(Invoice).where(Invoice.provider_invoice_id == "in_0001")).all()
    assert [i.status for i in invoices] == ["paid"]  # the same invoice, not a second one


def test_a_replayed_event_changes_nothing(seeded: Seeded, bought: License) -> None:
    failed = event("invoice.payment_failed", invoice_obj(bought, "in_0002"), at=T0 + 10, event_id="evt_same")
    apply(seeded, failed)
    apply(seeded, event("invoice.paid", invoice_obj(bought, "in_0002"), at=T0 + 20))
    assert apply(seeded, failed) == "replay: already handled"
    assert license_now(seeded, bought).status == "active"
    with session_scope(seeded.engine, write=False) as session:
        assert len(session.exec(select(ProviderEvent)).all()) == 2


def test_events_arriving_out_of_order_do_not_undo_newer_news(seeded: Seeded, bought: License) -> None:
    apply(seeded, event("invoice.paid", invoice_obj(bought, "in_0003"), at=T0 + 20))
    assert apply(seeded, event("invoice.payment_failed", invoice_obj(bought, "in_0003"), at=T0 + 10)) == (
        "older than what was applied")
    assert license_now(seeded, bought).status == "active"


def test_a_paid_invoice_stays_paid_when_an_older_failure_arrives_late(seeded: Seeded, bought: License) -> None:
    """A failed first attempt delivered after the retry's `invoice.paid` must not reopen the invoice."""
    apply(seeded, event("invoice.paid", invoice_obj(bought, "in_0005"), at=T0 + 20))
    apply(seeded, event("invoice.payment_failed", invoice_obj(bought, "in_0005"), at=T0 + 10))
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(Invoice.status).where(Invoice.provider_invoice_id == "in_0005")).one() == "paid"


def test_a_canceled_license_stays_canceled(seeded: Seeded, bought: License) -> None:
    """Stripe stamps events in whole seconds: a payment failure of the same second as the cancellation, delivered
    after it, must not bring the license back as past due."""
    sub = {"id": bought.provider_subscription_id, "object": "subscription", "status": "canceled"}
    assert apply(seeded, event("customer.subscription.deleted", sub, at=T0 + 10)) == "status canceled"
    assert apply(seeded, event("invoice.payment_failed", invoice_obj(bought, "in_0006"), at=T0 + 10)) == (
        "canceled for good")
    assert apply(seeded, event("customer.subscription.updated", {**sub, "status": "active"}, at=T0 + 20)) == (
        "canceled for good")
    assert license_now(seeded, bought).status == "canceled"


def test_each_event_keeps_what_was_done_with_it(seeded: Seeded, bought: License) -> None:
    outcomes = [apply(seeded, event("invoice.payment_failed", invoice_obj(bought, "in_0007"), at=T0 + 10)),
                apply(seeded, event("charge.refunded", {"id": "ch_1"}, at=T0 + 20))]
    apply(seeded, event("charge.refunded", {"id": "ch_1"}, at=T0 + 20))  # a replay keeps the first outcome
    with session_scope(seeded.engine, write=False) as session:
        stored = session.exec(select(ProviderEvent.outcome).order_by(ProviderEvent.id)).all()
    assert stored == outcomes == ["status past_due", "not used"]


def test_subscription_updates_bring_quantity_and_status_but_never_fewer_seats_than_held(
        seeded: Seeded, bought: License) -> None:
    sub = {"id": bought.provider_subscription_id, "object": "subscription", "status": "active",
           "items": {"data": [{"quantity": 8}]}}
    assert apply(seeded, event("customer.subscription.updated", sub, at=T0 + 10)) == "quantity 8, status active"
    assert license_now(seeded, bought).quantity == 8
    with session_scope(seeded.engine) as session:
        session.get(License, bought.id).seats_assigned = 6
    fewer = {**sub, "items": {"data": [{"quantity": 2}]}, "status": "past_due"}
    apply(seeded, event("customer.subscription.updated", fewer, at=T0 + 20))
    after = license_now(seeded, bought)
    assert (after.quantity, after.status) == (6, "past_due")  # the CHECK seats_assigned <= quantity holds
    apply(seeded, event("customer.subscription.deleted", {**sub, "status": "canceled"}, at=T0 + 30))
    assert license_now(seeded, bought).status == "canceled"


def test_events_of_unknown_subscriptions_and_other_types_are_stored_and_ignored(seeded: Seeded) -> None:
    assert apply(seeded, event("customer.subscription.deleted", {"id": "sub_unknown"}, at=T0)) == (
        "no license has this subscription")
    assert apply(seeded, event("charge.refunded", {"id": "ch_1"}, at=T0)) == "not used"


# --- the route -------------------------------------------------------------------------------------------------


def signed(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


@pytest.fixture
def client(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("REFLEX_DB_URL", str(seeded.engine.url.render_as_string(hide_password=False)))
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    yield TestClient(api.api)
    db.get_engine().dispose()
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()


def test_the_route_applies_signed_events_once(client: TestClient, seeded: Seeded, bought: License) -> None:
    payload = json.dumps(event("invoice.payment_failed", invoice_obj(bought, "in_0004"), at=T0 + 10)).encode()
    first = client.post(api.STRIPE_WEBHOOK_PATH, content=payload, headers={"Stripe-Signature": signed(payload)})
    assert first.status_code == 200 and first.json()["outcome"] == "status past_due"
    again = client.post(api.STRIPE_WEBHOOK_PATH, content=payload, headers={"Stripe-Signature": signed(payload)})
    assert again.json()["outcome"] == "replay: already handled"
    assert license_now(seeded, bought).status == "past_due"


@pytest.mark.parametrize("secret", ["", None])
def test_without_a_secret_the_route_answers_404_and_applies_nothing(client: TestClient, seeded: Seeded,
                                                                    bought: License, monkeypatch: pytest.MonkeyPatch,
                                                                    secret: str | None) -> None:
    """No STRIPE_WEBHOOK_SECRET (unset or empty): the route does not exist for the outside world, and an event
    signed with any secret (here the one it would have had) changes nothing."""
    if secret is None:
        monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    else:
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", secret)
    settings.get_settings.cache_clear()
    payload = json.dumps(event("customer.subscription.deleted", {"id": bought.provider_subscription_id},
                               at=T0 + 10)).encode()
    response = client.post(api.STRIPE_WEBHOOK_PATH, content=payload, headers={"Stripe-Signature": signed(payload)})
    assert response.status_code == 404
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["error"]
    assert license_now(seeded, bought).status == "active"
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(ProviderEvent)).all() == []


@pytest.mark.parametrize("header", [None, "t=1,v1=abc", "wrong secret", "too old"])
def test_the_route_refuses_unsigned_or_wrongly_signed_events(client: TestClient, seeded: Seeded, bought: License,
                                                             header: str | None) -> None:
    payload = json.dumps(event("customer.subscription.deleted", {"id": bought.provider_subscription_id},
                               at=T0)).encode()
    headers = {}
    if header == "wrong secret":
        headers["Stripe-Signature"] = signed(payload, secret="whsec_other")
    elif header == "too old":
        headers["Stripe-Signature"] = signed(payload, at=int(time.time()) - int(timedelta(minutes=6).total_seconds()))
    elif header is not None:
        headers["Stripe-Signature"] = header
    response = client.post(api.STRIPE_WEBHOOK_PATH, content=payload, headers=headers)
    assert response.status_code == 400
    assert license_now(seeded, bought).status == "active"
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(ProviderEvent)).all() == []


def post_raw(chunks: list[bytes], headers: dict[str, str]) -> tuple[int, int]:
    """POST `chunks` to the webhook route as the server would hand them over; returns the status and how many
    chunks the route read."""
    read, sent = [0], []

    async def receive() -> dict:
        read[0] += 1
        index = read[0] - 1
        if index < len(chunks):
            return {"type": "http.request", "body": chunks[index], "more_body": index + 1 < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    path = api.STRIPE_WEBHOOK_PATH
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "scheme": "http", "server": ("testserver", 80), "client": ("203.0.113.1", 1234), "root_path": "",
             "http_version": "1.1", "asgi": {"version": "3.0"}}
    # In a thread of its own: after the browser tests, Playwright's event loop runs in this one.
    ThreadPoolExecutor(1).submit(asyncio.run, api.api(scope, receive, send)).result()
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), read[0]


def test_the_route_refuses_a_large_body_without_reading_it(client: TestClient) -> None:
    chunk = b"x" * 100_000
    status, read = post_raw([chunk] * 50, {"Content-Length": str(50 * len(chunk)), "Stripe-Signature": "t=1,v1=a"})
    assert (status, read) == (413, 0)  # the declared length is enough
    status, read = post_raw([chunk] * 50, {"Stripe-Signature": "t=1,v1=a"})  # no length declared (chunked)
    assert status == 413 and read <= api.MAX_BODY // len(chunk) + 1  # stops reading at the limit


def test_the_service_takes_provider_neutral_events(seeded: Seeded, bought: License) -> None:
    """No Stripe shape needed: any provider's webhook reader hands the service a PaymentEvent."""
    from datetime import UTC, datetime

    from cf_portal.payments.provider import EventKind, PaymentEvent

    updated = PaymentEvent(provider="sandbox", event_id="evt_neutral", type="subscription.changed",
                           kind=EventKind.SUBSCRIPTION_UPDATED, occurred_at=datetime.fromtimestamp(T0 + 30, UTC),
                           subscription_id=bought.provider_subscription_id, subscription_status="past_due",
                           quantity=8)
    with session_scope(seeded.engine) as session:
        assert handle_event(session, event=updated, now=NOW) == "quantity 8, status past_due"
    assert (license_now(seeded, bought).quantity, license_now(seeded, bought).status) == (8, "past_due")
    with session_scope(seeded.engine, write=False) as session:
        row = session.exec(select(ProviderEvent).where(ProviderEvent.event_id == "evt_neutral")).one()
    assert (row.provider, row.type, row.outcome) == ("sandbox", "subscription.changed", "quantity 8, status past_due")


def cycle_invoice(lic: License, invoice_id: str, *, total: int) -> dict:
    return {**invoice_obj(lic, invoice_id, total=total), "billing_reason": "subscription_cycle"}


def test_a_renewal_by_the_provider_starts_the_next_period_with_its_scheduled_changes(seeded: Seeded,
                                                                                     bought: License) -> None:
    with session_scope(seeded.engine) as session:
        session.get(License, bought.id).next_quantity = 3
    paid = event("invoice.paid", cycle_invoice(bought, "in_c001", total=3 * bought.unit_amount), at=T0 + 10)
    assert apply(seeded, paid) == "period 2 started"
    assert apply(seeded, {**paid, "id": "evt_other_delivery"}) == "period already started"
    after = license_now(seeded, bought)
    assert (after.periods_billed, after.quantity, after.next_quantity) == (2, 3, None)
    assert after.period_start == bought.period_end
    with session_scope(seeded.engine, write=False) as session:
        invoice = session.exec(select(Invoice).where(Invoice.provider_invoice_id == "in_c001")).one()
    assert (invoice.kind, invoice.period_index, invoice.status) == ("renewal", 1, "paid")


def test_renewals_refused_by_the_provider_make_the_license_past_due_then_suspended(seeded: Seeded,
                                                                                   bought: License) -> None:
    # The provider's attempts: the renewal, then its retries 1, 3 and 5 days after the first failure.
    outcomes = [apply(seeded, event("invoice.payment_failed", cycle_invoice(bought, "in_c002", total=100),
                                    at=T0 + days * 86_400, event_id=f"evt_fail_{days}")) for days in (0, 1, 3, 5)]
    assert outcomes == ["status past_due"] * 3 + ["status suspended"]
    assert license_now(seeded, bought).status == "suspended"
    apply(seeded, event("invoice.paid", cycle_invoice(bought, "in_c002", total=100), at=T0 + 6 * 86_400))
    after = license_now(seeded, bought)
    assert (after.status, after.periods_billed, after.renewal_failures) == ("active", 2, 0)


def test_the_end_of_a_subscription_frees_the_seats_and_updates_bring_the_cancel_flag(seeded: Seeded,
                                                                                     bought: License) -> None:
    from cf_portal.models import SeatAssignment
    from cf_portal.services import seats
    from tests.factories import make_employee

    with session_scope(seeded.engine) as session:
        account = session.get(License, bought.id).account_id
        from cf_portal.models import Account

        person = make_employee(session, session.get(Account, account))
        seats.assign(session, actor=seeded.actor, license_id=bought.id,
                     holders=[seats.Holder(kind="employee", id=person.id)])
        session.get(License, bought.id).next_quantity = 2
    sub = {"id": bought.provider_subscription_id, "object": "subscription", "status": "active",
           "cancel_at_period_end": True, "items": {"data": [{"quantity": 2}]}}
    assert apply(seeded, event("customer.subscription.updated", sub, at=T0 + 10)) == (
        "ends at the period's end, status active")  # quantity 2 is the decrease scheduled: not a change now
    assert (license_now(seeded, bought).cancel_at_period_end, license_now(seeded, bought).quantity) == (True, 5)
    assert apply(seeded, event("customer.subscription.deleted", {**sub, "status": "canceled"}, at=T0 + 20)) == (
        "status canceled")
    with session_scope(seeded.engine, write=False) as session:
        seat = session.exec(select(SeatAssignment).where(SeatAssignment.license_id == bought.id)).one()
    assert seat.unassigned_at is not None and seat.ended_reason == "license_canceled"
    assert license_now(seeded, bought).seats_assigned == 0
