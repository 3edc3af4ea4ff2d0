"""What `python -m cf_portal.cli seed` loads: in demo mode the demo account and the demo catalog with its
coupons; outside demo mode only the operator's catalog file (`CF_CATALOG_FILE`), never demo data.

Seeding is idempotent: it creates what is missing, matched by natural keys (codes, emails, names), and
changes nothing that is already there. No licenses and no payment methods are seeded.
"""

from __future__ import annotations

from sqlmodel import Session, select

from cf_portal.models import (
    Account,
    ChildAccount,
    Employee,
    Role,
    User,
)
from cf_portal.services.catalog import CatalogSpec, LoadReport, RowLoader, add_catalog, load_catalog

DEMO_ACCOUNT_NAME = "Acme Security Ltd"
DEMO_OWNER_EMAIL = "owner@acme-security.example"
# The demo account's members. None has a password: "Try the demo" signs in as the owner.
DEMO_MEMBERS = [
    (DEMO_OWNER_EMAIL, "Alex Morgan", Role.OWNER),
    ("billing@acme-security.example", "Priya Shah", Role.BILLING_ADMIN),
    ("it-admin@acme-security.example", "Tom Becker", Role.LICENSE_ADMIN),
    ("auditor@acme-security.example", "Nina Kowalski", Role.VIEWER),
]

# The demo catalog (per license per month) and the demo coupons; the README lists the same. Loaded in demo mode
# only: a production catalog comes from the operator's file (`cf_portal.services.catalog`).
DEMO_CATALOG = CatalogSpec.model_validate({
    "products": [
        {"code": "awareness", "name": "Security Awareness Training",
         "description": "Short, engaging courses that teach staff to spot and stop attacks.",
         "plans": [{"code": "awareness-starter", "name": "Starter", "unit_amount": 900},
                   {"code": "awareness-business", "name": "Business", "unit_amount": 1900},
                   {"code": "awareness-enterprise", "name": "Enterprise", "unit_amount": 3900}]},
        {"code": "phishing", "name": "Phishing Simulator",
         "description": "Realistic phishing campaigns with reporting per department.",
         "plans": [{"code": "phishing-standard", "name": "Standard", "unit_amount": 1200},
                   {"code": "phishing-advanced", "name": "Advanced", "unit_amount": 2400}]},
        {"code": "darkweb", "name": "Dark Web Monitoring",
         "description": "Alerts when company credentials appear in breaches and on dark-web markets.",
         "plans": [{"code": "darkweb-essentials", "name": "Essentials", "unit_amount": 1500},
                   {"code": "darkweb-pro", "name": "Pro", "unit_amount": 2900}]},
    ],
    "coupons": [
        {"code": "WELCOME20", "percent_off": 20, "duration": "forever"},
        {"code": "TENOFF", "amount_off": 1000, "currency": "usd", "duration": "once"},
        {"code": "SPRING15", "percent_off": 15, "duration": "repeating", "duration_months": 3},
        {"code": "EXPIRED25", "percent_off": 25, "duration": "forever", "expires_at": "2024-12-31T23:59:00Z"},
        {"code": "LAUNCH50", "percent_off": 50, "duration": "forever", "max_redemptions": 100,
         "times_redeemed": 100},
        {"code": "PHISH25", "percent_off": 25, "duration": "forever", "products": ["phishing"]},
        {"code": "TEAM10", "percent_off": 10, "duration": "forever", "min_quantity": 10},
    ],
})

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


def _email_for(name: str) -> str:
    local = name.lower().replace("'", "").replace(" ", ".")
    return f"{local}@acme-security.example"


def demo_account(session: Session) -> Account | None:
    """The demo account: the account of the seeded owner (company names are not unique)."""
    return session.exec(select(Account).join(User, User.account_id == Account.id)
                        .where(User.email == DEMO_OWNER_EMAIL)).first()


def seed(session: Session, *, demo_mode: bool, catalog: CatalogSpec | None) -> LoadReport | None:
    """What `python -m cf_portal.cli seed` loads: in demo mode the demo account and catalog; outside it only
    the operator's catalog (None when there is none to load). Demo data never enters a production install."""
    if demo_mode:
        return seed_demo(session)
    return load_catalog(session, catalog) if catalog is not None else None


def seed_demo(session: Session) -> LoadReport:
    loader = RowLoader(session)
    get_or_add = loader.get_or_add
    add_catalog(loader, DEMO_CATALOG)

    # Found by its owner's email: another customer may sign up with the same company name.
    account = demo_account(session)
    if account is None:
        account = Account(name=DEMO_ACCOUNT_NAME)
        session.add(account)
        session.flush()
        loader.created += 1
    else:
        loader.already_there += 1
    for email, name, role in DEMO_MEMBERS:
        get_or_add(User, {"email": email}, account_id=account.id, name=name, role=role.value)
    for department, names in DEPARTMENTS.items():
        for name in names:
            get_or_add(Employee, {"account_id": account.id, "email": _email_for(name)}, name=name,
                       department=department)
    for name, contact in CHILD_ACCOUNTS:
        get_or_add(ChildAccount, {"account_id": account.id, "name": name}, contact_email=contact)

    return loader.report()
