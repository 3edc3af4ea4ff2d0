"""The catalog sync and the invoice preview on Stripe, by the requests stripe-python sends (localstripe has no
Prices, promotion codes or previews): answers shaped as in Stripe's API reference."""

from __future__ import annotations

from typing import Any

from cf_portal.payments.provider import CatalogCoupon, CatalogPlan
from cf_portal.payments.stripe_provider import StripeProvider
from tests.contract.test_stripe_requests import (
    CUSTOMER,
    PROMO,
    FakeStripe,
    invoice_json,
    price_list_json,
    promotion_code_list_json,
)

PLAN = CatalogPlan(product_code="awareness", product_name="Security Awareness Training",
                   plan_code="awareness-business", plan_name="Security Awareness Training Business", unit_amount=1900,
                   currency="usd")
COUPON = CatalogCoupon(code="SPRING15", percent_off=15, amount_off=None, currency=None, duration="repeating",
                       duration_months=3, max_redemptions=None, redeem_by=None, product_codes=("awareness",))


def not_found(kind: str, ident: str) -> tuple[int, dict[str, Any]]:
    return 404, {"error": {"code": "resource_missing", "message": f"No such {kind}: '{ident}'", "param": "id",
                           "type": "invalid_request_error"}}


def coupon_json(**overrides: Any) -> dict[str, Any]:
    return {"id": "SPRING15", "object": "coupon", "amount_off": None, "created": 1678037688, "currency": None,
            "duration": "repeating", "duration_in_months": 3, "livemode": False, "max_redemptions": None,
            "metadata": {}, "name": "SPRING15", "percent_off": 15.0, "redeem_by": None, "times_redeemed": 0,
            "valid": True, **overrides}


def empty_catalog() -> FakeStripe:
    fake = FakeStripe()
    fake.on("GET", "/v1/products/awareness", not_found("product", "awareness"))
    fake.on("POST", "/v1/products", (200, {"id": "awareness", "object": "product", "active": True,
                                           "name": PLAN.product_name}))
    fake.on("GET", "/v1/prices", (200, price_list_json(empty=True)))
    fake.on("POST", "/v1/prices", (200, price_list_json()["data"][0]))
    fake.on("GET", "/v1/coupons/SPRING15", not_found("coupon", "SPRING15"))
    fake.on("POST", "/v1/coupons", (200, coupon_json()))
    fake.on("POST", "/v1/promotion_codes", (200, {"id": "promo_1", "object": "promotion_code", "code": "SPRING15",
                                                  "active": True}))
    return fake


def test_the_first_sync_creates_products_monthly_prices_and_coupons_with_promotion_codes() -> None:
    fake = empty_catalog()
    done = StripeProvider("sk_test_fake", http_client=fake, max_network_retries=0).sync_catalog(
        plans=[PLAN], coupons=[COUPON])
    assert done == ["product awareness: created", "price awareness-business: created 1900 usd a month",
                    "coupon SPRING15: created, with its promotion code"]
    [product] = fake.posts("/v1/products")
    assert (product.params["id"], product.idempotency_key) == ("awareness", "catalog-product-awareness")
    [price] = fake.posts("/v1/prices")
    assert price.params == {"product": "awareness", "unit_amount": "1900", "currency": "usd",
                            "recurring[interval]": "month", "recurring[interval_count]": "1",
                            "lookup_key": "awareness-business", "transfer_lookup_key": "true",
                            "nickname": "Security Awareness Training Business",
                            "metadata[plan_code]": "awareness-business"}
    assert price.idempotency_key == "catalog-price-awareness-business-1900-usd"
    [coupon] = fake.posts("/v1/coupons")
    assert coupon.params == {"id": "SPRING15", "duration": "repeating", "name": "SPRING15", "percent_off": "15",
                             "duration_in_months": "3", "applies_to[products][0]": "awareness"}
    [promotion] = fake.posts("/v1/promotion_codes")
    assert promotion.params == {"code": "SPRING15", "promotion[type]": "coupon", "promotion[coupon]": "SPRING15"}


def test_a_second_sync_changes_nothing_and_a_new_price_takes_over_the_lookup_key() -> None:
    fake = FakeStripe()
    fake.on("GET", "/v1/products/awareness", (200, {"id": "awareness", "object": "product", "active": True}))
    fake.on("GET", "/v1/prices", (200, price_list_json(unit_amount=1900)))
    fake.on("GET", "/v1/coupons/SPRING15", (200, coupon_json()))
    provider = StripeProvider("sk_test_fake", http_client=fake, max_network_retries=0)
    assert provider.sync_catalog(plans=[PLAN], coupons=[COUPON]) == [
        "product awareness: already there", "price awareness-business: already 1900 usd a month",
        "coupon SPRING15: already there"]
    assert [s for s in fake.sent if s.method == "POST"] == []

    fake.on("POST", "/v1/prices", (200, price_list_json()["data"][0]))
    raised = CatalogPlan(**{**PLAN.__dict__, "unit_amount": 2100})
    done = provider.sync_catalog(plans=[raised], coupons=[])
    assert done[1] == "price awareness-business: new price 2100 usd a month"
    [price] = fake.posts("/v1/prices")  # a new Price; the old one is never edited
    assert (price.params["unit_amount"], price.params["transfer_lookup_key"]) == ("2100", "true")


def test_a_coupon_that_differs_in_stripe_is_reported_not_edited() -> None:
    fake = FakeStripe()
    fake.on("GET", "/v1/coupons/SPRING15", (200, coupon_json(percent_off=20.0)))
    done = StripeProvider("sk_test_fake", http_client=fake, max_network_retries=0).sync_catalog(
        plans=[], coupons=[COUPON])
    assert done == ["coupon SPRING15: DIFFERS in Stripe (percent_off); coupons cannot be edited"]
    assert [s for s in fake.sent if s.method == "POST"] == []


def test_the_invoice_preview_is_stripes_total_for_the_first_month() -> None:
    fake = FakeStripe()
    fake.on("GET", "/v1/prices", (200, price_list_json()))
    fake.on("GET", "/v1/promotion_codes", (200, promotion_code_list_json("SPRING15")))
    fake.on("POST", "/v1/invoices/create_preview", (200, invoice_json(status="draft", quantity=5, discount=1425)))
    total = StripeProvider("sk_test_fake", http_client=fake, max_network_retries=0).preview_first_invoice(
        customer_id=CUSTOMER, plan_code="awareness-business", unit_amount=1900, currency="usd", quantity=5,
        coupon_code="SPRING15")
    assert total == 9500 - 1425
    [preview] = fake.posts("/v1/invoices/create_preview")
    assert preview.params["customer"] == CUSTOMER
    assert preview.params["subscription_details[items][0][quantity]"] == "5"
    assert preview.params["subscription_details[items][0][price]"].startswith("price_")
    assert preview.params["discounts[0][promotion_code]"] == PROMO
    [lookup] = [s for s in fake.sent if s.path == "/v1/promotion_codes"]
    assert lookup.params == {"code": "SPRING15", "active": "true", "limit": "1"}
