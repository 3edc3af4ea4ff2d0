"""Rules that the database itself holds, whatever the Python code does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from cf_portal.models import Coupon, PaymentMethod, SeatAssignment
from tests.factories import make_account, make_child_account, make_employee, make_license, make_plan


def _fails(session: Session, *rows) -> None:  # noqa: ANN002
    with pytest.raises(sa.exc.IntegrityError):
        with session.begin_nested():
            for row in rows:
                session.add(row)
            session.flush()


def _update_fails(session: Session, statement: str, **params) -> None:  # noqa: ANN003
    with pytest.raises(sa.exc.IntegrityError):
        with session.begin_nested():
            session.execute(sa.text(statement), params)


def test_license_quantity_must_be_positive(session: Session) -> None:
    account, _ = make_account(session)
    plan = make_plan(session)
    lic = make_license(session, account, plan, quantity=1)
    _update_fails(session, "UPDATE license SET quantity = 0 WHERE id = :id", id=lic.id)
    _update_fails(session, "UPDATE license SET quantity = -3 WHERE id = :id", id=lic.id)


def test_prices_cannot_be_negative(session: Session) -> None:
    account, _ = make_account(session)
    plan = make_plan(session)
    lic = make_license(session, account, plan)
    _update_fails(session, "UPDATE plan SET unit_amount = -1 WHERE id = :id", id=plan.id)
    _update_fails(session, "UPDATE license SET unit_amount = -1 WHERE id = :id", id=lic.id)
    _update_fails(session, "UPDATE license SET discount_amount = -5 WHERE id = :id", id=lic.id)


def test_a_holder_cannot_hold_two_open_seats_of_one_license(session: Session) -> None:
    account, user = make_account(session)
    lic = make_license(session, account, make_plan(session), quantity=5)
    employee = make_employee(session, account)
    child = make_child_account(session, account)

    first = SeatAssignment(account_id=account.id, license_id=lic.id, employee_id=employee.id)
    session.add(first)
    session.add(SeatAssignment(account_id=account.id, license_id=lic.id, child_account_id=child.id))
    session.flush()
    _fails(session, SeatAssignment(account_id=account.id, license_id=lic.id, employee_id=employee.id))
    _fails(session, SeatAssignment(account_id=account.id, license_id=lic.id, child_account_id=child.id))

    # Freed seats stay as history, and the holder may be given the license again.
    first.unassigned_at = datetime.now(UTC)
    first.unassigned_by_user_id = user.id
    session.flush()
    session.add(SeatAssignment(account_id=account.id, license_id=lic.id, employee_id=employee.id))
    session.flush()
    count = session.execute(
        sa.text("SELECT count(*) FROM seat_assignment WHERE employee_id = :e"), {"e": employee.id}
    ).scalar_one()
    assert count == 2


def test_a_seat_has_exactly_one_holder(session: Session) -> None:
    account, _ = make_account(session)
    lic = make_license(session, account, make_plan(session))
    employee = make_employee(session, account)
    child = make_child_account(session, account)
    _fails(session, SeatAssignment(account_id=account.id, license_id=lic.id))
    _fails(session, SeatAssignment(account_id=account.id, license_id=lic.id, employee_id=employee.id,
                                   child_account_id=child.id))


def test_never_more_seats_assigned_than_bought(session: Session) -> None:
    account, _ = make_account(session)
    lic = make_license(session, account, make_plan(session), quantity=2)
    session.execute(sa.text("UPDATE license SET seats_assigned = 2 WHERE id = :id"), {"id": lic.id})
    _update_fails(session, "UPDATE license SET seats_assigned = 3 WHERE id = :id", id=lic.id)
    _update_fails(session, "UPDATE license SET seats_assigned = -1 WHERE id = :id", id=lic.id)


def test_at_most_one_default_payment_method_per_account(session: Session) -> None:
    account, _ = make_account(session)
    other, _ = make_account(session)

    def card(acc, n: int, default: bool) -> PaymentMethod:  # noqa: ANN001
        return PaymentMethod(account_id=acc.id, provider_id=f"pm_{acc.id}_{n}", brand="visa", last4="4242",
                             exp_month=12, exp_year=2030, is_default=default)

    session.add_all([card(account, 1, True), card(account, 2, False), card(other, 1, True)])
    session.flush()
    _fails(session, card(account, 3, True))
    session.add(card(account, 4, False))
    session.flush()


def test_coupon_redemptions_cannot_pass_the_limit(session: Session) -> None:
    coupon = Coupon(code="LAST1", percent_off=10, duration="forever", max_redemptions=1, times_redeemed=1)
    session.add(coupon)
    session.flush()
    _update_fails(session, "UPDATE coupon SET times_redeemed = times_redeemed + 1 WHERE id = :id", id=coupon.id)
    # The conditional update the purchase uses takes nothing when the limit is reached.
    taken = session.execute(
        sa.text("UPDATE coupon SET times_redeemed = times_redeemed + 1 "
                "WHERE id = :id AND (max_redemptions IS NULL OR times_redeemed < max_redemptions)"),
        {"id": coupon.id},
    ).rowcount
    assert taken == 0


def test_coupon_code_is_stored_normalised_and_unique(session: Session) -> None:
    session.add(Coupon(code="SAVE5", percent_off=5, duration="forever"))
    session.flush()
    _fails(session, Coupon(code="save6", percent_off=5, duration="forever"))
    _fails(session, Coupon(code="SAVE5", percent_off=7, duration="forever"))
    _fails(session, Coupon(code="BOTH", percent_off=5, amount_off=100, currency="usd", duration="forever"))
    _fails(session, Coupon(code="NOMONTHS", percent_off=5, duration="repeating"))


def test_employee_email_is_unique_within_an_account_only(session: Session) -> None:
    account, _ = make_account(session)
    other, _ = make_account(session)
    make_employee(session, account, email="sam@example.com")
    make_employee(session, other, email="sam@example.com")
    with pytest.raises(sa.exc.IntegrityError):
        with session.begin_nested():
            make_employee(session, account, email="sam@example.com")
    with pytest.raises(sa.exc.IntegrityError):
        with session.begin_nested():
            make_employee(session, account, email="Upper@Example.com")
