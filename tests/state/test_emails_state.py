"""Sent emails and Contact us without a browser: the log lists the account's messages and opens one (another
account's id is not found; a viewer is refused); the Contact us form keeps field errors per field, sends once
valid with the page it came from, and empties itself."""

from __future__ import annotations

import pytest
import reflex as rx
from sqlmodel import select

from cf_portal import db
from cf_portal.models import EmailMessage, User
from cf_portal.services import emails
from cf_portal.services.errors import NotAllowed, NotFound
from cf_portal.services.rate_limit import TokenBuckets
from cf_portal.state.account_settings import AccountSettingsState
from cf_portal.state.emails import ContactState, SentEmailsState
from tests.factories import make_account
from tests.state.conftest import at_url, new_root_state, sign_in_as, substate
from tests.state.test_webhooks_state import toast


@pytest.fixture(autouse=True)
def fresh_contact_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Contact us rate limit counts this test's messages only (ids repeat from one test database to the next)."""
    monkeypatch.setattr(emails, "CONTACT_LIMIT", TokenBuckets(rate=1 / 600, burst=5))


def messages() -> list[EmailMessage]:
    with db.session_scope(write=False) as session:
        return list(session.exec(select(EmailMessage).order_by(EmailMessage.id)).all())


def contact(root: rx.State, subject: str, message: str, path: str = "/contact?from=/employees") -> ContactState:
    at_url(root, path)
    state = substate(root, ContactState)
    state.load()
    return state, state.send({"subject": subject, "message": message})


def test_contact_us_keeps_field_errors_then_sends_with_the_page(root_state: rx.State) -> None:
    state, events = contact(root_state, "  ", "")
    assert (state.subject_error, state.message_error) == ("Enter a subject.", "Write your message.")
    assert events is None and messages() == [] and state.form_key == 0  # the typed fields stay as they are
    assert state.support_email == emails.get_settings().support_email
    state, events = contact(root_state, "Moving seats", "How?")
    assert toast(events) == ("success", "Message sent. We will answer by email.")
    assert (state.subject_error, state.message_error, state.form_key) == ("", "", 1)
    [sent] = messages()
    assert sent.kind == "contact" and sent.to_address == emails.get_settings().support_email
    assert "/employees" in sent.text_body


def test_the_sent_emails_log_opens_the_accounts_messages_only(root_state: rx.State) -> None:
    contact(root_state, "Hello", "There")
    log = substate(root_state, SentEmailsState)
    log.load()
    assert log.allowed and [r.kind for r in log.rows] == ["contact"]
    log.view(str(log.rows[0].id))
    assert log.open_subject == "[Contact us] Hello" and "There" in log.open_text and "<html" in log.open_html
    log.set_view_open(False)
    assert (log.open_id, log.open_html) == (0, "")
    other = new_root_state()
    with db.session_scope() as session:
        _, outsider = make_account(session)
    sign_in_as(other, outsider.id)
    foreign = substate(other, SentEmailsState)
    foreign.load()
    assert foreign.rows == []
    with pytest.raises(NotFound):
        foreign.view(str(log.rows[0].id))


def test_a_viewer_sees_no_log_and_cannot_open_one(root_state: rx.State) -> None:
    contact(root_state, "Hello", "There")
    [sent] = messages()
    with db.session_scope(write=False) as session:
        viewer = session.exec(select(User).where(User.role == "viewer")).first()
    root = new_root_state()
    sign_in_as(root, viewer.id)
    log = substate(root, SentEmailsState)
    log.load()
    assert not log.allowed and log.rows == []
    with pytest.raises(NotAllowed):
        log.view(str(sent.id))


def test_the_seat_access_email_setting_is_off_by_default_and_saved(root_state: rx.State) -> None:
    state = substate(root_state, AccountSettingsState)
    state.load()
    assert not state.seat_access_email and state.can_change_seat_access_email and state.can_read_sent_emails
    assert toast(state.set_seat_access_email(True))[0] == "success"
    state.load()
    assert state.seat_access_email
