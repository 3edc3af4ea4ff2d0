"""Keeping the payment provider and the portal in step, from the command line:

- `sync-catalog`: the provider's products, monthly prices and coupons made to match the portal's catalog.
- `reconcile`: every license compared with its subscription at the provider; drift reported, or repaired
  with `--repair` (quantity and status taken from the provider, never fewer seats than are held). Live
  subscriptions that no license knows (they would charge every month for nothing) are reported too, never
  cancelled automatically: someone decides whether to cancel and refund or to restore the license.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, Coupon, CouponProduct, License, LicenseStatus, Plan, Product
from cf_portal.payments.provider import ENDED, CatalogCoupon, CatalogPlan, PaymentError, PaymentProvider
from cf_portal.services import audit, webhooks
from cf_portal.services.provider_events import STATUSES
from cf_portal.services.validation import printable


def catalog(engine: sa.Engine | None) -> tuple[list[CatalogPlan], list[CatalogCoupon]]:
    """The plans on sale and the coupons, as the provider needs them."""
    with session_scope(engine, write=False) as session:
        rows = session.exec(select(Plan, Product).join(Product, Product.id == Plan.product_id)
                            .where(Plan.retired_at.is_(None)).order_by(Product.sort_order, Plan.sort_order)).all()
        plans = [CatalogPlan(product_code=product.code, product_name=product.name, plan_code=plan.code,
                             plan_name=f"{product.name} {plan.name}", unit_amount=plan.unit_amount,
                             currency=plan.currency) for plan, product in rows]
        coupons = []
        for coupon in session.exec(select(Coupon).order_by(Coupon.code)).all():
            codes = session.exec(select(Product.code).join(CouponProduct, CouponProduct.product_id == Product.id)
                                 .where(CouponProduct.coupon_id == coupon.id).order_by(Product.code)).all()
            coupons.append(CatalogCoupon(
                code=coupon.code, percent_off=coupon.percent_off, amount_off=coupon.amount_off,
                currency=coupon.currency, duration=coupon.duration, duration_months=coupon.duration_months,
                max_redemptions=coupon.max_redemptions,
                redeem_by=int(coupon.expires_at.timestamp()) if coupon.expires_at else None,
                product_codes=tuple(codes)))
    return plans, coupons


def sync_catalog(engine: sa.Engine | None, provider: PaymentProvider) -> list[str]:
    plans, coupons = catalog(engine)
    return provider.sync_catalog(plans=plans, coupons=coupons)


@dataclass(frozen=True)
class Drift:
    license_id: int
    account_id: int
    reference_name: str
    problem: str
    repaired: bool = False

    def __str__(self) -> str:
        done = " (repaired)" if self.repaired else ""
        if not self.license_id:
            return f"account {self.account_id}: {self.problem}{done}"
        return f"license {self.license_id} {printable(self.reference_name)} (account {self.account_id}): {self.problem}{done}"


def reconcile(engine: sa.Engine | None, provider: PaymentProvider, *, repair: bool, now: datetime) -> list[Drift]:
    """Compare every confirmed license with its subscription at the provider."""
    with session_scope(engine, write=False) as session:
        licenses = session.exec(select(License).where(License.status != LicenseStatus.PENDING.value)
                                .order_by(License.id)).all()
    drifts: list[Drift] = []
    for lic in licenses:
        if not lic.provider_subscription_id:
            drifts.append(Drift(lic.id, lic.account_id, lic.reference_name, "has no subscription at the provider"))
            continue
        state = provider.get_subscription(subscription_id=lic.provider_subscription_id)
        if state is None:
            problem = f"its subscription {lic.provider_subscription_id} is missing at the provider"
            fixed = repair and lic.status != LicenseStatus.CANCELED.value
            if fixed:
                _apply(engine, lic, status=LicenseStatus.CANCELED, quantity=None, now=now, why=problem)
            if lic.status != LicenseStatus.CANCELED.value:
                drifts.append(Drift(lic.id, lic.account_id, lic.reference_name, problem, fixed))
            continue
        status = STATUSES.get(state.status)
        problems = []
        # A license the portal suspended after the last retry is still past due at a provider that keeps it so.
        suspended_here = lic.status == LicenseStatus.SUSPENDED.value and status is LicenseStatus.PAST_DUE
        if status is not None and status.value != lic.status and not suspended_here:
            problems.append(f"status is {lic.status} here, {state.status} at the provider")
        # The provider bills a decrease scheduled for the renewal already (Stripe: proration_behavior=none).
        billed = lic.next_quantity or lic.quantity
        if state.quantity and state.quantity != billed:
            problems.append(f"{billed} licenses here, {state.quantity} at the provider")
        if problems:
            problem = "; ".join(problems)
            if repair:
                _apply(engine, lic, status=status, quantity=state.quantity or None, now=now, why=problem)
            drifts.append(Drift(lic.id, lic.account_id, lic.reference_name, problem, repair))
    return drifts + _unknown_subscriptions(engine, provider)


def _unknown_subscriptions(engine: sa.Engine | None, provider: PaymentProvider) -> list[Drift]:
    """Live subscriptions at the provider that no license of the portal has. A pending purchase's own
    subscription is left to `resolve-pending`, which finishes or cancels it."""
    with session_scope(engine, write=False) as session:
        rows = session.exec(select(License.provider_subscription_id, License.id, License.status)).all()
        customers = session.exec(select(Account.id, Account.provider_customer_id)
                                 .where(Account.provider_customer_id.is_not(None)).order_by(Account.id)).all()
    known = {subscription_id for subscription_id, _, _ in rows if subscription_id}
    pending = {str(license_id) for _, license_id, status in rows if status == LicenseStatus.PENDING.value}
    drifts = []
    for account_id, customer_id in customers:
        try:
            subscriptions = provider.list_subscriptions(customer_id=customer_id)
        except PaymentError as exc:  # one customer the provider will not list does not stop the report
            drifts.append(Drift(0, account_id, "", f"its subscriptions could not be listed at the provider "
                                f"({exc.code}: {exc.message})"))
            continue
        for sub in subscriptions:
            if sub.status in ENDED or sub.provider_id in known or sub.license_id in pending:
                continue
            drifts.append(Drift(0, account_id, "", f"subscription {sub.provider_id} ({sub.status}, {sub.quantity} "
                                f"licenses, made for license {sub.license_id or '?'}) has no license here: cancel "
                                "it at the provider, or restore its license"))
    return drifts


def _apply(engine: sa.Engine | None, lic: License, *, status: LicenseStatus | None, quantity: int | None,
           now: datetime, why: str) -> None:
    with session_scope(engine) as session:
        row = session.exec(select(License).where(License.id == lic.id).with_for_update()).one()
        if quantity is not None:
            row.quantity = max(quantity, row.seats_assigned)  # seats held stay held (the CHECK agrees)
        before = row.status
        if status is not None:
            row.status = status.value
        session.add(audit.event(account_id=row.account_id, user_id=None, action="license.reconciled",
                                object_type="license", object_id=row.id, detail=why, at=now))
        webhooks.license_status_changed(session, row, before=before, now=now, reason="reconciled_with_provider")
