"""The Help panel's feedback form: the handler stores the answer for the member of the tab, resolved again from the
session on every call, never for ids the form sends."""

from __future__ import annotations

import pytest
import reflex as rx
from sqlmodel import select

from cf_portal import db
from cf_portal.models import HelpFeedback, User
from cf_portal.services.errors import SignInRequired
from cf_portal.state.help import HelpFeedbackState
from tests.factories import make_account
from tests.state.conftest import demo_owner_id, sign_in_as, substate
from tests.state.test_access import toast


def feedback_rows() -> list[tuple[int, int, str, str, str]]:
    with db.session_scope(write=False) as session:
        return [(r.account_id, r.user_id, r.page, r.answer, r.comment)
                for r in session.exec(select(HelpFeedback).order_by(HelpFeedback.id))]


def owner() -> User:
    with db.session_scope(write=False) as session:
        return session.get(User, demo_owner_id())


def test_feedback_is_stored_for_the_signed_in_member_whatever_the_form_says(root_state: rx.State) -> None:
    with db.session_scope() as session:
        other, other_user = make_account(session, "Other Corp")
        other_ids = (other.id, other_user.id)
    state = substate(root_state, HelpFeedbackState)
    done = state.send_feedback({"page": "add_license", "answer": "no", "comment": "Where is the coupon field?",
                                "account_id": str(other_ids[0]), "user_id": str(other_ids[1])})
    assert toast(done) == ("success", "Thanks for your feedback")
    me = owner()
    assert feedback_rows() == [(me.account_id, me.id, "add_license", "no", "Where is the coupon field?")]


@pytest.mark.parametrize("form", [
    {"page": "billing", "answer": "yes"},
    {"page": "licenses", "answer": "perhaps"},
    {"page": "licenses", "answer": "yes", "comment": "x" * 1001},
    {"page": ["licenses"], "answer": {"yes": 1}},
])
def test_a_refused_answer_says_why_and_stores_nothing(root_state: rx.State, form: dict) -> None:
    kind, message = toast(substate(root_state, HelpFeedbackState).send_feedback(form))
    assert kind == "error" and message
    assert feedback_rows() == []


def test_a_signed_out_browser_cannot_send_feedback(signed_out_state: rx.State) -> None:
    with pytest.raises(SignInRequired):
        substate(signed_out_state, HelpFeedbackState).send_feedback({"page": "licenses", "answer": "yes"})
    assert feedback_rows() == []


def test_a_member_removed_since_the_panel_opened_cannot_send_it(root_state: rx.State) -> None:
    from cf_portal.clock import now

    state = substate(root_state, HelpFeedbackState)
    with db.session_scope() as session:
        session.get(User, demo_owner_id()).removed_at = now()
    with pytest.raises(SignInRequired):
        state.send_feedback({"page": "licenses", "answer": "yes"})
    assert feedback_rows() == []


def test_the_member_is_read_from_the_session_at_each_call(root_state: rx.State) -> None:
    """Another member signing in on the same tab sends as themselves from then on."""
    with db.session_scope() as session:
        account, user = make_account(session, "Second Corp")
        ids = (account.id, user.id)
    state = substate(root_state, HelpFeedbackState)
    state.send_feedback({"page": "employees", "answer": "yes"})
    sign_in_as(root_state, ids[1])
    state.send_feedback({"page": "employees", "answer": "no"})
    me = owner()
    assert feedback_rows() == [(me.account_id, me.id, "employees", "yes", ""), (*ids, "employees", "no", "")]
