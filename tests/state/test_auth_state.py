"""Signing in, up and out through the states: cookies, redirects, and passwords kept out of the state.

The tests of sign-ups at the same moment are only real races on PostgreSQL (on SQLite writers queue up behind
`BEGIN IMMEDIATE`); `make test` runs them there too. See tests/support/concurrency.py."""

from __future__ import annotations

import json
import threading

import pytest
import reflex as rx
from reflex_base.utils.format import json_dumps
from sqlmodel import select

from cf_portal import db
from cf_portal.models import AuthSession, Invitation, User
from cf_portal.services import auth as auth_service
from cf_portal.services import members, passwords
from cf_portal.services.actors import actor_for_user
from cf_portal.services.errors import SignInRequired
from cf_portal.state import auth as auth_state
from cf_portal.state.auth import AuthState
from cf_portal.state.licenses import LicensesState
from cf_portal.state.portal import PortalState, begin_session, safe_next, sign_in_url
from cf_portal.state.portal import now as portal_now
from tests.state.conftest import connect_with_cookie, demo_owner_id, follow_form_post, substate
from tests.support.concurrency import pausing_for_each_other, run_at_once
from tests.support.events import run_now

PASSWORD = "correct horse battery"
SIGN_UP = {"company": "NewCo", "name": "Fay Founder", "email": "fay@newco.example", "password": PASSWORD}


def script_of(event: rx.event.EventSpec) -> str:
    """The text of the event's arguments (a redirect's path, or the script of a fresh start)."""
    return " ".join(str(getattr(value, "_var_value", value)) for _, value in event.args)


def test_a_signed_out_browser_is_sent_to_sign_in_and_back(signed_out_state: rx.State) -> None:
    licenses = substate(signed_out_state, LicensesState)
    with pytest.raises(SignInRequired) as caught:
        licenses.load()
    assert caught.value.next_path == ""  # no page in a state test; the app adds the page's path
    assert sign_in_url("/employees?page=2") == "/signin?next=%2Femployees%3Fpage%3D2"
    assert licenses.licenses == [] and licenses.account_name == ""


@pytest.mark.parametrize(("asked", "goes_to"), [
    ("/employees", "/employees"), ("/licenses/new?plan=3", "/licenses/new?plan=3"),
    ("//evil.example/x", "/licenses"), ("https://evil.example", "/licenses"), ("/\\evil.example", "/licenses"),
    ("", "/licenses"), ("javascript:alert(1)", "/licenses"), ("/a\nb", "/licenses"),
])
def test_after_signing_in_only_pages_of_the_portal_are_followed(asked: str, goes_to: str) -> None:
    assert safe_next(asked) == goes_to


def test_sign_up_keeps_the_session_in_an_httponly_cookie_and_no_password_in_the_state(
        signed_out_state: rx.State) -> None:
    state = substate(signed_out_state, AuthState)
    assert state._begin()
    attempt = auth_state.attempt_sign_up(SIGN_UP, "10.1.1.1")
    assert state._finish(attempt) is True
    delta = json.dumps(signed_out_state.get_delta(), default=str)
    assert PASSWORD not in delta
    followed = follow_form_post(signed_out_state, begin_session(attempt.handoff_code, "/licenses"))
    assert followed.location == "/licenses"
    assert followed.set_cookie == f"cf_session={followed.token}; Path=/; HttpOnly; SameSite=Strict"  # no Max-Age
    licenses = substate(signed_out_state, LicensesState)
    licenses.load()
    assert (licenses.account_name, licenses.user_name, licenses.role_label) == ("NewCo", "Fay Founder", "Owner")
    assert licenses.can_buy and licenses.can_manage_seats and licenses.can_manage_members


def test_wrong_sign_up_fields_get_messages_next_to_them(signed_out_state: rx.State) -> None:
    state = substate(signed_out_state, AuthState)
    state._begin()
    state._finish(auth_state.attempt_sign_up({**SIGN_UP, "email": "nope", "password": "short"}, "10.1.1.1"))
    assert state.email_error.startswith("Enter a valid email address")
    assert state.password_error == "Use at least 10 characters (this has 5)."
    assert state.company_error == state.name_error == "" and state.busy is False


