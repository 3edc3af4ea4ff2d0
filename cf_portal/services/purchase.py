"""Create on the Add License screen: charge the first month and add the license, exactly once.

The steps, each in its own short transaction, so no database lock is held while the provider works:
0. a new submission's coupon code is looked up as the form's are: throttled and counted;
1. reserve: check everything again on the server, insert the license as `pending` under the form's
   idempotency key (unique per account) and take the coupon redemption (conditional update);
2. charge: create the provider subscription with an idempotency key derived from the form's key;
3. confirm (the license becomes `active`, with its invoice) or undo (the pending license and the coupon
   redemption are removed; the provider kept nothing either).
The same key again, from a double click, a reload or a retry, finds the license of the first attempt
and, if its charge was never confirmed, repeats the charge with the same provider key: one charge.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlmodel import Session, select
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from cf_portal import clock
from cf_portal.db import session_scope
from cf_portal.models import (
    Account,
    Coupon,
    CouponRedemption,
    License,
    LicenseStatus,
    PaymentMethod,
    Plan,
    Product,
    Role,
)
from cf_portal.payments.provider import (
    ActionRequired,
    PaymentError,
    PaymentProvider,
    ProviderUnavailable,
    SubscriptionData,
    SubscriptionDiscount,
)
from cf_portal.services import audit, billing, coupons, emails
from cf_portal.services.actors import Actor
from cf_portal.services.checkout import (
    Buyer,
    check_provider_total,
    check_quantity,
    check_reference_name,
    look_up_coupon,
    plan_on_sale,
    price,
)
from cf_portal.services.errors import DomainError
from cf_portal.services.payment_methods import usable_payment_method
from cf_portal.services.periods import period_bounds
from cf_portal.services.roles import Permission

log = logging.getLogger(__name__)
# How long a purchase may wait for the buyer's bank step (3-D Secure) before resolve-pending cancels it.
BANK_STEP_GRACE = timedelta(hours=1)


class PurchaseRequest(BaseModel):
    reference_name: str
    plan_id: int | None
    quantity: str | int
    coupon_code: str = ""
    payment_method_id: int | None
    # The total the person saw; Create refuses to charge anything else.
    expected_total: int
    idempotency_key: str = Field(min_length=16, max_length=80)
    # Only finish the purchase this key started (after the bank's step), never start a new one.
    continue_only: bool = False
    # Where the request came from (an IP address): coupon guessing is throttled per client too.
    client: str = Field(default="", max_length=100)


class PurchaseResult(BaseModel):
    license_id: int
    reference_name: str
    quantity: int
    total_charged: int
    replayed: bool  # True when this key had already bought the license


class PriceChanged(DomainError):
    def __init__(self) -> None:
        super().__init__("The price has changed since it was shown. Check the new total, then press Create again.",
                         field="price")


class ChargeUnconfirmed(DomainError):
    """The provider did not answer; the pending license stays so that a retry with the same key
    completes it without a second charge."""

    def __init__(self) -> None:
        super().__init__("We could not reach the payment provider to confirm the payment. Press Create again "
                         "to finish: you will not be charged twice.", field="payment")


class PaymentActionRequired(ChargeUnconfirmed):
    """The bank asks the buyer to authenticate the first payment (3-D Secure). The license stays pending under
    the form's key; the browser completes the payment with `client_secret` (for the browser only), then the same
    Create again finds the subscription paid (or cancels it, if it was not authenticated)."""

    def __init__(self, client_secret: str) -> None:
        DomainError.__init__(self, "Your bank asks you to confirm this payment. Follow the steps in the window "
                             "that opens.", field="payment")
        self.client_secret = client_secret


class PurchaseGone(DomainError):
    def __init__(self) -> None:
        super().__init__("This purchase was cancelled because the payment was not confirmed in time, so nothing "
                         "was bought. Press Create to buy again.", field="payment")


class EarlierPurchaseDiffers(ChargeUnconfirmed):
    """The form changed after a charge that was never confirmed. The key stays (it is still a
    ChargeUnconfirmed), so putting the form back and pressing Create finishes the first purchase."""

    def __init__(self, existing: License) -> None:
        DomainError.__init__(
            self, f"Your earlier Create of “{existing.reference_name}” ({existing.quantity} licenses) is still "
            "being confirmed with the payment provider. Put the form back as it was (the same plan, number, "
            "coupon and payment method) and press Create to finish it.", field="payment")


def create_license(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor,
                   request: PurchaseRequest, now: datetime) -> PurchaseResult:
    actor.require(Permission.BUY)
    _look_up_coupon(engine, actor=actor, request=request, now=now)
    lic, is_new = _reserve(engine, actor=actor, request=request, now=now)
    if lic.status != LicenseStatus.PENDING.value:
        return _result(lic, replayed=True)
    try:
        subscription = _charge_license(engine, provider, actor=actor, lic=lic, earlier_attempt=not is_new)
    except ActionRequired as exc:
        raise PaymentActionRequired(exc.client_secret) from None
    except ProviderUnavailable as exc:
        log.warning("purchase %s: provider unavailable after retries (%s)", lic.id, exc.code)
        raise ChargeUnconfirmed() from exc
    except PaymentError as exc:
        _undo(engine, actor=actor, lic=lic, reason=exc.code)
        raise DomainError(_payment_message(exc), field="payment") from exc
    if subscription.latest_invoice.total != lic.first_charge_amount:
        _cancel_mismatch(engine, provider, actor=actor, lic=lic, subscription=subscription)
        raise DomainError("The payment provider charged a different total than the one shown, so the licenses "
                          "were not added and the subscription was cancelled. Contact support to have that "
                          "payment refunded.", field="payment")
    return _confirm(engine, actor=actor, lic=lic, subscription=subscription, replayed=not is_new)


def _cancel_mismatch(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, lic: License,
                     subscription: SubscriptionData) -> None:
    """Never keep a charge that differs from the total shown: cancel the subscription, then undo the license.
    If the cancel cannot be sent, the license stays pending (so the subscription is not forgotten): the next
    attempt, or `resolve-pending`, finds the subscription again and cancels it."""
    log.error("purchase %s: provider charged %s, quote was %s; the payment needs a refund", lic.id,
              subscription.latest_invoice.total, lic.first_charge_amount)
    try:
        provider.cancel_subscription(subscription_id=subscription.provider_id)
    except PaymentError as exc:
        log.exception("purchase %s: cancelling the mismatched subscription failed; it stays pending", lic.id)
        raise ChargeUnconfirmed() from exc
    _undo(engine, actor=actor, lic=lic, reason="amount_mismatch")


def _payment_message(exc: PaymentError) -> str:
    if exc.decline_code == "insufficient_funds":
        return "Your card has insufficient funds. Nothing was charged. Use another payment method."
    if exc.code == "expired_card":
        return "Your card has expired. Nothing was charged. Use another payment method."
    if exc.code == "card_declined":
        return "Your card was declined. Nothing was charged. Use another payment method or contact your bank."
    return f"{exc.message} Nothing was charged."


def _result(lic: License, *, replayed: bool) -> PurchaseResult:
    return PurchaseResult(license_id=lic.id, reference_name=lic.reference_name, quantity=lic.quantity,
                          total_charged=lic.first_charge_amount, replayed=replayed)


def _find(session: Session, account_id: int, key: str) -> License | None:
    return session.exec(select(License).where(License.account_id == account_id,
                                              License.idempotency_key == key)).first()


def _look_up_coupon(engine: sa.Engine | None, *, actor: Actor, request: PurchaseRequest, now: datetime) -> None:
    """Step 0, for a new submission with a coupon: the code is looked up as the form's are (throttled and
    counted: `checkout.look_up_coupon`), in a transaction of its own so that a refusal is still counted. While
    the account's or the client's lookups wait, a coupon is refused here, whatever the form showed. A form
    that fails its other checks is left to `_reserve` to refuse."""
    if not request.coupon_code.strip() or request.continue_only:
        return
    refusal = None
    with session_scope(engine) as session:
        if _find(session, actor.account_id, request.idempotency_key) is not None:
            return  # a replay: its code was looked up when it was first sent
        try:
            quantity = check_quantity(request.quantity)
            plan, _ = plan_on_sale(session, request.plan_id)
        except DomainError:
            return
        try:
            look_up_coupon(session, buyer=Buyer(actor.account_id, request.client), plan=plan, quantity=quantity,
                           coupon_code=request.coupon_code, now=now)
        except coupons.CouponRejected as exc:
            refusal = exc
    if refusal is not None:
        raise refusal


def _reserve(engine: sa.Engine | None, *, actor: Actor, request: PurchaseRequest,
             now: datetime) -> tuple[License, bool]:
    """Insert the pending license, or find the one this key already made. Returns (license, is_new)."""
    try:
        with session_scope(engine) as session:
            existing = _find(session, actor.account_id, request.idempotency_key)
            if existing is not None:
                return _same_purchase(existing, request), False
            if request.continue_only:
                raise PurchaseGone()
            name = check_reference_name(request.reference_name)
            quantity = check_quantity(request.quantity)
            plan, _ = plan_on_sale(session, request.plan_id)
            result, coupon, rejected = price(session, plan=plan, quantity=quantity,
                                             coupon_code=request.coupon_code, now=now)
            if rejected is not None:
                raise rejected
            pm = usable_payment_method(session, account_id=actor.account_id,
                                       payment_method_id=request.payment_method_id, today=now.date())
            if result.total != request.expected_total:
                raise PriceChanged()
            lic = License(
                account_id=actor.account_id, plan_id=plan.id, reference_name=name, quantity=quantity,
                unit_amount=plan.unit_amount, currency=plan.currency, coupon_id=coupon.id if coupon else None,
                discount_amount=result.discount, discount_description=coupons.describe(coupon) if coupon else "",
                first_charge_amount=result.total, payment_method_id=pm.id, status=LicenseStatus.PENDING.value,
                idempotency_key=request.idempotency_key, created_by_user_id=actor.user_id, created_at=now,
                period_start=now, period_end=period_bounds(now, 0)[1],
            )
            session.add(lic)
            session.flush()
            if coupon is not None:
                coupons.redeem(session, coupon_id=coupon.id, now=now)
                session.add(CouponRedemption(coupon_id=coupon.id, account_id=actor.account_id, license_id=lic.id,
                                             redeemed_at=now))
            return lic, True
    except sa.exc.IntegrityError:
        # Another request with the same key got there first (PostgreSQL lets both try): use its license.
        with session_scope(engine, write=False) as session:
            existing = _find(session, actor.account_id, request.idempotency_key)
        if existing is None:
            raise
        return _same_purchase(existing, request), False


def _same_purchase(existing: License, request: PurchaseRequest) -> License:
    """A key is only ever replayed with the purchase it was first sent with: if the form changed after
    an unconfirmed charge, finishing the old purchase under the new figures would charge a surprise."""
    try:
        quantity = check_quantity(request.quantity)
    except DomainError:
        quantity = None
    try:
        name = check_reference_name(request.reference_name)
    except DomainError:
        name = None
    same = (existing.plan_id == request.plan_id and existing.quantity == quantity
            and existing.first_charge_amount == request.expected_total
            and existing.payment_method_id == request.payment_method_id
            and (existing.coupon_id is not None) == bool(request.coupon_code.strip())
            and existing.reference_name == name)
    if not same:
        raise EarlierPurchaseDiffers(existing)
    return existing


@retry(retry=retry_if_exception_type(ProviderUnavailable), stop=stop_after_attempt(3),
       wait=wait_exponential(multiplier=0.2, max=2), reraise=True)
def _charge(provider: PaymentProvider, **kwargs) -> SubscriptionData:  # noqa: ANN003
    # Retrying is safe: every attempt carries the same idempotency key.
    return provider.create_subscription(**kwargs)


def _charge_license(engine: sa.Engine | None, provider: PaymentProvider, *, actor: Actor, lic: License,
                    earlier_attempt: bool) -> SubscriptionData:
    """The license's subscription: the one an earlier attempt made, if any (`earlier_attempt`: this license was
    reserved before, so its first charge may have reached the provider even if no answer came back), else a
    new one. Checks the provider's price first only when creating: an earlier subscription is what it is, and
    refusing it now (a coupon used up meanwhile, a new Price) would undo a license that was paid for."""
    with session_scope(engine, write=False) as session:
        plan, product = session.exec(select(Plan, Product).join(Product, Product.id == Plan.product_id)
                                     .where(Plan.id == lic.plan_id)).one()
        customer_id = session.get(Account, actor.account_id).provider_customer_id
        pm = session.get(PaymentMethod, lic.payment_method_id)
        coupon = session.get(Coupon, lic.coupon_id) if lic.coupon_id else None
    discount = None
    if coupon is not None:
        terms = coupons.discount_of(coupon)
        discount = SubscriptionDiscount(percent_off=terms.percent_off, amount_off=terms.amount_off,
                                        months=terms.months, coupon_code=coupon.code)
    if earlier_attempt and customer_id:
        found = provider.find_subscription(customer_id=customer_id, license_id=str(lic.id),
                                           purchase_key=lic.idempotency_key)
        if found is not None:
            return found
    if customer_id:
        # Stripe prices with its own catalog: it is asked what it will charge before it charges. A difference
        # stops the purchase with nothing charged; so does no answer (nothing was sent to be charged yet: say so
        # now, rather than keep a purchase that a later retry would charge while the buyer is away).
        try:
            check_provider_total(provider, customer_id=customer_id, plan_code=plan.code,
                                 unit_amount=lic.unit_amount, currency=lic.currency, quantity=lic.quantity,
                                 coupon_code=coupon.code if coupon is not None else None,
                                 expected_total=lic.first_charge_amount)
        except ProviderUnavailable as exc:
            raise PaymentError("provider_unavailable", exc.message) from exc
    return _charge(
        provider,
        customer_id=customer_id or "",
        payment_method_id=pm.provider_id,
        product_name=f"{product.name} {plan.name}",
        plan_code=plan.code,
        unit_amount=lic.unit_amount,
        currency=lic.currency,
        quantity=lic.quantity,
        discount=discount,
        description=lic.reference_name,
        metadata={"account_id": str(actor.account_id), "license_id": str(lic.id),
                  "purchase_key": lic.idempotency_key},
        idempotency_key=f"license-{lic.id}-{lic.idempotency_key}",
    )


def _undo(engine: sa.Engine | None, *, actor: Actor, lic: License, reason: str) -> None:
    """Remove a pending license that was not paid for, and give its coupon redemption back. A license confirmed
    meanwhile (another attempt finished it) keeps both."""
    with session_scope(engine) as session:
        redemption = session.exec(select(CouponRedemption).where(CouponRedemption.license_id == lic.id)).first()
        if redemption is not None:
            session.delete(redemption)
            session.flush()
        deleted = session.execute(sa.delete(License).where(License.id == lic.id,
                                                           License.status == LicenseStatus.PENDING.value)).rowcount
        if not deleted:
            session.rollback()
            return
        if redemption is not None and lic.coupon_id:
            coupons.release(session, coupon_id=lic.coupon_id)
        audit.record(session, actor, "license.purchase_failed", "license", None, f"{lic.reference_name[:60]}: {reason}")


def _confirm(engine: sa.Engine | None, *, actor: Actor, lic: License, subscription: SubscriptionData,
             replayed: bool) -> PurchaseResult:
    invoice = subscription.latest_invoice
    with session_scope(engine) as session:
        # Only the first confirmation of a license writes its invoice.
        confirmed = session.execute(
            sa.update(License).where(License.id == lic.id, License.status == LicenseStatus.PENDING.value)
            .values(status=LicenseStatus.ACTIVE.value, provider_subscription_id=subscription.provider_id)
        ).rowcount
        if confirmed:
            saved = billing.save_invoice(session, lic=lic, invoice=invoice, kind="first",
                                         period_start=lic.period_start, period_end=lic.period_end, period_index=0,
                                         now=clock.now())
            emails.queue_receipt(session, invoice_id=saved.id, now=saved.created_at)
            audit.record(session, actor, "license.created", "license", lic.id,
                         f"{lic.quantity} licenses, first month {invoice.total} {invoice.currency}")
        fresh = session.get(License, lic.id)
        if fresh is None:  # resolve-pending gave up on it (and cancelled its subscription) a moment ago
            raise PurchaseGone()
        return _result(fresh, replayed=replayed or not confirmed)


def resolve_pending(engine: sa.Engine | None, provider: PaymentProvider, *, older_than: timedelta,
                    now: datetime) -> dict[str, int]:
    """Finish or undo purchases whose charge was never confirmed (the buyer left after a provider
    timeout). Each is asked of the provider again with its own key, so nothing is charged twice.
    Run it from a scheduler: `python -m cf_portal.cli resolve-pending`."""
    with session_scope(engine, write=False) as session:
        pending = session.exec(select(License, Account).join(Account, Account.id == License.account_id).where(
            License.status == LicenseStatus.PENDING.value, License.created_at < now - older_than)).all()
    outcome = {"confirmed": 0, "undone": 0, "still_unavailable": 0, "waiting": 0}
    for lic, account in pending:
        # Finishes the buyer's own purchase, which their role allowed when they pressed Create.
        actor = Actor(user_id=lic.created_by_user_id or 0, user_name="", role=Role.BILLING_ADMIN.value,
                      account_id=account.id, account_name=account.name)
        try:
            subscription = _charge_license(engine, provider, actor=actor, lic=lic, earlier_attempt=True)
        except ActionRequired as exc:
            if lic.created_at > now - BANK_STEP_GRACE:
                outcome["waiting"] += 1  # the buyer may still be at their bank's step
                continue
            # The buyer left without confirming the payment with their bank: nothing was charged. Cancel it.
            try:
                provider.cancel_subscription(subscription_id=exc.subscription_id)
            except PaymentError:
                outcome["still_unavailable"] += 1
                continue
            _undo(engine, actor=actor, lic=lic, reason="not_authenticated")
            outcome["undone"] += 1
            continue
        except ProviderUnavailable:
            outcome["still_unavailable"] += 1
            continue
        except PaymentError as exc:
            _undo(engine, actor=actor, lic=lic, reason=exc.code)
            outcome["undone"] += 1
            continue
        if subscription.latest_invoice.total != lic.first_charge_amount:
            try:
                _cancel_mismatch(engine, provider, actor=actor, lic=lic, subscription=subscription)
            except ChargeUnconfirmed:
                outcome["still_unavailable"] += 1
                continue
            outcome["undone"] += 1
            continue
        try:
            _confirm(engine, actor=actor, lic=lic, subscription=subscription, replayed=True)
        except PurchaseGone:  # the buyer's own retry settled it a moment ago; the run goes on
            log.warning("purchase %s: removed while resolve-pending confirmed it", lic.id)
            continue
        outcome["confirmed"] += 1
    return outcome
