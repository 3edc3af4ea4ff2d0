from __future__ import annotations

import uuid

import pytest

from cf_portal.db import session_scope
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import billing
from cf_portal.services.errors import NotFound
from cf_portal.services.payment_methods import list_payment_methods, make_default
from cf_portal.services.purchase import PurchaseRequest, create_license
from tests.unit.conftest import NOW, TODAY, Seeded


def test_invoices_name_their_license_and_stay_in_their_account(seeded: Seeded, provider: SandboxProvider) -> None:
    card = seeded.add_card(provider)
    plan = seeded.plans["phishing-standard"]
    create_license(seeded.engine, provider, actor=seeded.actor, now=NOW, request=PurchaseRequest(
        reference_name="Helpdesk <b>team</b>", plan_id=plan.id, quantity=3, payment_method_id=card.id,
        expected_total=3600, idempotency_key=uuid.uuid4().hex))
    other = seeded.other_actor()
    with session_scope(seeded.engine, write=False) as session:
        [invoice] = billing.list_invoices(session, account_id=seeded.actor.account_id)
        assert billing.list_invoices(session, account_id=other.account_id) == []
    assert invoice.description.startswith("Helpdesk <b>team</b> · Phishing Simulator Standard × 3")
    assert (invoice.total, invoice.discount, invoice.status) == ("$36.00", "", "paid")


def test_one_default_card_and_only_the_accounts_own(seeded: Seeded, provider: SandboxProvider) -> None:
    first = seeded.add_card(provider)
    second = seeded.add_card(provider, number="5555555555554444")
    assert (first.is_default, second.is_default) == (True, False)
    make_default(seeded.engine, provider, actor=seeded.actor, payment_method_id=second.id, today=TODAY)
    with session_scope(seeded.engine, write=False) as session:
        cards = list_payment_methods(session, account_id=seeded.actor.account_id, today=TODAY)
    assert [(c.last4, c.is_default) for c in cards] == [("4444", True), ("4242", False)]
    other = seeded.other_actor()
    with pytest.raises(NotFound):
        make_default(seeded.engine, provider, actor=other, payment_method_id=first.id, today=TODAY)
