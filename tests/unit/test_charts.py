"""The series behind the charts: monthly spend over 12 months (services/billing.py) and seat use per license
(services/licenses.py), each of one account only."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import select

from cf_portal.db import session_scope
from cf_portal.models import Account, License
from cf_portal.services import billing
from cf_portal.services.licenses import list_licenses, seat_use
from tests.factories import make_invoice, make_license
from tests.unit.conftest import Seeded

TODAY = date(2026, 12, 5)


def at(year: int, month: int, day: int = 15) -> datetime:
    return datetime(year, month, day, 9, 30, tzinfo=UTC)


def test_twelve_months_oldest_first_paid_invoices_only_and_empty_months_zero(seeded: Seeded) -> None:
    other = seeded.other_actor()
    with session_scope(seeded.engine) as session:
        account = session.get(Account, seeded.actor.account_id)
        lic = make_license(session, account, seeded.plans["phishing-standard"])
        make_invoice(session, lic, created_at=at(2025, 12, 31), lines=[("a", 1, 5000)])  # the month before: out
        make_invoice(session, lic, created_at=at(2026, 1, 1), lines=[("a", 3, 1200)], discount=360)  # 3240
        make_invoice(session, lic, created_at=at(2026, 1, 31), lines=[("a", 1, 999)])
        make_invoice(session, lic, created_at=at(2026, 6), lines=[("a", 2, 1900)])
        make_invoice(session, lic, created_at=at(2026, 7), lines=[("a", 1, 7700)], status="open")  # not paid
        make_invoice(session, lic, created_at=at(2026, 12, 5), lines=[("a", 1, 1)])
        other_lic = make_license(session, session.get(Account, other.account_id), seeded.plans["phishing-standard"])
        make_invoice(session, other_lic, created_at=at(2026, 6), lines=[("b", 1, 100_000)])
    with session_scope(seeded.engine, write=False) as session:
        spend = billing.monthly_spend(session, account_id=seeded.actor.account_id, today=TODAY)
        nothing = billing.monthly_spend(session, account_id=seeded.other_actor("Empty").account_id, today=TODAY)
    assert [m.month for m in spend.months] == [f"2026-{month:02d}" for month in range(1, 13)]
    assert [m.cents for m in spend.months] == [3240 + 999, 0, 0, 0, 0, 3800, 0, 0, 0, 0, 0, 1]
    assert (spend.months[0].label, spend.months[0].amount, spend.months[1].amount) == ("Jan 2026", "$42.39", "$0.00")
    assert (spend.total, spend.has_spend, spend.currency) == ("$80.40", True, "usd")
    assert nothing.has_spend is False and [m.cents for m in nothing.months] == [0] * 12


def test_the_window_crosses_the_year(seeded: Seeded) -> None:
    with session_scope(seeded.engine, write=False) as session:
        spend = billing.monthly_spend(session, account_id=seeded.actor.account_id, today=date(2027, 2, 28))
    assert [m.month for m in spend.months][:2] == ["2026-03", "2026-04"] and spend.months[-1].label == "Feb 2027"


def test_seat_use_per_license_of_the_account_without_cancelled_ones(seeded: Seeded) -> None:
    other = seeded.other_actor()
    with session_scope(seeded.engine) as session:
        account = session.get(Account, seeded.actor.account_id)
        for existing in session.exec(select(License).where(License.account_id == account.id)):
            existing.status = "canceled"  # the demo's own licenses out of the way
        plan = seeded.plans["phishing-standard"]
        make_license(session, account, plan, quantity=10, seats_assigned=4, reference_name="Sales <i>team</i>")
        make_license(session, account, plan, quantity=3, reference_name="Ended", status="canceled")
        make_license(session, session.get(Account, other.account_id), plan, reference_name="Other Corp")
    with session_scope(seeded.engine, write=False) as session:
        series = seat_use(list_licenses(session, account_id=seeded.actor.account_id))
    assert [(s.name, s.assigned, s.available, s.quantity) for s in series] == [("Sales <i>team</i>", 4, 6, 10)]