def test_remember_me_uses_the_30_day_cookie_and_sign_out_ends_the_session(signed_out_state: rx.State) -> None:
    state = substate(signed_out_state, AuthState)
    state._begin()
    state._finish(auth_state.attempt_sign_up(SIGN_UP, "10.1.1.1"))
    state._begin()
    attempt = auth_state.attempt_sign_in({"email": "FAY@newco.example", "password": PASSWORD, "remember": "on"},
                                         "10.1.1.1")
    state._finish(attempt)
    followed = follow_form_post(signed_out_state, begin_session(attempt.handoff_code, "/licenses"))
    assert followed.set_cookie.endswith(f"; Max-Age={30 * 86400}")
    token = followed.token
    substate(signed_out_state, LicensesState).load()
    event = state.sign_out()
    assert "removeItem('token')" in script_of(event) and "/auth/signout" in script_of(event)
    assert substate(signed_out_state, PortalState).account_name == ""
    signed_out = follow_form_post(signed_out_state, event, cookie_token=token)
    assert signed_out.location == "/signin" and "Max-Age=0" in signed_out.set_cookie and signed_out.token == ""
    with db.session_scope(write=False) as session:
        from cf_portal.services.auth import token_digest

        assert session.exec(select(AuthSession).where(AuthSession.token_hash == token_digest(token))).first() is None
    with pytest.raises(SignInRequired):
        substate(signed_out_state, LicensesState).load()


