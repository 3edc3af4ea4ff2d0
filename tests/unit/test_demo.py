""""Try the demo": each visitor gets an own copy of the demo account, capped, expired and purged after a day.

The tests of demo copies at the same moment are only real races on PostgreSQL (on SQLite writers queue up behind
`BEGIN IMMEDIATE`); `make test` runs them there too. See tests/support/concurrency.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import all_metadata, session_scope
from cf_portal.models import Account, ChildAccount, Coupon, Employee, License, Role, User
from cf_portal.payments.provider import PaymentError
from cf_portal.payments.sandbox import SandboxProvider
from cf_portal.services import auth, demo
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, SignInRequired
from cf_portal.services.purchase import create_license
from cf_portal.services.seed import DEMO_MEMBERS
from tests.unit.conftest import NOW, Seeded
from tests.unit.test_purchase import request_for


def try_demo(seeded: Seeded, at=NOW, max_copies: int = 200) -> tuple[Actor, auth.SignedIn]:  # noqa: ANN001
    with session_scope(seeded.engine) as session:
        signed_in = auth.demo_owner_session(session, now=at, max_copies=max_copies)
    with session_scope(seeded.engine, write=False) as session:
        return auth.actor_for_token(session, signed_in.token, now=at), signed_in


def people(seeded: Seeded, account_id: int) -> dict[str, set[tuple]]:
    with session_scope(seeded.engine, write=False) as session:
        return {
            "members": {(u.email, u.name, u.role) for u in session.exec(
                select(User).where(User.account_id == account_id, User.removed_at.is_(None)))},
            "employees": {(e.name, e.email, e.department) for e in session.exec(
                select(Employee).where(Employee.account_id == account_id))},
            "child accounts": {(c.name, c.contact_email) for c in session.exec(
                select(ChildAccount).where(ChildAccount.account_id == account_id))},
        }


def seed_people_of_copy(seeded: Seeded, account_id: int) -> dict[str, set[tuple]]:
    """The seeded people, as a copy has them: members with addresses of their own (emails are unique across
    accounts), the template's employees and child accounts."""
    template = people(seeded, seeded.actor.account_id)
    assert len(template["employees"]) == 25 and len(template["child accounts"]) == 2
    return {**template, "members": {(email.replace("@", f"+{account_id}@"), name, role.value)
                                    for email, name, role in DEMO_MEMBERS}}


def rows_of(seeded: Seeded, account_id: int) -> dict[str, int]:
    """How many rows of each of the portal's tables belong to the account (the sandbox's own tables stand for
    the payment provider's records, which the provider keeps)."""
    with seeded.engine.connect() as conn:
        counts = {table.name: conn.execute(sa.select(sa.func.count()).select_from(table)
                                           .where(table.c.account_id == account_id)).scalar_one()
                  for table in all_metadata().sorted_tables
                  if "account_id" in table.c and not table.name.startswith("sandbox_")}
        counts["account"] = conn.execute(sa.select(sa.func.count()).select_from(Account)
                                         .where(Account.id == account_id)).scalar_one()
    return {name: count for name, count in counts.items() if count}


def buy(seeded: Seeded, provider: SandboxProvider, actor: Actor, coupon: str = "WELCOME20") -> License:
    pm = seeded.add_card(provider, actor=actor)
    result = create_license(seeded.engine, provider, actor=actor, request=request_for(seeded, pm.id, coupon=coupon),
                            now=NOW)
    with session_scope(seeded.engine, write=False) as session:
        return session.get(License, result.license_id)


def times_redeemed(seeded: Seeded, code: str) -> int:
    with session_scope(seeded.engine, write=False) as session:
        return session.exec(select(Coupon.times_redeemed).where(Coupon.code == code)).one()


def test_each_visitor_of_the_demo_gets_an_own_copy_of_the_demo_account(seeded: Seeded) -> None:
    first, first_in = try_demo(seeded)
    second, second_in = try_demo(seeded)
    template = seeded.actor.account_id
    assert len({first.account_id, second.account_id, template}) == 3
    assert len({first.user_id, second.user_id, seeded.actor.user_id}) == 3
    for visitor in (first, second):
        assert (visitor.role, visitor.account_name) == (Role.OWNER.value, "Acme Security Ltd")
        assert people(seeded, visitor.account_id) == seed_people_of_copy(seeded, visitor.account_id)
        assert visitor.email == f"owner+{visitor.account_id}@acme-security.example"
    # One visitor's "Sign out everywhere" (or password change) signs nobody else out.
    with session_scope(seeded.engine) as session:
        auth.end_all_sessions(session, user_id=first.user_id)
    with session_scope(seeded.engine, write=False) as session:
        assert auth.actor_for_token(session, second_in.token, now=NOW).user_id == second.user_id
        with pytest.raises(SignInRequired):
            auth.actor_for_token(session, first_in.token, now=NOW)
        copy = session.get(Account, first.account_id)
        assert copy.demo_expires_at == NOW + demo.DEMO_COPY_LIFETIME
        assert session.get(Account, template).demo_expires_at is None  # the template never expires


