"""Managing a license after its purchase: more seats now (prorated, exactly once), fewer at the renewal (never
below the seats assigned, whatever races it), another plan, cancel and resume, the card billed.

The races are only real on PostgreSQL (see tests/support/concurrency.py); `make test` runs them there too."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, Invoice, License, LicenseChange, LicenseStatus, Role
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.payments.sandbox_tables import SandboxInvoice, SandboxSubscription
from cf_portal.services import license_changes as changes
from cf_portal.services import renewals, seats
from cf_portal.services.actors import Actor
from cf_portal.services.checkout import price
from cf_portal.services.errors import DomainError, NotAllowed, NotFound
from cf_portal.services.periods import period_bounds
from cf_portal.services.purchase import PurchaseRequest, create_license
from cf_portal.services.seats import Holder
from tests.factories import make_employee
from tests.support.concurrency import run_at_once
from tests.unit.conftest import NOW, Seeded

PLAN = "phishing-standard"  # $12.00 a month
DAY = timedelta(days=1)


def buy(seeded: Seeded, provider: SandboxProvider, *, quantity: int = 10, coupon: str = "", plan: str = PLAN,
        card_id: int | None = None, actor: Actor | None = None) -> int:
    card_id = card_id or seeded.add_card(provider, actor=actor).id
    chosen = seeded.plans[plan]
    with session_scope(seeded.engine) as session:
        quote, _, _ = price(session, plan=chosen, quantity=quantity, coupon_code=coupon, now=NOW)
    result = create_license(seeded.engine, provider, actor=actor or seeded.actor, request=PurchaseRequest(
        reference_name="Sales team", plan_id=chosen.id, quantity=quantity, coupon_code=coupon,
        payment_method_id=card_id, expected_total=quote.total, idempotency_key=f"buy-{quantity}-{plan}-{card_id}-x"),
        now=NOW)
    return result.license_id


def license_of(seeded: Seeded, license_id: int) -> License:
    with session_scope(seeded.engine, write=False) as session:
        return session.get(License, license_id)


def sandbox_invoices(seeded: Seeded) -> int:
    with session_scope(seeded.engine, write=False) as session:
        return session.exec(select(sa.func.count()).select_from(SandboxInvoice)).one()


def new_people(seeded: Seeded, count: int) -> list[Holder]:
    with session_scope(seeded.engine) as session:
        account = session.get(Account, seeded.actor.account_id)
        return [Holder(kind="employee", id=make_employee(session, account).id) for _ in range(count)]


def assign(seeded: Seeded, license_id: int, count: int) -> list[Holder]:
    holders = new_people(seeded, count)
    with session_scope(seeded.engine) as session:
        seats.assign(session, actor=seeded.actor, license_id=license_id, holders=holders, now=NOW)
    return holders


def preview_add(seeded: Seeded, license_id: int, add: int, now=NOW + 15 * DAY):  # noqa: ANN001, ANN201
    with session_scope(seeded.engine, write=False) as session:
        return changes.preview_add(session, actor=seeded.actor, license_id=license_id, add=add, now=now)


# --- more seats now ---------------------------------------------------------------------------------------------


def test_adding_licenses_charges_the_rest_of_the_period_prorated_to_the_day(seeded: Seeded,
                                                                            provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=10)
    lic = license_of(seeded, license_id)
    when = NOW + 10 * DAY
    preview = preview_add(seeded, license_id, 3, now=when)
    days_in_period = (lic.period_end.date() - lic.period_start.date()).days
    days_left = (lic.period_end.date() - when.date()).days
    # 3 seats × $12.00 for the days left, rounded half up to the cent; then 13 × $12.00 a month.
    assert preview.due_now == (3 * 1200 * days_left * 2 + days_in_period) // (2 * days_in_period)
    assert preview.next_renewal == 13 * 1200
    assert f"{days_left} days left" in preview.summary

    result = changes.add_licenses(seeded.engine, provider, actor=seeded.actor, license_id=license_id, add=3,
                                  expected_due_now=preview.due_now, idempotency_key="add-three-licenses", now=when)
    assert result.charged == preview.due_now and not result.replayed
    assert license_of(seeded, license_id).quantity == 13
    with session_scope(seeded.engine, write=False) as session:
        invoice = session.exec(select(Invoice).where(Invoice.license_id == license_id, Invoice.kind == "change")).one()
        assert invoice.total == preview.due_now
        sub = session.get(SandboxSubscription, lic.provider_subscription_id)
        assert sub.quantity == 13


def test_the_same_add_sent_twice_or_at_once_charges_once(seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=10)
    preview = preview_add(seeded, license_id, 2)
    before = sandbox_invoices(seeded)
    results = []

    def send(_: int) -> None:
        try:
            results.append(changes.add_licenses(seeded.engine, provider, actor=seeded.actor, license_id=license_id,
                                                add=2, expected_due_now=preview.due_now,
                                                idempotency_key="double-click-add", now=NOW + 15 * DAY))
        except DomainError as exc:  # the other click, refused while the first is being confirmed
            results.append(exc.message)

    run_at_once(6, send)
    again = changes.add_licenses(seeded.engine, provider, actor=seeded.actor, license_id=license_id, add=2,
                                 expected_due_now=preview.due_now, idempotency_key="double-click-add",
                                 now=NOW + 15 * DAY)
    assert again.replayed
    assert sandbox_invoices(seeded) == before + 1
    assert license_of(seeded, license_id).quantity == 12
    assert all(not isinstance(r, str) or "being confirmed" in r for r in results), results


def test_two_admins_adding_at_once_are_each_charged_once_and_get_what_they_paid_for(
        seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=10)
    preview = preview_add(seeded, license_id, 1)
    done: list[int] = []
    refused: list[str] = []

    def send(i: int) -> None:
        try:
            changes.add_licenses(seeded.engine, provider, actor=seeded.actor, license_id=license_id, add=1,
                                 expected_due_now=preview.due_now, idempotency_key=f"admin-{i}-adds-one",
                                 now=NOW + 15 * DAY)
            done.append(i)
        except DomainError as exc:
            refused.append(exc.message)

    before = sandbox_invoices(seeded)
    run_at_once(4, send)
    assert len(done) + len(refused) == 4 and done
    assert all("Another change of this license is being confirmed" in m for m in refused), refused
    # Every charge bought a seat, and every seat was charged.
    assert sandbox_invoices(seeded) == before + len(done)
    assert license_of(seeded, license_id).quantity == 10 + len(done)


def test_a_declined_card_adds_nothing_and_a_changed_price_is_refused(seeded: Seeded,
                                                                     provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=10)
    failing = seeded.add_card(provider, number="4000000000000341")
    changes.change_card(seeded.engine, provider, actor=seeded.actor, license_id=license_id,
                        payment_method_id=failing.id, now=NOW)
    preview = preview_add(seeded, license_id, 2)
    with pytest.raises(DomainError, match="declined. Nothing was charged and the license is unchanged"):
        changes.add_licenses(seeded.engine, provider, actor=seeded.actor, license_id=license_id, add=2,
                             expected_due_now=preview.due_now, idempotency_key="declined-add-key", now=NOW + 15 * DAY)
    assert license_of(seeded, license_id).quantity == 10
    with pytest.raises(DomainError, match="price has changed"):
        changes.add_licenses(seeded.engine, provider, actor=seeded.actor, license_id=license_id, add=2,
                             expected_due_now=preview.due_now + 1, idempotency_key="stale-price-add-key",
                             now=NOW + 15 * DAY)
    with session_scope(seeded.engine, write=False) as session:
        statuses = session.exec(select(LicenseChange.status).order_by(LicenseChange.id)).all()
    assert statuses == ["failed"]


# --- fewer seats at the renewal -----------------------------------------------------------------------------------


def test_removing_licenses_below_the_assigned_count_is_refused_with_how_many_to_free(
        seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=10)
    assign(seeded, license_id, 7)
    with pytest.raises(DomainError, match="7 licenses are assigned. Free 2 seats first, then reduce to 5."):
        changes.schedule_decrease(seeded.engine, provider, actor=seeded.actor, license_id=license_id, quantity=5,
                                  now=NOW)
    assert license_of(seeded, license_id).next_quantity is None


def test_a_decrease_takes_effect_at_the_renewal_and_can_be_withdrawn_until_then(
        seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=10)
    lic = license_of(seeded, license_id)
    text = changes.schedule_decrease(seeded.engine, provider, actor=seeded.actor, license_id=license_id, quantity=6,
                                     now=NOW)
    assert text == f"10 → 6 on {changes.day(lic.period_end)}"
    assert license_of(seeded, license_id).quantity == 10  # the seats bought are kept until the renewal
    changes.withdraw_decrease(seeded.engine, provider, actor=seeded.actor, license_id=license_id, now=NOW)
    assert license_of(seeded, license_id).next_quantity is None
    changes.schedule_decrease(seeded.engine, provider, actor=seeded.actor, license_id=license_id, quantity=4, now=NOW)
    renewals.bill_due(seeded.engine, provider, now=lic.period_end + timedelta(hours=1))
    after = license_of(seeded, license_id)
    assert (after.quantity, after.next_quantity, after.periods_billed) == (4, None, 2)
    with session_scope(seeded.engine, write=False) as session:
        renewal = session.exec(select(Invoice).where(Invoice.license_id == license_id,
                                                     Invoice.kind == "renewal")).one()
    assert renewal.total == 4 * 1200  # no refund for the month that was paid, 4 seats from the renewal on


def test_a_decrease_racing_fifty_assignments_never_leaves_more_seats_assigned_than_it_keeps(
        seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=60)
    assign(seeded, license_id, 10)
    holders = new_people(seeded, 50)
    outcomes: list[str] = []

    def work(i: int) -> None:
        try:
            if i == 50:
                changes.schedule_decrease(seeded.engine, provider, actor=seeded.actor, license_id=license_id,
                                          quantity=20, now=NOW)
                outcomes.append("decreased")
            else:
                with session_scope(seeded.engine) as session:
                    seats.assign(session, actor=seeded.actor, license_id=license_id, holders=[holders[i]], now=NOW)
                outcomes.append("assigned")
        except DomainError as exc:
            outcomes.append(exc.message)

    run_at_once(51, work)
    lic = license_of(seeded, license_id)
    keeps = lic.next_quantity or lic.quantity
    assert lic.seats_assigned <= keeps
    assert lic.seats_assigned == 10 + outcomes.count("assigned")
    if "decreased" in outcomes:
        assert lic.next_quantity == 20 and outcomes.count("assigned") <= 10
    else:  # the assignments came first: the decrease was refused in words
        assert any("licenses are assigned. Free" in o or "assigned a moment ago" in o for o in outcomes), outcomes
    assert all(o in ("assigned", "decreased") or "seat" in o.lower() for o in outcomes), set(outcomes)


def test_seats_above_a_scheduled_decrease_cannot_be_assigned(seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=10)
    assign(seeded, license_id, 3)
    changes.schedule_decrease(seeded.engine, provider, actor=seeded.actor, license_id=license_id, quantity=4, now=NOW)
    assign(seeded, license_id, 1)
    with pytest.raises(seats.NotEnoughSeats):
        assign(seeded, license_id, 1)
    with session_scope(seeded.engine) as session, pytest.raises(sa.exc.IntegrityError):
        # The database holds the rule too, whatever code writes.
        session.execute(sa.update(License).where(License.id == license_id).values(seats_assigned=5))


# --- plans, cancel, resume, card ---------------------------------------------------------------------------------


def test_an_upgrade_is_charged_now_prorated_and_a_downgrade_waits_for_the_renewal(
        seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=5)
    dearer, cheaper = seeded.plans["phishing-advanced"], seeded.plans[PLAN]
    when = NOW + 20 * DAY
    with session_scope(seeded.engine, write=False) as session:
        up = changes.preview_plan_change(session, actor=seeded.actor, license_id=license_id, plan_id=dearer.id,
                                         now=when)
    lic = license_of(seeded, license_id)
    days_in_period = (lic.period_end.date() - lic.period_start.date()).days
    days_left = (lic.period_end.date() - when.date()).days
    difference = 5 * (dearer.unit_amount - cheaper.unit_amount)
    assert up.due_now == (difference * days_left * 2 + days_in_period) // (2 * days_in_period)
    changes.change_plan(seeded.engine, provider, actor=seeded.actor, license_id=license_id, plan_id=dearer.id,
                        expected_due_now=up.due_now, idempotency_key="upgrade-to-advanced", now=when)
    assert (license_of(seeded, license_id).plan_id, license_of(seeded, license_id).unit_amount) == (
        dearer.id, dearer.unit_amount)

    with session_scope(seeded.engine, write=False) as session:
        down = changes.preview_plan_change(session, actor=seeded.actor, license_id=license_id, plan_id=cheaper.id,
                                           now=when)
    assert down.at_renewal and down.due_now == 0 and down.next_renewal == 5 * cheaper.unit_amount
    changes.change_plan(seeded.engine, provider, actor=seeded.actor, license_id=license_id, plan_id=cheaper.id,
                        expected_due_now=0, idempotency_key="downgrade-to-standard", now=when)
    assert license_of(seeded, license_id).plan_id == dearer.id
    assert license_of(seeded, license_id).next_plan_id == cheaper.id
    renewals.bill_due(seeded.engine, provider, now=lic.period_end + timedelta(hours=1))
    assert license_of(seeded, license_id).plan_id == cheaper.id


def test_a_plan_of_another_product_is_not_found(seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=5)
    other = next(p for code, p in seeded.plans.items() if not code.startswith("phishing"))
    with pytest.raises(NotFound):
        changes.change_plan(seeded.engine, provider, actor=seeded.actor, license_id=license_id, plan_id=other.id,
                            expected_due_now=0, idempotency_key="another-product-plan", now=NOW)


def test_cancel_keeps_the_seats_until_the_period_ends_and_resume_takes_it_back(
        seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=5)
    assign(seeded, license_id, 2)
    lic = license_of(seeded, license_id)
    assert changes.set_cancel(seeded.engine, provider, actor=seeded.actor, license_id=license_id, cancel=True,
                              now=NOW) == changes.day(lic.period_end)
    with session_scope(seeded.engine, write=False) as session:
        assert session.get(SandboxSubscription, lic.provider_subscription_id).cancel_at_period_end
        detail = changes.license_detail(session, actor=seeded.actor, license_id=license_id)
    assert detail.ends_on == f"Ends on {changes.day(lic.period_end)}" and detail.renews_on == ""
    changes.set_cancel(seeded.engine, provider, actor=seeded.actor, license_id=license_id, cancel=False, now=NOW)
    assert not license_of(seeded, license_id).cancel_at_period_end
    changes.set_cancel(seeded.engine, provider, actor=seeded.actor, license_id=license_id, cancel=True, now=NOW)
    assert renewals.bill_due(seeded.engine, provider, now=lic.period_end) == {"ended": 1}
    ended = license_of(seeded, license_id)
    assert (ended.status, ended.seats_assigned, ended.canceled_at) == ("canceled", 0, lic.period_end)
    with session_scope(seeded.engine, write=False) as session:
        history = changes.license_detail(session, actor=seeded.actor, license_id=license_id).history
    assert len(history) == 2 and all(not event.is_open for event in history)


def test_a_past_due_license_is_paid_when_its_card_is_changed(seeded: Seeded, provider: SandboxProvider) -> None:
    good = seeded.add_card(provider)
    license_id = buy(seeded, provider, quantity=3, card_id=good.id)
    failing = seeded.add_card(provider, number="4000000000000341")
    changes.change_card(seeded.engine, provider, actor=seeded.actor, license_id=license_id,
                        payment_method_id=failing.id, now=NOW)
    end = license_of(seeded, license_id).period_end
    assert renewals.bill_due(seeded.engine, provider, now=end) == {"failed": 1}
    assert license_of(seeded, license_id).status == LicenseStatus.PAST_DUE.value
    message = changes.change_card(seeded.engine, provider, actor=seeded.actor, license_id=license_id,
                                  payment_method_id=good.id, now=end + DAY / 2)
    assert message.startswith("Card changed and the overdue renewal paid")
    lic = license_of(seeded, license_id)
    assert (lic.status, lic.periods_billed, lic.renewal_failures) == ("active", 2, 0)
    assert lic.period_end == period_bounds(lic.created_at, 1)[1]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.LICENSE_ADMIN])
def test_only_owners_and_billing_admins_change_licenses(seeded: Seeded, provider: SandboxProvider, role: Role) -> None:
    license_id = buy(seeded, provider, quantity=5)
    member = seeded.actor.model_copy(update={"role": role.value})
    calls = [
        lambda: changes.add_licenses(seeded.engine, provider, actor=member, license_id=license_id, add=1,
                                     expected_due_now=0, idempotency_key="not-allowed-add-key", now=NOW),
        lambda: changes.schedule_decrease(seeded.engine, provider, actor=member, license_id=license_id, quantity=2,
                                          now=NOW),
        lambda: changes.set_cancel(seeded.engine, provider, actor=member, license_id=license_id, cancel=True, now=NOW),
        lambda: changes.change_plan(seeded.engine, provider, actor=member, license_id=license_id,
                                    plan_id=seeded.plans["phishing-advanced"].id, expected_due_now=0,
                                    idempotency_key="not-allowed-plan-key", now=NOW),
        lambda: renewals.pay_now(seeded.engine, provider, actor=member, license_id=license_id, now=NOW),
    ]
    for call in calls:
        with pytest.raises(NotAllowed, match="Only owners and billing admins can change or cancel licenses."):
            call()
    assert license_of(seeded, license_id).quantity == 5


def test_another_accounts_license_is_not_found_by_any_step(seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=5)
    stranger = seeded.other_actor()
    with session_scope(seeded.engine, write=False) as session:
        with pytest.raises(NotFound):
            changes.license_detail(session, actor=stranger, license_id=license_id)
        with pytest.raises(NotFound):
            changes.preview_add(session, actor=stranger, license_id=license_id, add=1, now=NOW)
    for call in (
        lambda: changes.add_licenses(seeded.engine, provider, actor=stranger, license_id=license_id, add=1,
                                     expected_due_now=0, idempotency_key="stranger-add-key-1", now=NOW),
        lambda: changes.schedule_decrease(seeded.engine, provider, actor=stranger, license_id=license_id,
                                          quantity=2, now=NOW),
        lambda: changes.withdraw_decrease(seeded.engine, provider, actor=stranger, license_id=license_id, now=NOW),
        lambda: changes.set_cancel(seeded.engine, provider, actor=stranger, license_id=license_id, cancel=True,
                                   now=NOW),
        lambda: changes.change_card(seeded.engine, provider, actor=stranger, license_id=license_id,
                                    payment_method_id=1, now=NOW),
        lambda: renewals.pay_now(seeded.engine, provider, actor=stranger, license_id=license_id, now=NOW),
    ):
        with pytest.raises(NotFound):
            call()
    lic = license_of(seeded, license_id)
    assert (lic.quantity, lic.next_quantity, lic.cancel_at_period_end) == (5, None, False)


def test_detail_says_what_the_next_renewal_charges_and_when_the_discount_ends(
        seeded: Seeded, provider: SandboxProvider) -> None:
    license_id = buy(seeded, provider, quantity=10, coupon="SPRING15")
    with session_scope(seeded.engine, write=False) as session:
        detail = changes.license_detail(session, actor=seeded.actor, license_id=license_id)
    lic = license_of(seeded, license_id)
    assert detail.discount == "15% off for 3 months"
    assert detail.discount_ends == f"Discount ends on {changes.day(period_bounds(lic.created_at, 3)[0])}"
    assert (detail.monthly_now, detail.next_amount) == ("$102.00", "$102.00")
    assert detail.renews_on == changes.day(lic.period_end) and detail.card.endswith("4242")
    assert [i.total for i in detail.invoices] == ["$102.00"]


def test_reconcile_finds_nothing_to_report_through_a_year_of_changes_and_failed_renewals(
        seeded: Seeded, provider: SandboxProvider) -> None:
    from cf_portal.services.provider_sync import reconcile

    good = seeded.add_card(provider)
    kept = buy(seeded, provider, quantity=8, card_id=good.id)
    failing = buy(seeded, provider, quantity=4, plan="awareness-business", card_id=good.id)
    changes.schedule_decrease(seeded.engine, provider, actor=seeded.actor, license_id=kept, quantity=5, now=NOW)
    bad = seeded.add_card(provider, number="4000000000000341")
    changes.change_card(seeded.engine, provider, actor=seeded.actor, license_id=failing, payment_method_id=bad.id,
                        now=NOW)
    assert [str(d) for d in reconcile(seeded.engine, provider, repair=False, now=NOW)] == []
    end = license_of(seeded, kept).period_end
    for days in (0, 1, 3, 5):  # the renewal, then its retries: past due, then suspended
        renewals.bill_due(seeded.engine, provider, now=end + days * DAY + timedelta(hours=1))
    assert license_of(seeded, failing).status == LicenseStatus.SUSPENDED.value
    assert license_of(seeded, kept).quantity == 5
    assert [str(d) for d in reconcile(seeded.engine, provider, repair=False, now=end + 6 * DAY)] == []


def test_a_change_left_unconfirmed_is_finished_later_with_its_own_key_and_charged_once(
        seeded: Seeded, provider: SandboxProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    from cf_portal.payments.provider import ProviderUnavailable

    license_id = buy(seeded, provider, quantity=10)
    preview = preview_add(seeded, license_id, 2)
    real = provider.change_subscription

    def charges_then_times_out(**kwargs):  # noqa: ANN003, ANN202
        real(**kwargs)  # the provider charged, but its answer never came back
        raise ProviderUnavailable("timeout", "No answer.")

    monkeypatch.setattr(provider, "change_subscription", charges_then_times_out)
    with pytest.raises(changes.ChangeUnconfirmed):
        changes.add_licenses(seeded.engine, provider, actor=seeded.actor, license_id=license_id, add=2,
                             expected_due_now=preview.due_now, idempotency_key="left-unconfirmed-add",
                             now=NOW + 15 * DAY)
    monkeypatch.setattr(provider, "change_subscription", real)
    before = sandbox_invoices(seeded)
    assert license_of(seeded, license_id).quantity == 10
    with pytest.raises(DomainError, match="Another change of this license is being confirmed"):
        changes.add_licenses(seeded.engine, provider, actor=seeded.actor, license_id=license_id, add=1,
                             expected_due_now=preview_add(seeded, license_id, 1).due_now,
                             idempotency_key="another-add-meanwhile", now=NOW + 15 * DAY)
    # A day later (the buyer never came back), resolve-pending sends it again with the same key.
    outcome = changes.resolve_pending_changes(seeded.engine, provider, older_than=timedelta(minutes=15),
                                              now=NOW + 16 * DAY)
    assert outcome == {"confirmed": 1, "undone": 0, "still_unavailable": 0}
    assert sandbox_invoices(seeded) == before  # the first charge was the only one
    assert license_of(seeded, license_id).quantity == 12
