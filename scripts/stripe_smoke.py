"""One real purchase in Stripe's test mode, end to end through the portal's services.

    STRIPE_SECRET_KEY=sk_test_... .venv/bin/python scripts/stripe_smoke.py

It uses a throwaway SQLite database (the demo catalog and account), syncs the catalog to your Stripe test
account (products, monthly prices, coupons: safe to re-run), saves Stripe's test card `pm_card_visa` for the
demo account's customer, buys 3 licenses of "Security Awareness Training, Business" with the coupon
WELCOME20 through the same purchase service as the Create button (Stripe's invoice preview must agree with
the portal's price), prints the subscription and invoice, and cancels the subscription at the end (unless
--keep). Live keys are refused. Needs network access to api.stripe.com.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the subscription active afterwards")
    args = parser.parse_args()
    key = os.environ.get("STRIPE_SECRET_KEY", "")
    if not key.startswith(("sk_test_", "rk_test_")):
        print("Set STRIPE_SECRET_KEY to a Stripe TEST key (sk_test_…); live keys are refused.", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="cf-stripe-smoke-")
    os.environ.update({"REFLEX_DB_URL": f"sqlite:///{tmp}/smoke.db", "CF_PAYMENT_PROVIDER": "stripe",
                       "STRIPE_PUBLISHABLE_KEY": os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_unused"),
                       "CF_DEMO_MODE": "true"})

    import stripe
    from sqlmodel import select

    from cf_portal.cli import migrate
    from cf_portal.db import session_scope
    from cf_portal.models import Plan, User
    from cf_portal.payments import get_provider
    from cf_portal.services import payment_methods
    from cf_portal.services.actors import actor_for_user
    from cf_portal.services.checkout import price
    from cf_portal.services.provider_sync import sync_catalog
    from cf_portal.services.purchase import PurchaseRequest, create_license
    from cf_portal.services.seed import DEMO_OWNER_EMAIL, seed_demo

    migrate()
    with session_scope() as session:
        seed_demo(session)
        owner = session.exec(select(User).where(User.email == DEMO_OWNER_EMAIL)).one()
        actor = actor_for_user(session, owner.id)
        plan = session.exec(select(Plan).where(Plan.code == "awareness-business")).one()
        quote, _, _ = price(session, plan=plan, quantity=3, coupon_code="WELCOME20", now=datetime.now(UTC))
    provider = get_provider()
    print("1. catalog sync")
    for line in sync_catalog(None, provider):
        print("   ", line)
    print("2. a test card for the account's customer")
    customer = payment_methods.provider_customer(None, provider, actor)
    client = stripe.StripeClient(key)
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer}).id
    card = payment_methods.save_confirmed_card(None, provider, actor=actor, provider_payment_method_id=pm,
                                               today=datetime.now(UTC).date())
    print(f"    {card.label} ({pm}) for {customer}")
    print(f"3. Create: 3 licenses, WELCOME20, the portal quotes {quote.total} cents for the first month")
    result = create_license(None, provider, actor=actor, now=datetime.now(UTC), request=PurchaseRequest(
        reference_name="Stripe smoke test", plan_id=plan.id, quantity=3, coupon_code="WELCOME20",
        payment_method_id=card.id, expected_total=quote.total, idempotency_key=uuid.uuid4().hex))
    with session_scope(write=False) as session:
        from cf_portal.models import License

        lic = session.get(License, result.license_id)
    print(f"    license {lic.id}: {lic.status}, subscription {lic.provider_subscription_id}, "
          f"charged {result.total_charged} cents")
    invoices = provider.list_invoices(customer_id=customer)
    for invoice in invoices:
        print(f"    invoice {invoice.number}: {invoice.status}, total {invoice.total} {invoice.currency}; "
              + "; ".join(line.description for line in invoice.lines))
    if not args.keep:
        provider.cancel_subscription(subscription_id=lic.provider_subscription_id)
        print("4. subscription cancelled (use --keep to leave it active)")
    ok = lic.status == "active" and result.total_charged == quote.total and invoices
    print("SMOKE TEST PASSED" if ok else "SMOKE TEST FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