def test_a_copy_always_has_its_owner_even_when_the_template_owner_was_demoted(seeded: Seeded) -> None:
    with session_scope(seeded.engine) as session:
        owner = session.get(User, seeded.actor.user_id)
        owner.role, owner.removed_at = Role.VIEWER.value, NOW
    visitor, _ = try_demo(seeded)
    assert visitor.role == Role.OWNER.value and visitor.account_id != seeded.actor.account_id


def test_copying_the_demo_account_is_quick(seeded: Seeded) -> None:
    """It happens on a click: a copy (members, 25 employees, 2 child accounts) and a session well under 0.2 s."""
    try_demo(seeded)  # warm up
    started = time.perf_counter()
    for minute in range(10):
        try_demo(seeded, at=NOW + timedelta(minutes=minute))
    per_copy = (time.perf_counter() - started) / 10
    print(f"\ncopying the demo account and signing in: {per_copy * 1000:.1f} ms per visitor")
    assert per_copy < 0.2


def test_the_number_of_live_demo_copies_is_capped(seeded: Seeded) -> None:
    try_demo(seeded, max_copies=2)
    try_demo(seeded, max_copies=2)
    with pytest.raises(DomainError, match="demo"):
        try_demo(seeded, max_copies=2)
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(sa.func.count()).select_from(Account)).one() == 3  # template + 2 copies
    # Expired copies do not count, even before they are purged.
    later, _ = try_demo(seeded, at=NOW + demo.DEMO_COPY_LIFETIME, max_copies=2)
    assert later.role == Role.OWNER.value


def test_the_cap_holds_when_many_visitors_click_at_once(seeded: Seeded) -> None:
    from tests.support.concurrency import run_at_once

    outcomes: list[str] = []

    def click(_: int) -> None:
        try:
            try_demo(seeded, max_copies=3)
            outcomes.append("copy")
        except DomainError:
            outcomes.append("refused")

    run_at_once(6, click)
    assert sorted(outcomes) == ["copy"] * 3 + ["refused"] * 3


def test_an_expired_copy_cannot_be_used_even_before_it_is_purged(seeded: Seeded) -> None:
    visitor, signed_in = try_demo(seeded)
    with session_scope(seeded.engine) as session:  # a session that outlives the copy (a remembered sign-in)
        late = auth.start_session(session, user_id=visitor.user_id, remember=True, now=NOW)
    with session_scope(seeded.engine, write=False) as session:
        auth.actor_for_token(session, late.token, now=NOW + timedelta(hours=23))
        with pytest.raises(SignInRequired):
            auth.actor_for_token(session, late.token, now=NOW + demo.DEMO_COPY_LIFETIME)


def test_purging_deletes_expired_copies_with_all_they_own_after_cancelling_their_subscriptions(
        seeded: Seeded, provider: SandboxProvider) -> None:
    expired, _ = try_demo(seeded)
    live, _ = try_demo(seeded, at=NOW + timedelta(hours=12))
    bought = buy(seeded, provider, expired)
    kept = buy(seeded, provider, live, coupon="")
    assert times_redeemed(seeded, "WELCOME20") == 1
    template_rows = rows_of(seeded, seeded.actor.account_id)
    live_rows = rows_of(seeded, live.account_id)
    assert {"license", "invoice", "payment_method", "coupon_redemption", "employee"} <= set(rows_of(
        seeded, expired.account_id))

    at = NOW + demo.DEMO_COPY_LIFETIME + timedelta(minutes=1)
    report = demo.purge_expired_copies(seeded.engine, provider, now=at)
    assert (report.deleted, report.kept) == (1, [])
    assert rows_of(seeded, expired.account_id) == {}
    assert provider.get_subscription(subscription_id=bought.provider_subscription_id).status == "canceled"
    assert provider.get_subscription(subscription_id=kept.provider_subscription_id).status == "active"
    assert rows_of(seeded, live.account_id) == live_rows
    assert rows_of(seeded, seeded.actor.account_id) == template_rows
    assert times_redeemed(seeded, "WELCOME20") == 0  # the copy's redemption went with it
    with session_scope(seeded.engine, write=False) as session:
        assert session.exec(select(User).where(User.account_id == expired.account_id)).first() is None
    assert demo.purge_expired_copies(seeded.engine, provider, now=at).deleted == 0


