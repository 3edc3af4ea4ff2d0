"""Demo accounts: the seeded template, and each "Try the demo" visitor's own copy of it.

The seed makes one demo account (the template, found by its owner's email; tests and sales staff may sign in to
it). Every "Try the demo" makes a copy: a new account with the template's members (each with an address of
its own, `owner+<account id>@…`, as emails are unique across accounts), employees and child accounts; the
catalog and coupons are global. So one visitor's purchases, password change or "Sign out everywhere" never
reach another visitor.

- A copy has `Account.demo_expires_at` (a day after the click). From then on nobody can use it
  (`auth.actor_for_token` checks), and `cli purge-expired` deletes it with everything it owns.
- At most `max_copies` copies are live at once (`CF_DEMO_MAX_COPIES`); copies are made one at a time (the
  template's row is locked), so the cap holds under concurrent clicks.
- "Advance one month" (Settings, `advance_one_month`) shows what a month does to the account: its licenses are
  moved a calendar month into the past, then renewed (or ended, or refused) by `renewals.bill_due` for this account
  alone, as the hourly `bill-due` would.
- Subscriptions are cancelled at the payment provider before their licenses are deleted (by a reset or a
  purge), outside any transaction; if the provider cannot cancel one, nothing of that account is deleted and
  the next run tries again. A demo must never leave a subscription charging every month.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import (
    Account,
    ApiKey,
    AuditEvent,
    AuthSession,
    ChildAccount,
    Coupon,
    CouponRedemption,
    EmailMessage,
    Employee,
    HelpFeedback,
    Invitation,
    Invoice,
    InvoiceLine,
    License,
    LicenseChange,
    LicenseStatus,
    PaymentMethod,
    Role,
    SeatAssignment,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from cf_portal.payments.provider import PaymentError, PaymentProvider
from cf_portal.services import renewals
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotAllowed, NotFound
from cf_portal.services.periods import period_bounds
from cf_portal.services.roles import Permission
from cf_portal.services.seed import DEMO_MEMBERS, DEMO_OWNER_EMAIL, demo_account, seed_demo

DEMO_COPY_LIFETIME = timedelta(days=1)
NOT_A_DEMO = "Only an owner of a demo account can reset it or move its clock, in demo mode."
DEMO_FULL = ("All {count} demo accounts are in use right now. Each one lasts a day: try again later, or ask us "
             "for a guided demo.")


def copy_email(email: str, account_id: int) -> str:
    """A template member's address in a copy: `owner@acme-security.example` → `owner+17@acme-security.example`."""
    local, _, domain = email.partition("@")
    return f"{local}+{account_id}@{domain}"


def _template(session: Session, *, lock: bool = False) -> Account:
    account = demo_account(session)
    if account is None:
        raise NotFound("The demo account (run `make run` or `python -m cf_portal.cli seed`)")
    if lock:  # copies are made one at a time: the cap is counted and kept under concurrent clicks
        session.exec(select(Account.id).where(Account.id == account.id).with_for_update()).one()
    return account


def _template_members(session: Session, template: Account) -> list[tuple[str, str, str]]:
    """(email, name, role) of the template's members; its seeded owner always as Owner (a visitor of the
    template may have demoted or removed them)."""
    members = session.exec(select(User).where(User.account_id == template.id).order_by(User.id)).all()
    return [(user.email, user.name, Role.OWNER.value if user.email == DEMO_OWNER_EMAIL else user.role)
            for user in members if user.removed_at is None or user.email == DEMO_OWNER_EMAIL]


def _copy_people(session: Session, *, template_id: int, account_id: int, now: datetime) -> None:
    """The template's employees and child accounts into the copy, each in one INSERT … SELECT."""
    session.execute(sa.insert(Employee).from_select(
        ["account_id", "name", "email", "department", "active", "created_at"],
        select(sa.literal(account_id), Employee.name, Employee.email, Employee.department, Employee.active,
               sa.literal(now, type_=Employee.__table__.c.created_at.type))
        .where(Employee.account_id == template_id)))
    session.execute(sa.insert(ChildAccount).from_select(
        ["account_id", "name", "contact_email", "created_at"],
        select(sa.literal(account_id), ChildAccount.name, ChildAccount.contact_email,
               sa.literal(now, type_=ChildAccount.__table__.c.created_at.type))
        .where(ChildAccount.account_id == template_id)))


