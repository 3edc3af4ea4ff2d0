"""The Add License screen's rules: what is on sale, field checks and the price panel.

The tests of provider look-ups at the same moment are only real races on PostgreSQL (on SQLite writers queue up behind
`BEGIN IMMEDIATE`); `make test` runs them there too. See tests/support/concurrency.py."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, Plan, User
from cf_portal.payments.provider import PaymentError, ProviderUnavailable
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import checkout, throttle
from cf_portal.services.actors import Actor, actor_for_user
from cf_portal.services.errors import DomainError, NotAllowed
from tests.unit.conftest import NOW, TODAY, Seeded


def test_retired_plans_are_not_offered(seeded: Seeded) -> None:
    with session_scope(seeded.engine) as session:
        session.execute(sa.update(Plan).where(Plan.code == "awareness-business").values(retired_at=NOW))
    with session_scope(seeded.engine, write=False) as session:
        catalog = checkout.load_catalog(session)
    offered = [(p.product_id, p.name) for p in catalog.plans]
    assert (seeded.plans["awareness-starter"].product_id, "Business") not in offered
    assert len(offered) == 6
    assert catalog.plans[0].label == "Starter — $9.00 per license / month"


@pytest.mark.parametrize(("text", "ok"), [("1", 1), (" 1,000 ", 1000), ("0", None), ("1001", None), ("-2", None),
                                          ("2.0", None), ("", None), ("ten", None)])
def test_quantity_is_a_whole_number_from_1_to_1000(text: str, ok: int | None) -> None:
    if ok is None:
        with pytest.raises(DomainError):
            checkout.check_quantity(text)
    else:
        assert checkout.check_quantity(text) == ok


def test_price_panel_says_what_you_pay_now_and_later(seeded: Seeded) -> None:
    with session_scope(seeded.engine, write=False) as session:
        panel = checkout.price_panel(session, plan_id=seeded.plans["phishing-standard"].id, quantity=10,
                                     coupon_code="spring15", now=NOW)
        bad = checkout.price_panel(session, plan_id=seeded.plans["darkweb-pro"].id, quantity=2,
                                   coupon_code="PHISH25", now=NOW)
    assert (panel.subtotal, panel.discount, panel.total_display) == ("$120.00", "−$18.00", "$102.00")
    assert panel.coupon_message == "15% off for 3 months" and panel.discount_note == "for 3 months"
    assert panel.after_discount == "Then $120.00 / month after the discount ends"
    assert (bad.coupon_status, bad.total_display) == ("invalid", "$58.00")


class PricingProvider(SandboxProvider):
    """A provider that prices with its own catalog, as Stripe does: it previews the first invoice (with the
    total given here, or an error) and records what it was asked."""

    previews_invoices = True

    def __init__(self, engine: sa.Engine, *, total: int | None = None, error: PaymentError | None = None) -> None:
        super().__init__(engine, today=lambda: TODAY)
        self.total, self.error = total, error
        self.asked: list[dict[str, object]] = []

    def preview_first_invoice(self, **kwargs: object) -> int:
        self.asked.append(kwargs)
        if self.error is not None:
            raise self.error
        return self.total


def confirm(seeded: Seeded, provider: SandboxProvider, coupon: str, *, actor: Actor | None = None,
            quantity: int = 10) -> checkout.PricePanel | None:
    return checkout.confirm_price_with_provider(seeded.engine, provider, actor=actor or seeded.actor,
                                                plan_id=seeded.plans["phishing-standard"].id, quantity=quantity,
                                                coupon_code=coupon, now=NOW)


def portal_panel(seeded: Seeded, coupon: str, quantity: int = 10) -> checkout.PricePanel:
    with session_scope(seeded.engine, write=False) as session:
        return checkout.price_panel(session, plan_id=seeded.plans["phishing-standard"].id, quantity=quantity,
                                    coupon_code=coupon, now=NOW)


def test_a_coupon_is_confirmed_by_the_providers_own_preview(seeded: Seeded) -> None:
    shown = portal_panel(seeded, "spring15")
    provider = PricingProvider(seeded.engine, total=shown.total)
    assert confirm(seeded, provider, "spring15") is None  # the provider agrees: the panel stands
    [asked] = provider.asked
    assert (asked["plan_code"], asked["quantity"], asked["coupon_code"]) == ("phishing-standard", 10, "SPRING15")
    with session_scope(seeded.engine, write=False) as session:  # the customer was made on this first need
        assert session.get(Account, seeded.actor.account_id).provider_customer_id == asked["customer_id"]


def test_a_preview_that_differs_shows_the_price_without_the_coupon(seeded: Seeded) -> None:
    shown = portal_panel(seeded, "spring15")
    panel = confirm(seeded, PricingProvider(seeded.engine, total=shown.total - 1), "spring15")
    assert panel is not None
    assert (panel.coupon_status, panel.coupon_message) == ("invalid", checkout.COUPON_UNCONFIRMED)
    assert panel.total == portal_panel(seeded, "").total and panel.discount == ""


def test_a_code_the_provider_does_not_have_says_so(seeded: Seeded) -> None:
    error = PaymentError("coupon_unavailable", "This coupon code can't be used right now.", field="coupon_code")
    panel = confirm(seeded, PricingProvider(seeded.engine, error=error), "SPRING15")
    assert panel is not None
    assert (panel.coupon_status, panel.coupon_message) == ("invalid", "This coupon code can't be used right now.")


def test_only_codes_the_portal_accepts_reach_the_provider(seeded: Seeded) -> None:
    provider = PricingProvider(seeded.engine, total=1)
    assert confirm(seeded, provider, "") is None
    refused = confirm(seeded, provider, "NOSUCHCODE")  # the portal's own refusal (looked up: counted)
    assert refused.coupon_message == "This coupon code doesn't exist. Check the spelling."
    assert provider.asked == []


def test_a_provider_that_does_not_answer_leaves_the_portals_price_for_create_to_check(seeded: Seeded) -> None:
    provider = PricingProvider(seeded.engine, error=ProviderUnavailable("provider_unavailable", "timeout"))
    assert confirm(seeded, provider, "SPRING15") is None
    assert len(provider.asked) == 1


def test_members_who_cannot_buy_cannot_ask_the_provider(seeded: Seeded) -> None:
    with session_scope(seeded.engine, write=False) as session:
        viewer = actor_for_user(session, session.exec(
            select(User.id).where(User.account_id == seeded.actor.account_id, User.role == "viewer")).first())
    provider = PricingProvider(seeded.engine, total=1)
    with pytest.raises(NotAllowed):
        confirm(seeded, provider, "SPRING15", actor=viewer)
    assert provider.asked == []


def test_the_provider_confirmation_respects_and_counts_the_coupon_throttle(seeded: Seeded) -> None:
    provider = PricingProvider(seeded.engine, total=1)
    for guess in range(throttle.COUPON_ACCOUNT.free):
        assert confirm(seeded, provider, f"NOSUCH{guess}").coupon_status == "invalid"
    # The free guesses are used up by the confirmations alone: the next code waits, even a real one.
    waiting = confirm(seeded, provider, "SPRING15")
    assert waiting is not None and waiting.coupon_message.startswith("Too many coupon codes")
    assert waiting.discount == "" and provider.asked == []


def test_provider_look_ups_are_budgeted_per_account(seeded: Seeded) -> None:
    """Stripe's rate limit is shared by every account: one account's confirmations stop at its budget (the
    portal's panel then stands, and Create asks the provider again before it charges)."""
    provider = PricingProvider(seeded.engine, total=portal_panel(seeded, "spring15").total)
    tries = throttle.PROVIDER_LOOKUPS.calls + 5
    assert [confirm(seeded, provider, "spring15") for _ in range(tries)] == [None] * tries
    assert len(provider.asked) == throttle.PROVIDER_LOOKUPS.calls
    confirm(seeded, provider, "spring15", actor=seeded.other_actor())  # another account has its own budget
    assert len(provider.asked) == throttle.PROVIDER_LOOKUPS.calls + 1


def test_confirmations_sent_at_once_do_not_pass_the_budget(seeded: Seeded) -> None:
    """Many tabs (or a crafted client) confirming at the same moment: the budget's count is one atomic upsert, so
    no more look-ups reach the provider than it allows (run it with DB=postgres)."""
    from tests.support.concurrency import run_at_once

    provider = PricingProvider(seeded.engine, total=portal_panel(seeded, "spring15").total)
    confirm(seeded, provider, "spring15")  # the customer exists first: the race is about the look-ups
    run_at_once(throttle.PROVIDER_LOOKUPS.calls + 10, lambda _: confirm(seeded, provider, "spring15"))
    assert len(provider.asked) == throttle.PROVIDER_LOOKUPS.calls
