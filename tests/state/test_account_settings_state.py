"""Settings through its state: Sign out everywhere."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import select

from cf_portal import db
from cf_portal.models import AuthSession, User
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