def copy_demo_account(session: Session, *, now: datetime, max_copies: int) -> int:
    """A new copy of the demo account for one visitor, live for a day; returns the id of its owner."""
    template = _template(session, lock=True)
    live = session.exec(select(sa.func.count()).select_from(Account)
                        .where(Account.demo_expires_at > now)).one()
    if live >= max_copies:
        raise DomainError(DEMO_FULL.format(count=max_copies), field="form")
    copy = Account(name=template.name, created_at=now, demo_expires_at=now + DEMO_COPY_LIFETIME)
    session.add(copy)
    session.flush()
    members = [User(account_id=copy.id, name=name, email=copy_email(email, copy.id), role=role, created_at=now)
               for email, name, role in _template_members(session, template)]
    session.add_all(members)
    _copy_people(session, template_id=template.id, account_id=copy.id, now=now)
    session.flush()
    owner_email = copy_email(DEMO_OWNER_EMAIL, copy.id)
    return next(user.id for user in members if user.email == owner_email)


# --- Cancelling at the provider, then deleting ------------------------------------------------------


def _live_subscriptions(engine: sa.Engine | None, account_id: int) -> list[str]:
    with session_scope(engine, write=False) as session:
        return list(session.exec(select(License.provider_subscription_id).where(
            License.account_id == account_id, License.provider_subscription_id.is_not(None),
            License.status != LicenseStatus.CANCELED.value).order_by(License.id)).all())


def _cancel_subscriptions(engine: sa.Engine | None, provider: PaymentProvider, account_id: int) -> None:
    """Cancel every live subscription of the account at the provider; PaymentError for the first that fails
    (one the provider does not know is gone already)."""
    for subscription_id in _live_subscriptions(engine, account_id):
        try:
            provider.cancel_subscription(subscription_id=subscription_id)
        except PaymentError as exc:
            if exc.code != "resource_missing":
                raise


def _delete_history(session: Session, account_id: int) -> None:
    """Delete the account's licenses, seats, cards, invoices, invitations, API keys, history, help feedback, webhooks,
    emails, employees and child accounts; coupons count the account's redemptions no more."""
    license_ids = select(License.id).where(License.account_id == account_id)
    invoice_ids = select(Invoice.id).where(Invoice.account_id == account_id)
    redeemed = session.exec(select(CouponRedemption.coupon_id, sa.func.count())
                            .where(CouponRedemption.license_id.in_(license_ids))
                            .group_by(CouponRedemption.coupon_id)).all()
    for coupon_id, count in redeemed:
        session.execute(sa.update(Coupon).where(Coupon.id == coupon_id)
                        .values(times_redeemed=sa.case((Coupon.times_redeemed > count, Coupon.times_redeemed - count),
                                                       else_=0)))
    session.execute(sa.delete(SeatAssignment).where(SeatAssignment.account_id == account_id))
    webhook_events = select(WebhookEvent.id).where(WebhookEvent.account_id == account_id)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_event_id.in_(webhook_events)))
    session.execute(sa.delete(WebhookEvent).where(WebhookEvent.account_id == account_id))
    session.execute(sa.delete(WebhookEndpoint).where(WebhookEndpoint.account_id == account_id))
    session.execute(sa.delete(EmailMessage).where(EmailMessage.account_id == account_id))
    session.execute(sa.delete(CouponRedemption).where(CouponRedemption.license_id.in_(license_ids)))
    session.execute(sa.delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(invoice_ids)))
    session.execute(sa.delete(Invoice).where(Invoice.account_id == account_id))
    session.execute(sa.delete(LicenseChange).where(LicenseChange.account_id == account_id))
    session.execute(sa.delete(License).where(License.account_id == account_id))
    session.execute(sa.delete(PaymentMethod).where(PaymentMethod.account_id == account_id))
    session.execute(sa.delete(AuditEvent).where(AuditEvent.account_id == account_id))
    session.execute(sa.delete(HelpFeedback).where(HelpFeedback.account_id == account_id))
    session.execute(sa.delete(Invitation).where(Invitation.account_id == account_id))
    session.execute(sa.delete(ApiKey).where(ApiKey.account_id == account_id))
    session.execute(sa.delete(Employee).where(Employee.account_id == account_id))
    session.execute(sa.delete(ChildAccount).where(ChildAccount.account_id == account_id))


