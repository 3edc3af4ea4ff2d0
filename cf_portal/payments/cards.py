"""Checks of what a person types into a card form, before any provider sees it."""

from __future__ import annotations

import re
from datetime import date

from stdnum import luhn

from cf_portal.payments.provider import CardDetails, PaymentError

_BRANDS = [
    ("amex", re.compile(r"^3[47]")),
    ("visa", re.compile(r"^4")),
    ("mastercard", re.compile(r"^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))")),
    ("discover", re.compile(r"^(6011|65|64[4-9])")),
]
BRAND_NAMES = {"amex": "American Express", "visa": "Visa", "mastercard": "Mastercard", "discover": "Discover",
               "card": "Card"}


def brand_of(number: str) -> str:
    for brand, pattern in _BRANDS:
        if pattern.match(number):
            return brand
    return "card"


def parse_card(number: str, expiry: str, cvc: str, *, today: date) -> CardDetails:
    """Validate the card form; raise PaymentError naming the field ('card_number', 'expiry', 'cvc')."""
    digits = re.sub(r"[\s-]", "", number or "")
    if not digits:
        raise PaymentError("incomplete_number", "Enter the card number.", field="card_number")
    if not (digits.isascii() and digits.isdigit()) or not 13 <= len(digits) <= 19 or not luhn.is_valid(digits):
        raise PaymentError("incorrect_number", "This card number is not valid. Check it and try again.",
                           field="card_number")
    match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", expiry or "")
    if not match:
        raise PaymentError("invalid_expiry", "Enter the expiry date as MM / YY.", field="expiry")
    month, year = int(match.group(1)), int(match.group(2))
    year = year + 2000 if year < 100 else year
    if not 1 <= month <= 12:
        raise PaymentError("invalid_expiry_month", "The expiry month must be 01 to 12.", field="expiry")
    if (year, month) < (today.year, today.month):
        raise PaymentError("invalid_expiry_year", "This card's expiry date is in the past.", field="expiry")
    if year > today.year + 30:
        raise PaymentError("invalid_expiry_year", "This card's expiry year is not valid.", field="expiry")
    cvc_digits = (cvc or "").strip()
    want = 4 if brand_of(digits) == "amex" else 3
    if not (cvc_digits.isascii() and cvc_digits.isdigit() and len(cvc_digits) == want):
        raise PaymentError("invalid_cvc", f"Enter the {want}-digit security code (CVC).", field="cvc")
    return CardDetails(number=digits, exp_month=month, exp_year=year, cvc=cvc_digits)


def is_expired(exp_month: int, exp_year: int, *, today: date) -> bool:
    """A card works until the end of its expiry month."""
    return (exp_year, exp_month) < (today.year, today.month)
