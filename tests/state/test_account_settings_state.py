"""Settings through its state: Sign out everywhere."""

from __future__ import annotations

import pytest
import reflex as rx
import sqlalchemy as sa
from sqlmodel import select

from cf_portal import db
from cf_portal.models import AuthSession, Invoice, License, Plan, User
from cf_portal.services.errors import SignInRequired
from cf_portal.state.account_settings import AccountSettingsState
from cf_portal.state.licenses import LicensesState
from cf_portal.state.portal import PortalState
from tests.state.conftest import (
    connect_with_cookie,
    demo_owner_id,
    follow_form_post,
    new_root_state,
    sign_in_as,
    substate,
)


def sessions_of(user_id: int) -> int:
    with db.session_scope(write=False) as session:
        return len(session.exec(select(AuthSession).where(AuthSession.user_id == user_id)).all())


def test_sign_out_everywhere_ends_every_session_of_the_member_and_only_theirs(app_engine: sa.Engine) -> None:
    owner = demo_owner_id()
    with db.session_scope(write=False) as session:
        colleague = session.exec(select(User.id).where(User.account_id == select(User.account_id).where(
            User.id == owner).scalar_subquery(), User.id != owner)).first()
    root_state, phone, laptop = new_root_state(), new_root_state(), new_root_state()  # the owner's browsers
    token = sign_in_as(root_state, owner)
    sign_in_as(phone, owner)
    laptop_token = sign_in_as(laptop, owner)
    coworker = new_root_state()
    sign_in_as(coworker, colleague)
    substate(root_state, LicensesState).load()
    assert sessions_of(owner) == 3 and sessions_of(colleague) == 1

    event = substate(root_state, AccountSettingsState).sign_out_everywhere()

    assert sessions_of(owner) == 0
    assert sessions_of(colleague) == 1  # another member stays signed in
    assert substate(root_state, PortalState).account_name == ""  # nothing of the account left on screen
    # This browser is sent to /auth/signout (a form post: the route alone can clear the HttpOnly cookie), which
    # clears its cookie and shows the sign-in page.
    assert "/auth/signout" in str(event)
    signed_out = follow_form_post(root_state, event, cookie_token=token)
    assert signed_out.location == "/signin" and "Max-Age=0" in signed_out.set_cookie
    for browser in (root_state, phone, laptop):  # every browser of the member, at its next click
        with pytest.raises(SignInRequired):
            substate(browser, LicensesState).load()
    connect_with_cookie(laptop, laptop_token)  # the old token, sent again, is no use either
    with pytest.raises(SignInRequired):
        substate(laptop, LicensesState).load()
    substate(coworker, LicensesState).load()
    assert substate(coworker, LicensesState).account_name == "Acme Security Ltd"


# --- Advance one month (demo mode) --------------------------------------------------------------------------


def _member(role: str) -> int:
    with db.session_scope(write=False) as session:
        account = session.get(User, demo_owner_id()).account_id
        return session.exec(select(User.id).where(User.account_id == account, User.role == role)).first()


def _buy_a_license(user_id: int) -> int:
    """A license of the demo account bought as Create does (5 × Business on a Visa)."""
    import uuid

    from cf_portal.payments import get_provider
    from cf_portal.services.actors import actor_for_user
    from cf_portal.services.payment_methods import add_payment_method
    from cf_portal.services.purchase import PurchaseRequest, create_license
    from cf_portal.state.portal import now

    with db.session_scope(write=False) as session:
        actor = actor_for_user(session, user_id)
        plan = session.exec(select(Plan.id).where(Plan.code == "awareness-business")).one()
    card = add_payment_method(None, get_provider(), actor=actor, number="4242424242424242", expiry="12/34",
                              cvc="123", today=now().date())
    return create_license(None, get_provider(), actor=actor, now=now(), request=PurchaseRequest(
        reference_name="Sales team", plan_id=plan, quantity=5, coupon_code="", payment_method_id=card.id,
        expected_total=9500, idempotency_key=uuid.uuid4().hex)).license_id


def _advance(root: rx.State) -> tuple[str, str]:
    from tests.state.test_access import toast
    from tests.support.events import run_now

    state = substate(root, AccountSettingsState)
    run_now(state, "load")
    run_now(state, "set_advance_open", True)
    assert state.advance_open and state.can_reset_demo
    events = run_now(state, "advance_month")
    assert state.advance_open is False and state.advancing is False
    return toast(events[-1])


def test_the_owner_advances_the_demo_a_month_and_reads_what_renewed(root_state: rx.State) -> None:
    assert _advance(root_state) == ("success", "A month has passed. There are no licenses yet: buy one to see it "
                                               "renew.")
    license_id = _buy_a_license(demo_owner_id())
    assert _advance(root_state) == ("success", "A month has passed: 1 license renewed.")
    with db.session_scope(write=False) as session:
        assert session.get(License, license_id).periods_billed == 2
        assert len(session.exec(select(Invoice).where(Invoice.license_id == license_id)).all()) == 2


@pytest.mark.parametrize("role", ["billing_admin", "license_admin", "viewer"])
def test_only_an_owner_may_advance_the_demo(app_engine: sa.Engine, role: str) -> None:
    from cf_portal.services.roles import REFUSALS, Permission
    from tests.state.test_access import told_by_event

    license_id = _buy_a_license(demo_owner_id())
    member = new_root_state()
    sign_in_as(member, _member(role))
    state = substate(member, AccountSettingsState)
    state.load()
    assert state.can_reset_demo is False  # the card with the button is not shown
    assert told_by_event(state, "advance_month") == REFUSALS[Permission.RESET_DEMO]
    with db.session_scope(write=False) as session:
        assert session.get(License, license_id).periods_billed == 1


def test_advancing_is_refused_outside_demo_mode(root_state: rx.State, monkeypatch: pytest.MonkeyPatch) -> None:
    from cf_portal import settings
    from cf_portal.services.demo import NOT_A_DEMO
    from tests.state.test_access import told_by_event

    license_id = _buy_a_license(demo_owner_id())
    monkeypatch.setenv("CF_DEMO_MODE", "false")
    monkeypatch.setenv("CF_PAYMENT_PROVIDER", "sandbox")
    settings.get_settings.cache_clear()
    state = substate(root_state, AccountSettingsState)
    state.load()
    assert state.can_reset_demo is False
    assert told_by_event(state, "advance_month") == NOT_A_DEMO
    with db.session_scope(write=False) as session:
        assert session.get(License, license_id).periods_billed == 1
    settings.get_settings.cache_clear()