def _restore_members(session: Session, account: Account, seeded: dict[str, str], now: datetime) -> None:
    """The seeded people back with their roles and without passwords; whoever joined during the demo is
    removed and signed out."""
    for user in session.exec(select(User).where(User.account_id == account.id)).all():
        if user.email in seeded:
            user.role, user.removed_at, user.password_hash = seeded[user.email], None, None
        else:
            session.execute(sa.delete(AuthSession).where(AuthSession.user_id == user.id))
            user.removed_at, user.password_hash = user.removed_at or now, None
    account.provider_customer_id = None


def is_demo_account(session: Session, account_id: int) -> bool:
    """The seeded demo account or a visitor's copy of it."""
    account = session.get(Account, account_id)
    if account is None:
        return False
    template = demo_account(session)
    return account.demo_expires_at is not None or (template is not None and template.id == account.id)


def may_reset(session: Session, actor: Actor, *, demo_mode: bool) -> bool:
    """Whether Settings offers "Reset demo data": in demo mode, to an owner of a demo account."""
    return demo_mode and actor.can(Permission.RESET_DEMO) and is_demo_account(session, actor.account_id)


def check_may_reset(session: Session, actor: Actor, *, demo_mode: bool) -> None:
    """Refuse "Reset demo data" (NotAllowed) to anyone `may_reset` does not offer it to."""
    actor.require(Permission.RESET_DEMO)
    if not demo_mode or not is_demo_account(session, actor.account_id):
        raise NotAllowed(NOT_A_DEMO)


def reset_demo_account(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, now: datetime) -> None:
    """Settings' "Reset demo data": the actor's own demo account (their copy, or the template) back to the
    seed. Its subscriptions are cancelled at the provider first."""
    actor.require(Permission.RESET_DEMO)
    with session_scope(engine, write=False) as session:
        if not is_demo_account(session, actor.account_id):
            raise NotAllowed(NOT_A_DEMO)
    _reset(engine, provider, account_id=actor.account_id, now=now)


def reset_template(engine: sa.Engine | None, provider: PaymentProvider, *, now: datetime) -> None:
    """`cli reset-demo`: the seeded demo account back to the seed (seeded first if it is missing)."""
    with session_scope(engine) as session:
        account = demo_account(session)
        if account is None:
            seed_demo(session)
            return
    _reset(engine, provider, account_id=account.id, now=now)


def _reset(engine: sa.Engine | None, provider: PaymentProvider, *, account_id: int, now: datetime) -> None:
    try:
        _cancel_subscriptions(engine, provider, account_id)
    except PaymentError as exc:
        raise DomainError(f"The demo's subscriptions could not be cancelled at the payment provider "
                          f"({exc.message}); nothing was reset. Try again in a moment.") from None
    with session_scope(engine) as session:
        template = _template(session)
        account = session.get(Account, account_id)
        _delete_history(session, account.id)
        if account.id == template.id:
            _restore_members(session, account, {email: role.value for email, _, role in DEMO_MEMBERS}, now)
            session.flush()
            seed_demo(session)
        else:
            _restore_members(session, account, {copy_email(email, account.id): role for email, _, role
                                                in _template_members(session, template)}, now)
            _copy_people(session, template_id=template.id, account_id=account.id, now=now)


# --- Advance one month ----------------------------------------------------------------------------------------


