from __future__ import annotations

import reflex as rx
from reflex_base.utils.format import json_dumps
from sqlmodel import select

from cf_portal import db
from cf_portal.models import Account
from cf_portal.services.seed import DEMO_ACCOUNT_NAME
from cf_portal.state.licenses import LicensesState
from tests.factories import make_account, make_license, make_plan
from tests.state.conftest import substate


def test_load_shows_only_the_acting_accounts_licenses(root_state: rx.State) -> None:
    with db.session_scope() as session:
        demo = session.exec(select(Account).where(Account.name == DEMO_ACCOUNT_NAME)).one()
        plan = make_plan(session, unit_amount=1900)
        make_license(session, demo, plan, quantity=5, reference_name="<script>alert(1)</script> Sales")
        other, _ = make_account(session, "Other Corp")
        make_license(session, other, plan, quantity=9, reference_name="Not yours")

    state = substate(root_state, LicensesState)
    assert state.loaded is False
    state.load()

    assert state.loaded is True
    assert state.account_name == DEMO_ACCOUNT_NAME
    assert [row.reference_name for row in state.licenses] == ["<script>alert(1)</script> Sales"]
    row = state.licenses[0]
    assert (row.quantity, row.assigned, row.available) == (5, 0, 5)
    assert row.monthly_cost == 5 * 1900
    assert row.monthly_cost_display == "$95.00"
    # The seat chart: the same licenses, assigned / available (the demo's own count too, the other account's not).
    assert [(s.name, s.assigned, s.available) for s in state.seat_use] == [("<script>alert(1)</script> Sales", 0, 5)]
    assert state.seat_chart_height == 36 + 48


def test_the_browser_never_receives_password_hashes_or_session_digests(root_state: rx.State) -> None:
    from cf_portal.models import AuthSession, User

    state = substate(root_state, LicensesState)
    state.load()
    delta = json_dumps(root_state.get_delta())  # as Reflex sends it to the browser
    with db.session_scope(write=False) as session:
        digests = session.exec(select(AuthSession.token_hash)).all()
        hashes = [h for h in session.exec(select(User.password_hash)).all() if h]
    assert "licenses" in delta
    assert not any(secret in delta for secret in [*digests, *hashes]) and "$argon2" not in delta


def test_the_table_says_when_a_discount_ends_and_counts_licenses_in_trouble(root_state: rx.State) -> None:
    from datetime import UTC, datetime

    from cf_portal.models import Coupon

    bought = datetime(2026, 12, 4, 9, tzinfo=UTC)
    with db.session_scope() as session:
        demo = session.exec(select(Account).where(Account.name == DEMO_ACCOUNT_NAME)).one()
        plan = make_plan(session, unit_amount=1900)
        spring, welcome = (session.exec(select(Coupon).where(Coupon.code == code)).one()
                           for code in ("SPRING15", "WELCOME20"))
        make_license(session, demo, plan, reference_name="Spring", coupon_id=spring.id, created_at=bought)
        make_license(session, demo, plan, reference_name="Welcome", coupon_id=welcome.id, created_at=bought)
        make_license(session, demo, plan, reference_name="Late", status="past_due", created_at=bought)
        make_license(session, demo, plan, reference_name="Stopped", status="suspended", created_at=bought)

    state = substate(root_state, LicensesState)
    state.load()
    ends = {row.reference_name: row.discount_ends for row in state.licenses}
    assert ends == {"Spring": "Discount ends on 4 March 2027", "Welcome": "", "Late": "", "Stopped": ""}
    assert (state.past_due_count, state.suspended_count) == (1, 1)