def test_a_wrong_password_is_a_form_message_and_counts(signed_out_state: rx.State,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    monkeypatch.setattr(auth_state, "now", lambda: datetime(2026, 11, 29, 12, 0, tzinfo=UTC))  # no time passes
    state = substate(signed_out_state, AuthState)
    state._begin()
    state._finish(auth_state.attempt_sign_up(SIGN_UP, "10.1.1.1"))
    for _ in range(3):
        state._begin()
        state._finish(auth_state.attempt_sign_in({"email": "fay@newco.example", "password": "not it at all"}, "c"))
        assert state.form_error == "The email or password is not right."
    state._begin()
    state._finish(auth_state.attempt_sign_in({"email": "fay@newco.example", "password": PASSWORD}, "c"))
    assert state.form_error.startswith("Too many failed sign-ins. Wait")


def test_one_email_signing_up_twice_at_once_gets_the_friendly_message(signed_out_state: rx.State,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Both sign-ups find the email free, then both insert it: the second is told the email has an account
    (not that something went wrong)."""
    monkeypatch.setattr(auth_service, "email_taken", pausing_for_each_other(auth_service.email_taken))
    attempts = []
    run_at_once(2, lambda i: attempts.append(
        auth_state.attempt_sign_up({**SIGN_UP, "company": f"NewCo {i}"}, f"10.3.3.{i}")))
    assert sorted(a.handoff_code is not None for a in attempts) == [False, True]
    assert [a.errors for a in attempts if a.handoff_code is None] == [
        {"email": auth_service.EMAIL_IN_USE}]


def test_an_invitation_withdrawn_while_the_password_is_hashed_makes_no_member(signed_out_state: rx.State,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    email = "late.joiner@acme-security.example"
    with db.session_scope() as session:
        owner = actor_for_user(session, demo_owner_id())
        token = members.invite(session, actor=owner, email=email, role="viewer", base_url="",
                               now=portal_now()).link.split("token=")[1]
    hash_password, withdrawn = passwords.hash_password, []

    def withdraw() -> None:
        with db.session_scope() as session:
            invitation_id = session.exec(select(Invitation.id).where(Invitation.email == email)).one()
            members.revoke_invitation(session, actor=owner, invitation_id=invitation_id, now=portal_now())
        withdrawn.append(True)

    def withdrawn_while_hashing(password: str) -> str:
        owner_clicks = threading.Thread(target=withdraw)
        owner_clicks.start()
        owner_clicks.join(timeout=5)  # the acceptance must not hold a lock that keeps the owner waiting
        return hash_password(password)

    monkeypatch.setattr(passwords, "hash_password", withdrawn_while_hashing)
    attempt = auth_state.attempt_accept(token, {"name": "Late Joiner", "password": PASSWORD,
                                                "confirm_password": PASSWORD}, "10.4.4.4")
    with db.session_scope(write=False) as session:
        assert session.exec(select(User).where(User.email == email)).first() is None
    assert withdrawn == [True]
    assert attempt.handoff_code is None and "withdrawn" in attempt.errors["form"]


def test_try_the_demo_signs_in_the_demo_owner_only_in_demo_mode(signed_out_state: rx.State,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from cf_portal import settings

    state = substate(signed_out_state, AuthState)
    event = run_now(state, "try_demo")[-1]
    assert "/licenses" in script_of(event)
    follow_form_post(signed_out_state, event)
    licenses = substate(signed_out_state, LicensesState)
    licenses.load()
    assert (licenses.account_name, licenses.role_label) == ("Acme Security Ltd", "Owner")

    monkeypatch.setenv("CF_DEMO_MODE", "false")
    monkeypatch.setenv("CF_PAYMENT_PROVIDER", "sandbox")
    settings.get_settings.cache_clear()
    other = substate(signed_out_state, AuthState)
    other._forget_session()
    connect_with_cookie(signed_out_state, "")
    assert run_now(other, "try_demo") == []
    assert other.form_error == "The demo is not available here."


def _visitor_account(root: rx.State) -> int:
    with db.session_scope(write=False) as session:
        return substate(root, PortalState)._actor(session).account_id


def _employees(account_id: int) -> list[str]:
    from cf_portal.models import Employee

    with db.session_scope(write=False) as session:
        return sorted(session.exec(select(Employee.email).where(Employee.account_id == account_id)).all())


def test_each_demo_visitor_has_an_own_account_and_resets_only_that(app_engine,  # noqa: ANN001
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from cf_portal import settings
    from cf_portal.models import Employee
    from cf_portal.state.account_settings import AccountSettingsState, reset_demo_outcome
    from tests.state.conftest import new_root_state

    visitors = [new_root_state(), new_root_state()]
    for root in visitors:
        follow_form_post(root, run_now(substate(root, AuthState), "try_demo")[-1])
    first, second = (_visitor_account(root) for root in visitors)
    with db.session_scope(write=False) as session:
        template = session.get(User, demo_owner_id()).account_id
    assert len({first, second, template}) == 3
    seeded = _employees(template)
    with db.session_scope() as session:
        for account_id in (first, second):
            session.add(Employee(account_id=account_id, name="Demo Extra", email="extra@example.com"))

    settings_state = substate(visitors[0], AccountSettingsState)
    settings_state.load()
    assert settings_state.can_reset_demo
    settings_state._finish_reset_demo(reset_demo_outcome(settings_state._begin_reset_demo()))
    assert _employees(first) == seeded
    assert _employees(second) == sorted([*seeded, "extra@example.com"])  # the other visitor's demo is untouched
    assert _employees(template) == seeded

    monkeypatch.setenv("CF_DEMO_MAX_COPIES", "2")
    settings.get_settings.cache_clear()
    third = substate(new_root_state(), AuthState)
    assert run_now(third, "try_demo") == []
    assert "demo accounts are in use" in third.form_error


def test_a_signed_in_visitor_of_the_sign_in_page_goes_on(root_state: rx.State) -> None:
    state = substate(root_state, AuthState)
    event = state.load()
    assert event is not None and "/licenses" in script_of(event)


def test_a_signed_out_visitor_of_the_sign_in_page_stays(signed_out_state: rx.State) -> None:
    assert substate(signed_out_state, AuthState).load() is None


def _every_state(state: rx.State) -> list[rx.State]:
    return [state, *(s for sub in state.substates.values() for s in _every_state(sub))]


def test_the_session_token_is_in_no_state_var_and_not_in_the_state_store(signed_out_state: rx.State) -> None:
    """Reflex writes every state, `_underscore` vars and router data included, to its store (disk or Redis) and
    sends the public vars to the browser: the token must be in neither, only its digest may be."""
    state = substate(signed_out_state, AuthState)
    state._begin()
    attempt = auth_state.attempt_sign_in({"email": "owner@acme-security.example", "password": "x"}, "10.9.9.9")
    assert attempt.handoff_code is None  # the demo owner has no password
    state._begin()
    attempt = auth_state.attempt_sign_up(SIGN_UP, "10.1.1.1")
    assert state._finish(attempt)
    followed = follow_form_post(signed_out_state, begin_session(attempt.handoff_code, "/licenses"))
    substate(signed_out_state, LicensesState).load()
    secrets = (followed.token, attempt.handoff_code)
    stored = b"".join(s._serialize() for s in _every_state(signed_out_state))  # as the state store keeps them
    sent = json_dumps(signed_out_state.get_delta())  # as the browser gets them
    assert substate(signed_out_state, LicensesState).account_name == "NewCo"
    assert not any(secret.encode() in stored or secret in sent for secret in secrets)
    assert auth_service.token_digest(followed.token).encode() in stored  # what the handshake carries instead


def test_a_handoff_code_works_once_and_only_from_the_portals_own_pages(signed_out_state: rx.State) -> None:
    from starlette.testclient import TestClient

    from cf_portal.api import api

    state = substate(signed_out_state, AuthState)
    state._begin()
    attempt = auth_state.attempt_sign_up(SIGN_UP, "10.1.1.1")
    client = TestClient(api, base_url="http://127.0.0.1:3000")
    form = {"code": attempt.handoff_code, "next": "/employees"}
    refused = client.post("/auth/session", data=form, headers={"sec-fetch-site": "cross-site"},
                          follow_redirects=False)
    assert (refused.headers["location"], refused.headers.get("set-cookie")) == ("/signin", None)
    first = client.post("/auth/session", data=form, headers={"sec-fetch-site": "same-origin"},
                        follow_redirects=False)
    assert first.headers["location"] == "/employees" and "HttpOnly" in first.headers["set-cookie"]
    again = client.post("/auth/session", data=form, headers={"sec-fetch-site": "same-origin"},
                        follow_redirects=False)
    assert (again.headers["location"], again.headers.get("set-cookie")) == ("/signin", None)
