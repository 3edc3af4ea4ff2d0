from __future__ import annotations

from datetime import UTC, datetime

import pytest
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
    from cf_portal.payments.sandbox import SandboxProvider
    from cf_portal.services.demo import reset_template
    from tests.factories import make_employee, make_license, make_plan
    from tests.unit.conftest import NOW

    seed_demo(session)
    session.commit()
    seeded = _counts(session)
    account = session.exec(select(Account).where(Account.name == DEMO_ACCOUNT_NAME)).one()
    make_employee(session, account, email="extra@example.com")
    make_license(session, account, make_plan(session), quantity=3)
    session.commit()
    reset_template(session.get_bind(), SandboxProvider(session.get_bind()), now=NOW)
    after = _counts(session)
    assert after["employee"] == seeded["employee"] and after["license"] == 0
    assert after["coupon"] == seeded["coupon"]


def test_outside_demo_mode_the_seed_adds_no_demo_account_and_no_demo_coupon(cli_database: sa.Engine) -> None:
    from cf_portal import cli

    assert cli.main(["seed"]) == 0
    with Session(cli_database) as session:
        assert session.exec(select(Coupon)).first() is None
        assert session.exec(select(User)).first() is None
        assert session.exec(select(Account)).first() is None


CATALOG_FILE = {
    "products": [
        {"code": "awareness", "name": "Security Awareness Training", "description": "Courses.",
         "plans": [{"code": "awareness-starter", "name": "Starter", "unit_amount": 900},
                   {"code": "awareness-business", "name": "Business", "unit_amount": 1900, "currency": "eur"}]},
        {"code": "phishing", "name": "Phishing Simulator",
         "plans": [{"code": "phishing-standard", "name": "Standard", "unit_amount": 1200}]},
    ],
    "coupons": [
        {"code": " partner10 ", "percent_off": 10, "duration": "forever", "products": ["phishing"]},
        {"code": "FIRSTMONTH", "amount_off": 500, "currency": "usd", "duration": "once",
         "expires_at": "2027-06-30T23:59:00Z", "max_redemptions": 50, "min_quantity": 5},
    ],
}


def test_the_operators_catalog_file_is_loaded_once_however_often_it_is_run(
        cli_database: sa.Engine, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    import json

    from cf_portal import cli, settings

    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(CATALOG_FILE))
    assert cli.main(["load-catalog", str(path)]) == 0
    with Session(cli_database) as session:
        first = _counts(session)
    monkeypatch.setenv("CF_CATALOG_FILE", str(path))  # `seed` outside demo mode loads the file named here
    settings.get_settings.cache_clear()
    assert cli.main(["seed"]) == 0
    assert cli.main(["load-catalog"]) == 0
    with Session(cli_database) as session:
        assert _counts(session) == first
        assert (first["product"], first["plan"], first["coupon"], first["account"]) == (2, 3, 2, 0)
        partner = session.exec(select(Coupon).where(Coupon.code == "PARTNER10")).one()
        assert [p.code for p in session.exec(select(Product).join(CouponProduct)
                                             .where(CouponProduct.coupon_id == partner.id))] == ["phishing"]
        first_month = session.exec(select(Coupon).where(Coupon.code == "FIRSTMONTH")).one()
        assert (first_month.amount_off, first_month.max_redemptions, first_month.min_quantity) == (500, 50, 5)
        assert first_month.expires_at == datetime(2027, 6, 30, 23, 59, tzinfo=UTC)
        assert session.exec(select(Plan.currency).where(Plan.code == "awareness-business")).one() == "eur"


@pytest.mark.parametrize(("change", "says"), [
    (lambda c: c["coupons"][0].update(products=["darkweb"]), "darkweb"),
    (lambda c: c["coupons"][1].pop("currency"), "currency"),
    (lambda c: c["coupons"][0].update(duration="repeating"), "duration_months"),
    (lambda c: c["products"][1]["plans"][0].update(unit_amount=-1), "unit_amount"),
    (lambda c: c["products"][1]["plans"][0].update(code="awareness-starter"), "awareness-starter"),
    (lambda c: c["products"][0].update(colour="red"), "colour"),
])
def test_a_wrong_catalog_file_is_refused_with_the_reason_and_nothing_loaded(
        cli_database: sa.Engine, tmp_path, capsys: pytest.CaptureFixture, change, says: str) -> None:  # noqa: ANN001
    import copy
    import json

    from cf_portal import cli

    catalog = copy.deepcopy(CATALOG_FILE)
    change(catalog)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    assert cli.main(["load-catalog", str(path)]) == 1
    assert says in capsys.readouterr().err
    with Session(cli_database) as session:
        assert session.exec(select(Product)).first() is None


def test_a_catalog_file_in_toml_loads_the_same(cli_database: sa.Engine, tmp_path) -> None:  # noqa: ANN001
    from cf_portal import cli

    path = tmp_path / "catalog.toml"
    path.write_text('[[products]]\ncode = "awareness"\nname = "Security Awareness Training"\n'
                    '[[products.plans]]\ncode = "awareness-starter"\nname = "Starter"\nunit_amount = 900\n'
                    '[[coupons]]\ncode = "WINTER5"\npercent_off = 5\nduration = "once"\n')
    assert cli.main(["load-catalog", str(path)]) == 0
    with Session(cli_database) as session:
        assert session.exec(select(Plan.unit_amount)).all() == [900]
        assert session.exec(select(Coupon.code)).all() == ["WINTER5"]
