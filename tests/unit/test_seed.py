from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from cf_portal.db import all_metadata
from cf_portal.models import (
    Account,
    ChildAccount,
    Coupon,
    CouponProduct,
    Employee,
    License,
    PaymentMethod,
    Plan,
    Product,
    User,
)
from cf_portal.services.seed import DEMO_ACCOUNT_NAME, seed_demo


def _counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in all_metadata().sorted_tables
    }


def test_seed_twice_gives_the_same_rows(session: Session) -> None:
    first = seed_demo(session)
    session.commit()
    after_first = _counts(session)
    second = seed_demo(session)
    session.commit()
    assert _counts(session) == after_first
    assert second.created == 0
    assert second.already_there == first.created


def test_seed_holds_the_demo_account_and_catalog(session: Session) -> None:
    seed_demo(session)
    account = session.exec(select(Account).where(Account.name == DEMO_ACCOUNT_NAME)).one()
    employees = session.exec(select(Employee).where(Employee.account_id == account.id)).all()
    assert 20 <= len(employees) <= 30
    assert len({e.department for e in employees}) >= 3
    assert len(session.exec(select(ChildAccount).where(ChildAccount.account_id == account.id)).all()) == 2
    assert session.exec(select(User).where(User.account_id == account.id)).first() is not None

    prices = {
        (product.name, plan.name): plan.unit_amount
        for plan, product in session.exec(select(Plan, Product).join(Product))
    }
    assert prices == {
        ("Security Awareness Training", "Starter"): 900,
        ("Security Awareness Training", "Business"): 1900,
        ("Security Awareness Training", "Enterprise"): 3900,
        ("Phishing Simulator", "Standard"): 1200,
        ("Phishing Simulator", "Advanced"): 2400,
        ("Dark Web Monitoring", "Essentials"): 1500,
        ("Dark Web Monitoring", "Pro"): 2900,
    }
    codes = {c.code for c in session.exec(select(Coupon))}
    assert codes == {"WELCOME20", "TENOFF", "SPRING15", "EXPIRED25", "LAUNCH50", "PHISH25", "TEAM10"}
    phish = session.exec(select(Coupon).where(Coupon.code == "PHISH25")).one()
    restricted = session.exec(select(Product).join(CouponProduct).where(CouponProduct.coupon_id == phish.id)).all()
    assert [p.name for p in restricted] == ["Phishing Simulator"]
    # A new customer starts empty.
    assert session.exec(select(License)).first() is None
    assert session.exec(select(PaymentMethod)).first() is None


def test_reset_demo_goes_back_to_the_seed(session: Session) -> None:
    from cf_portal.services.seed import reset_demo
    from tests.factories import make_employee, make_license, make_plan

    seed_demo(session)
    session.commit()
    seeded = _counts(session)
    account = session.exec(select(Account).where(Account.name == DEMO_ACCOUNT_NAME)).one()
    make_employee(session, account, email="extra@example.com")
    make_license(session, account, make_plan(session), quantity=3)
    session.commit()
    reset_demo(session)
    session.commit()
    after = _counts(session)
    assert after["employee"] == seeded["employee"] and after["license"] == 0
    assert after["coupon"] == seeded["coupon"]
