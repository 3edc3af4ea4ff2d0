"""Small factories with random values, for tests of every layer."""

from __future__ import annotations

import secrets

from sqlmodel import Session

from cf_portal import clock
from cf_portal.models import Account, ChildAccount, Employee, Invoice, InvoiceLine, License, Plan, Product, User
from cf_portal.services.periods import period_bounds


def _tag() -> str:
    return secrets.token_hex(4)


def make_account(session: Session, name: str | None = None) -> tuple[Account, User]:
    account = Account(name=name or f"Company {_tag()}")
    session.add(account)
    session.flush()
    user = User(account_id=account.id, name=f"Owner {_tag()}", email=f"owner-{_tag()}@example.com", role="owner")
    session.add(user)
    session.flush()
    return account, user


def make_plan(session: Session, *, unit_amount: int = 1900, retired: bool = False) -> Plan:
    product = Product(code=f"p-{_tag()}", name=f"Product {_tag()}")
    session.add(product)
    session.flush()
    plan = Plan(product_id=product.id, code=f"plan-{_tag()}", name=f"Plan {_tag()}", unit_amount=unit_amount)
    session.add(plan)
    session.flush()
    return plan


def make_employee(session: Session, account: Account, **values) -> Employee:  # noqa: ANN003
    tag = _tag()
    employee = Employee(account_id=account.id, name=values.pop("name", f"Person {tag}"),
                        email=values.pop("email", f"person-{tag}@example.com"), **values)
    session.add(employee)
    session.flush()
    return employee


def make_child_account(session: Session, account: Account) -> ChildAccount:
    child = ChildAccount(account_id=account.id, name=f"Child {_tag()}", contact_email=f"c-{_tag()}@example.com")
    session.add(child)
    session.flush()
    return child


def make_license(session: Session, account: Account, plan: Plan, *, quantity: int = 5, **values) -> License:  # noqa: ANN003
    created_at = values.pop("created_at", None) or clock.now()
    start, end = period_bounds(created_at, 0)
    values = {"period_start": start, "period_end": end, **values}
    lic = License(account_id=account.id, plan_id=plan.id, reference_name=values.pop("reference_name", "Team"),
                  quantity=quantity, unit_amount=plan.unit_amount, currency=plan.currency, created_at=created_at,
                  **values)
    session.add(lic)
    session.flush()
    return lic


def make_invoice(session: Session, lic: License, *, lines: list[tuple[str, int, int]], discount: int = 0,
                 created_at=None, status: str = "paid", number: str | None = None) -> Invoice:  # noqa: ANN001
    """An invoice of `lic` with `lines` of (description, quantity, unit amount in cents), each line's amount
    quantity × unit; the discount comes off the total."""
    created_at = created_at or clock.now()
    subtotal = sum(quantity * unit for _, quantity, unit in lines)
    invoice = Invoice(account_id=lic.account_id, license_id=lic.id, number=number or f"INV-{_tag()}", status=status,
                      currency=lic.currency, subtotal=subtotal, discount=discount, total=subtotal - discount,
                      period_start=created_at, period_end=period_bounds(created_at, 0)[1], created_at=created_at)
    session.add(invoice)
    session.flush()
    session.add_all([InvoiceLine(invoice_id=invoice.id, description=description, quantity=quantity, unit_amount=unit,
                                 amount=quantity * unit) for description, quantity, unit in lines])
    session.flush()
    return invoice