def test_a_copy_whose_subscription_cannot_be_cancelled_is_kept_for_the_next_purge(
        seeded: Seeded, provider: SandboxProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    visitor, _ = try_demo(seeded)
    buy(seeded, provider, visitor)
    before = rows_of(seeded, visitor.account_id)

    def unreachable(**_: str) -> None:
        raise PaymentError("api_error", "The provider is unreachable.")

    monkeypatch.setattr(provider, "cancel_subscription", unreachable)
    report = demo.purge_expired_copies(seeded.engine, provider, now=NOW + timedelta(days=2))
    assert report.deleted == 0 and len(report.kept) == 1 and "unreachable" in report.kept[0]
    assert rows_of(seeded, visitor.account_id) == before
    monkeypatch.undo()
    assert demo.purge_expired_copies(seeded.engine, provider, now=NOW + timedelta(days=2)).deleted == 1


def test_resetting_a_copy_cancels_its_subscriptions_and_touches_no_other_account(
        seeded: Seeded, provider: SandboxProvider) -> None:
    visitor, signed_in = try_demo(seeded)
    other, _ = try_demo(seeded)
    bought = buy(seeded, provider, visitor)
    other_bought = buy(seeded, provider, other, coupon="")
    with session_scope(seeded.engine) as session:
        session.add(Employee(account_id=visitor.account_id, name="Extra Person", email="extra@example.com"))
        session.get(User, visitor.user_id).password_hash = "changed"
    other_rows = rows_of(seeded, other.account_id)

    demo.reset_demo_account(seeded.engine, provider, actor=visitor, now=NOW)
    assert provider.get_subscription(subscription_id=bought.provider_subscription_id).status == "canceled"
    assert provider.get_subscription(subscription_id=other_bought.provider_subscription_id).status == "active"
    assert people(seeded, visitor.account_id) == seed_people_of_copy(seeded, visitor.account_id)
    assert not {"license", "invoice", "payment_method"} & set(rows_of(seeded, visitor.account_id))
    assert rows_of(seeded, other.account_id) == other_rows
    assert times_redeemed(seeded, "WELCOME20") == 0
    with session_scope(seeded.engine, write=False) as session:  # the visitor stays signed in
        assert auth.actor_for_token(session, signed_in.token, now=NOW).account_id == visitor.account_id


def test_only_an_owner_of_a_demo_account_may_reset_it(seeded: Seeded, provider: SandboxProvider) -> None:
    customer = seeded.other_actor()
    with pytest.raises(DomainError):
        demo.reset_demo_account(seeded.engine, provider, actor=customer, now=NOW)


def test_the_reset_demo_command_cancels_the_demo_accounts_subscriptions_before_deleting_its_licenses(
        cli_database: sa.Engine, seeded: Seeded, provider: SandboxProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    from cf_portal import cli, settings

    monkeypatch.setenv("CF_DEMO_MODE", "true")
    settings.get_settings.cache_clear()
    bought = buy(seeded, provider, seeded.actor)
    assert cli.main(["reset-demo"]) == 0
    assert provider.get_subscription(subscription_id=bought.provider_subscription_id).status == "canceled"
    assert "license" not in rows_of(seeded, seeded.actor.account_id)


def test_the_purge_expired_command_purges_expired_demo_copies(cli_database: sa.Engine, seeded: Seeded,
                                                              provider: SandboxProvider) -> None:
    from datetime import UTC, datetime

    from cf_portal import cli

    expired, _ = try_demo(seeded, at=datetime.now(UTC) - timedelta(days=2))
    live, _ = try_demo(seeded, at=datetime.now(UTC))
    bought = buy(seeded, provider, expired)
    assert cli.main(["purge-expired"]) == 0
    assert rows_of(seeded, expired.account_id) == {}
    assert provider.get_subscription(subscription_id=bought.provider_subscription_id).status == "canceled"
    assert rows_of(seeded, live.account_id)["user"] == len(DEMO_MEMBERS)


# --- Advance one month ----------------------------------------------------------------------------------------


def advance(seeded: Seeded, provider: SandboxProvider, actor: Actor | None = None, *, at=NOW,  # noqa: ANN001
            demo_mode: bool = True) -> str:
    return demo.advance_one_month(seeded.engine, provider, actor=actor or seeded.actor, demo_mode=demo_mode, now=at)


def test_advance_one_month_renews_the_licenses_of_this_demo_account_only(seeded: Seeded,
                                                                        provider: SandboxProvider) -> None:
    from cf_portal.models import Invoice, SeatAssignment
    from cf_portal.services import seats
    from cf_portal.services.seats import Holder

    assert advance(seeded, provider) == "A month has passed. There are no licenses yet: buy one to see it renew."
    lic = buy(seeded, provider, seeded.actor, coupon="TENOFF")
    with session_scope(seeded.engine) as session:
        employee = session.exec(select(Employee.id).where(Employee.account_id == seeded.actor.account_id)).first()
        seat = seats.assign(session, actor=seeded.actor, license_id=lic.id,
                            holders=[Holder(kind="employee", id=employee)], now=NOW)[0]
        first_invoiced = session.exec(select(Invoice.created_at).where(Invoice.license_id == lic.id)).one()
    visitor, _ = try_demo(seeded)
    visitors = buy(seeded, provider, visitor)
    later = NOW + timedelta(hours=1)
    assert advance(seeded, provider, at=later) == "A month has passed: 1 license renewed."
    with session_scope(seeded.engine, write=False) as session:
        moved = session.get(License, lic.id)
        assigned = session.get(SeatAssignment, seat).assigned_at
        invoices = session.exec(select(Invoice).where(Invoice.license_id == lic.id).order_by(Invoice.id)).all()
        assert session.get(License, visitors.id).periods_billed == 1  # another visitor's copy: not moved, not billed
    month_earlier = datetime(2026, 10, 29, 12, 0, tzinfo=UTC)
    assert (moved.created_at, moved.periods_billed, moved.period_start, moved.period_end) == (
        month_earlier, 2, NOW, datetime(2026, 12, 29, 12, 0, tzinfo=UTC))
    span = NOW - month_earlier
    assert assigned == NOW - span  # its seat and its first invoice moved with it
    assert [(i.kind, i.total, i.created_at) for i in invoices] == [("first", 8500, first_invoiced - span),
                                                                   ("renewal", 9500, later)]  # TENOFF has ended
    assert advance(seeded, provider, at=later) == "A month has passed: 1 license renewed."


def test_advance_one_month_shows_a_renewal_that_fails_then_a_suspension(seeded: Seeded,
                                                                        provider: SandboxProvider) -> None:
    from cf_portal.services import license_changes

    lic = buy(seeded, provider, seeded.actor)
    declining = seeded.add_card(provider, "4000000000000341")
    license_changes.change_card(seeded.engine, provider, actor=seeded.actor, license_id=lic.id,
                                payment_method_id=declining.id, now=NOW)
    assert advance(seeded, provider) == "A month has passed: 1 license past due."
    assert advance(seeded, provider) == "A month has passed: 1 license suspended."
    assert advance(seeded, provider) == "A month has passed: nothing was due."
    with session_scope(seeded.engine, write=False) as session:
        assert session.get(License, lic.id).status == "suspended"


def test_a_month_back_from_the_31st_keeps_the_current_period_whole(seeded: Seeded, provider: SandboxProvider) -> None:
    """Bought on 31 March: a month earlier is 28 February, and the period is worked out from there again (never
    one that ends before it starts)."""
    pm = seeded.add_card(provider)
    bought = datetime(2027, 3, 31, 9, 0, tzinfo=UTC)
    result = create_license(seeded.engine, provider, actor=seeded.actor, now=bought,
                            request=request_for(seeded, pm.id))
    assert advance(seeded, provider, at=bought + timedelta(days=1)) == "A month has passed: 1 license renewed."
    with session_scope(seeded.engine, write=False) as session:
        lic = session.get(License, result.license_id)
    assert (lic.created_at, lic.period_start, lic.period_end) == (
        datetime(2027, 2, 28, 9, 0, tzinfo=UTC), datetime(2027, 3, 28, 9, 0, tzinfo=UTC),
        datetime(2027, 4, 28, 9, 0, tzinfo=UTC))


def test_only_an_owner_of_a_demo_account_in_demo_mode_advances_it(seeded: Seeded, provider: SandboxProvider) -> None:
    from cf_portal.services.actors import actor_for_user
    from cf_portal.services.roles import REFUSALS, Permission

    lic = buy(seeded, provider, seeded.actor)
    customer = seeded.other_actor()
    with pytest.raises(DomainError, match="in demo mode"):
        advance(seeded, provider, demo_mode=False)
    with pytest.raises(DomainError, match="in demo mode"):
        advance(seeded, provider, customer)
    with session_scope(seeded.engine, write=False) as session:
        viewer = session.exec(select(User.id).where(User.account_id == seeded.actor.account_id,
                                                    User.role == Role.VIEWER.value)).first()
        viewer_actor = actor_for_user(session, viewer)
    with pytest.raises(DomainError) as refused:
        advance(seeded, provider, viewer_actor)
    assert refused.value.message == REFUSALS[Permission.RESET_DEMO]
    with session_scope(seeded.engine, write=False) as session:
        assert session.get(License, lic.id).created_at == NOW  # nothing moved
