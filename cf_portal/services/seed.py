"""The demo account and catalog: what a new install and a sales demo start from.

`seed_demo` is idempotent: it creates what is missing, matched by natural keys (codes, emails,
names), and changes nothing that is already there. No licenses and no payment methods are seeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from cf_portal.models import (
    Account,
    AuditEvent,
    AuthSession,
    ChildAccount,
    Coupon,
    CouponDuration,
    CouponProduct,
    CouponRedemption,
    Employee,
    Invitation,
    Invoice,
    InvoiceLine,
    License,
    PaymentMethod,
    Plan,
    Product,
    Role,
    SeatAssignment,
    User,
)

DEMO_ACCOUNT_NAME = "Acme Security Ltd"
DEMO_OWNER_EMAIL = "owner@acme-security.example"
# The demo account's members. None has a password: "Try the demo" signs in as the owner.
DEMO_MEMBERS = [
    (DEMO_OWNER_EMAIL, "Alex Morgan", Role.OWNER),
    ("billing@acme-security.example", "Priya Shah", Role.BILLING_ADMIN),
    ("it-admin@acme-security.example", "Tom Becker", Role.LICENSE_ADMIN),
    ("auditor@acme-security.example", "Nina Kowalski", Role.VIEWER),
]

# (code, name, description, [(plan code, plan name, monthly price per license in cents)])
CATALOG = [
    (
        "awareness",
        "Security Awareness Training",
        "Short, engaging courses that teach staff to spot and stop attacks.",
        [("awareness-starter", "Starter", 900), ("awareness-business", "Business", 1900),
         ("awareness-enterprise", "Enterprise", 3900)],
    ),
    (
        "phishing",
        "Phishing Simulator",
        "Realistic phishing campaigns with reporting per department.",
        [("phishing-standard", "Standard", 1200), ("phishing-advanced", "Advanced", 2400)],
    ),
    (
        "darkweb",
        "Dark Web Monitoring",
        "Alerts when company credentials appear in breaches and on dark-web markets.",
        [("darkweb-essentials", "Essentials", 1500), ("darkweb-pro", "Pro", 2900)],
    ),
]

# What each demo coupon shows; the README lists the same.
COUPONS = [
    dict(code="WELCOME20", percent_off=20, duration=CouponDuration.FOREVER),
    dict(code="TENOFF", amount_off=1000, currency="usd", duration=CouponDuration.ONCE),
    dict(code="SPRING15", percent_off=15, duration=CouponDuration.REPEATING, duration_months=3),
    dict(code="EXPIRED25", percent_off=25, duration=CouponDuration.FOREVER,
         expires_at=datetime(2024, 12, 31, 23, 59, tzinfo=UTC)),
    dict(code="LAUNCH50", percent_off=50, duration=CouponDuration.FOREVER, max_redemptions=100,
         times_redeemed=100),
    dict(code="PHISH25", percent_off=25, duration=CouponDuration.FOREVER, products=["phishing"]),
    dict(code="TEAM10", percent_off=10, duration=CouponDuration.FOREVER, min_quantity=10),
]

DEPARTMENTS = {
    "Engineering": ["Ava Thompson", "Liam Patel", "Noah Kim", "Mia Rossi", "Ethan Clarke", "Zoe Nakamura",
                    "Lucas Moreau"],
    "Sales": ["Olivia Brown", "James Wilson", "Sophia Garcia", "Benjamin Lee", "Chloe Martin"],
    "Finance": ["Isabella Davies", "Henry Walker", "Grace O'Neill", "Samuel Okafor"],
    "Human Resources": ["Amelia Hughes", "Daniel Schmidt", "Ella Fischer"],
    "Operations": ["Jack Evans", "Harper Novak", "William Singh", "Lily Andersson", "Oscar Costa",
                   "Ruby Ahmed"],
}

CHILD_ACCOUNTS = [
    ("Acme Security GmbH", "it@acme-security.example.de"),
    ("Northwind Clinic (managed client)", "admin@northwind-clinic.example"),
]


@dataclass(frozen=True)
class SeedReport:
    created: int
    already_there: int

    def __str__(self) -> str:
        return f"{self.created} rows created, {self.already_there} already there"


def _email_for(name: str) -> str:
    local = name.lower().replace("'", "").replace(" ", ".")
    return f"{local}@acme-security.example"


def demo_account(session: Session) -> Account | None:
    """The demo account: the account of the seeded owner (company names are not unique)."""
    return session.exec(select(Account).join(User, User.account_id == Account.id)
                        .where(User.email == DEMO_OWNER_EMAIL)).first()


def seed_demo(session: Session) -> SeedReport:
    created = 0
    existing = 0

    def get_or_add(model, where, **values):  # noqa: ANN001, ANN202
        nonlocal created, existing
        row = session.exec(select(model).filter_by(**where)).first()
        if row is not None:
            existing += 1
            return row
        row = model(**where, **values)
        session.add(row)
        session.flush()
        created += 1
        return row

    products: dict[str, Product] = {}
    for order, (code, name, description, plans) in enumerate(CATALOG):
        product = get_or_add(Product, {"code": code}, name=name, description=description, sort_order=order)
        products[code] = product
        for plan_order, (plan_code, plan_name, cents) in enumerate(plans):
            get_or_add(Plan, {"code": plan_code}, product_id=product.id, name=plan_name, unit_amount=cents,
                       currency="usd", sort_order=plan_order)

    for spec in COUPONS:
        spec = dict(spec)
        code = spec.pop("code")
        product_codes = spec.pop("products", [])
        spec["duration"] = spec["duration"].value
        coupon = get_or_add(Coupon, {"code": code}, **spec)
        for product_code in product_codes:
            get_or_add(CouponProduct, {"coupon_id": coupon.id, "product_id": products[product_code].id})

    # Found by its owner's email: another customer may sign up with the same company name.
    account = demo_account(session)
    if account is None:
        account = Account(name=DEMO_ACCOUNT_NAME)
        session.add(account)
        session.flush()
        created += 1
    else:
        existing += 1
    for email, name, role in DEMO_MEMBERS:
        get_or_add(User, {"email": email}, account_id=account.id, name=name, role=role.value)
    for department, names in DEPARTMENTS.items():
        for name in names:
            get_or_add(Employee, {"account_id": account.id, "email": _email_for(name)}, name=name,
                       department=department)
    for name, contact in CHILD_ACCOUNTS:
        get_or_add(ChildAccount, {"account_id": account.id, "name": name}, contact_email=contact)

    return SeedReport(created=created, already_there=existing)


def reset_demo(session: Session) -> None:
    """Put the demo account back to the seed: the seeded people only, and no licenses, seats, payment
    methods, invoices or history.

    Only the demo account is touched. Coupon redemption counts go back to what the seed says.
    """
    account = demo_account(session)
    if account is None:
        seed_demo(session)
        return
    license_ids = select(License.id).where(License.account_id == account.id)
    invoice_ids = select(Invoice.id).where(Invoice.account_id == account.id)
    session.execute(sa.delete(SeatAssignment).where(SeatAssignment.account_id == account.id))
    session.execute(sa.delete(CouponRedemption).where(CouponRedemption.license_id.in_(license_ids)))
    session.execute(sa.delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(invoice_ids)))
    session.execute(sa.delete(Invoice).where(Invoice.account_id == account.id))
    session.execute(sa.delete(License).where(License.account_id == account.id))
    session.execute(sa.delete(PaymentMethod).where(PaymentMethod.account_id == account.id))
    session.execute(sa.delete(AuditEvent).where(AuditEvent.account_id == account.id))
    session.execute(sa.delete(Employee).where(Employee.account_id == account.id))
    session.execute(sa.delete(ChildAccount).where(ChildAccount.account_id == account.id))
    # Members: back to the seeded people with their roles. Whoever joined during the demo is removed.
    session.execute(sa.delete(Invitation).where(Invitation.account_id == account.id))
    seeded = {email: role for email, _, role in DEMO_MEMBERS}
    for user in session.exec(select(User).where(User.account_id == account.id)).all():
        if user.email in seeded:
            user.role, user.removed_at, user.password_hash = seeded[user.email].value, None, None
        else:
            session.execute(sa.delete(AuthSession).where(AuthSession.user_id == user.id))
            user.removed_at, user.password_hash = user.removed_at or datetime.now(UTC), None
    account.provider_customer_id = None
    for spec in COUPONS:
        redeemed = session.execute(
            sa.select(sa.func.count()).select_from(CouponRedemption).join(Coupon)
            .where(Coupon.code == spec["code"])
        ).scalar_one()
        session.execute(sa.update(Coupon).where(Coupon.code == spec["code"])
                        .values(times_redeemed=spec.get("times_redeemed", 0) + redeemed))
    session.flush()
    seed_demo(session)