def _shift_licenses_back(session: Session, account_id: int) -> int:
    """Move every license of the account one calendar month into the past, with what hangs off it, as if it had
    been bought and used a month earlier; returns how many were moved.

    The periods are counted from `created_at` (`services.periods`), so that anchor moves a calendar month and the
    current period is worked out from it again (31 March → 28 February, not 3 March). Everything else of the
    license moves by the same span of time, so every interval stays as it was and every CHECK constraint holds:
    a failed renewal's first failure and next attempt, the cancellation, its seats, its invoices and its changes
    (a pending one too). Purchases still under way (pending) are left alone."""
    licenses = session.exec(select(License).where(License.account_id == account_id,
                                                  License.status != LicenseStatus.PENDING.value)
                            .with_for_update()).all()
    for lic in licenses:
        anchor = lic.created_at - relativedelta(months=1)
        span = lic.created_at - anchor
        lic.created_at = anchor
        lic.period_start, lic.period_end = period_bounds(anchor, lic.periods_billed - 1)
        for name in ("past_due_since", "next_attempt_at", "canceled_at"):
            if getattr(lic, name) is not None:
                setattr(lic, name, getattr(lic, name) - span)
        for seat in session.exec(select(SeatAssignment).where(SeatAssignment.license_id == lic.id)).all():
            seat.assigned_at -= span
            if seat.unassigned_at is not None:
                seat.unassigned_at -= span
        for invoice in session.exec(select(Invoice).where(Invoice.license_id == lic.id)).all():
            invoice.created_at -= span
            invoice.period_start -= span
            if invoice.period_end is not None:
                invoice.period_end -= span
        for change in session.exec(select(LicenseChange).where(LicenseChange.license_id == lic.id)).all():
            change.created_at -= span
            if change.finished_at is not None:
                change.finished_at -= span
    return len(licenses)


def advance_one_month(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, demo_mode: bool,
                      now: datetime) -> str:
    """Settings' "Advance one month": the actor's own demo account a month on. Its licenses move a month into the
    past, then this account's due renewals run (`renewals.bill_due`, the account's licenses only: every visitor has
    a copy of their own). Returns what happened, for a toast: "A month has passed: 2 licenses renewed, 1 past due."
    """
    if provider.renews_by_itself:
        raise DomainError("The demo's clock cannot be moved with this payment provider: it renews by itself.")
    with session_scope(engine) as session:
        check_may_reset(session, actor, demo_mode=demo_mode)
        moved = _shift_licenses_back(session, actor.account_id)
    if not moved:
        return "A month has passed. There are no licenses yet: buy one to see it renew."
    outcome = renewals.bill_due(engine, provider, now=now, account_id=actor.account_id)
    return f"A month has passed: {renewals.summary(outcome)}." if outcome else "A month has passed: nothing was due."


@dataclass
class PurgeReport:
    deleted: int = 0
    kept: list[str] = field(default_factory=list)  # copies that must wait for the next run, and why


def purge_expired_copies(engine: sa.Engine | None, provider: PaymentProvider, *, now: datetime) -> PurgeReport:
    """Delete the demo copies that have expired, with everything they own, after cancelling their subscriptions
    at the provider. A copy whose subscription cannot be cancelled is kept (and reported) for the next run."""
    report = PurgeReport()
    with session_scope(engine, write=False) as session:
        expired = session.exec(select(Account.id).where(Account.demo_expires_at <= now)
                               .order_by(Account.id)).all()
    for account_id in expired:
        # 1. The provider first, outside any transaction: nothing may keep charging after the copy is gone.
        try:
            _cancel_subscriptions(engine, provider, account_id)
        except PaymentError as exc:
            report.kept.append(f"demo account {account_id}: a subscription could not be cancelled "
                               f"({exc.code}: {exc.message})")
            continue
        # 2. Then everything the copy owns, in one transaction. Nobody can act in an expired copy, so no new
        # purchase starts; only one already charging at the very moment of expiry could slip past step 1.
        with session_scope(engine) as session:
            _delete_history(session, account_id)
            session.execute(sa.delete(AuthSession).where(AuthSession.user_id.in_(
                select(User.id).where(User.account_id == account_id))))
            session.execute(sa.delete(User).where(User.account_id == account_id))
            session.execute(sa.delete(Account).where(Account.id == account_id))
        report.deleted += 1
    return report

