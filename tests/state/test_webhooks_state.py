"""Settings → Webhooks without a browser: adding endpoints (the secret shown once and kept in no state var), field
errors kept with what was typed, pause, resume, roll, delete, the delivery log with its attempts and Resend, and
members who are not owners refused."""

from __future__ import annotations

import json
import logging
import re

import pytest
import reflex as rx
from reflex.utils.format import json_dumps
from sqlmodel import select

from cf_portal import db
from cf_portal.models import User, WebhookEndpoint, WebhookEvent
from cf_portal.services import webhooks
from cf_portal.services.errors import NotAllowed
from cf_portal.services.roles import REFUSALS, Permission
from cf_portal.state.webhooks import (
    LOG_PAGE,
    NEW_SECRET_INPUT,
    ROLLED_SECRET_INPUT,
    AddEndpointState,
    RollSecretState,
    WebhooksState,
)
from tests.state.conftest import new_root_state, sign_in_as, substate
from tests.support.events import run_now

URL = "http://127.0.0.1:8999/hooks"
VIEWER = "auditor@acme-security.example"


def toast(event: rx.event.EventSpec | list | None) -> tuple[str, str]:
    """(kind, text) of the toast among the events a handler returned; ("", "") for none."""
    for spec in event if isinstance(event, list) else [event]:
        if spec is None:
            continue
        found = re.search(r'\["(\w+)"\]\(("(?:[^"\\]|\\.)*")', str(spec.args[0][1]))
        if found:
            return found[1], json.loads(found[2])
    return "", ""


def secret_sent(events: list | None, input_id: str) -> str:
    """The value a handler's `rx.set_value(input_id, …)` puts into the browser's input ("" when none)."""
    for spec in events or []:
        args = dict((str(name), value) for name, value in spec.args)
        if "ref" in args and args["ref"]._var_value == f"ref_{input_id}":
            return args["value"]._var_value
    return ""


def every_state(state: rx.State) -> list[rx.State]:
    return [state, *(s for sub in state.substates.values() for s in every_state(sub))]


def assert_kept_nowhere(root: rx.State, secret: str) -> None:
    """Neither in what the state store keeps (every var of every state, `_backend` ones too) nor in what the
    browser gets as vars."""
    assert secret.startswith("whsec_")
    stored = b"".join(s._serialize() for s in every_state(root))
    dumped = repr([(s.dict(), s.__getstate__()) for s in every_state(root)])  # public and `_backend` vars
    assert secret.encode() not in stored
    assert secret not in dumped
    assert secret not in json_dumps(root.get_delta())


def loaded(root: rx.State) -> WebhooksState:
    state = substate(root, WebhooksState)
    run_now(state, "load")
    return state


def add(root: rx.State, url: str = URL, *, without: tuple[str, ...] = ()) -> tuple[AddEndpointState, list]:
    dialog = substate(root, AddEndpointState)
    dialog.open_add()
    dialog.set_url(url)
    dialog.set_description("Provisioning")
    for kind in without:
        dialog.set_event(kind, False)
    return dialog, dialog.create() or []


def stored_secret(endpoint_id: int) -> str:
    with db.session_scope(write=False) as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        return webhooks.endpoint_secret(row.id, row.secret_salt)


def account_of(state: WebhooksState) -> int:
    with db.session_scope(write=False) as session:
        return state._actor(session).account_id


def queue_events(account_id: int, count: int) -> None:
    with db.session_scope() as session:
        for n in range(count):
            webhooks.enqueue(session, account_id=account_id, type_="seat.assigned", data={"n": n})


def test_an_owner_adds_an_endpoint_and_gets_its_secret_once(root_state: rx.State,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    state = loaded(root_state)
    assert state.allowed and state.loaded and state.endpoints == []
    with caplog.at_level(logging.DEBUG):
        dialog, events = add(root_state, without=("license.canceled",))
    assert toast(events) == ("success", "Endpoint added.")
    [endpoint] = state.endpoints
    assert (endpoint.url, endpoint.description, endpoint.enabled) == (URL, "Provisioning", True)
    assert endpoint.event_types == [t for t in webhooks.EVENT_TYPES if t != "license.canceled"]
    assert dialog.created_url == URL and dialog.is_open  # the dialog now shows the secret
    secret = secret_sent(events, NEW_SECRET_INPUT)
    assert secret == stored_secret(endpoint.id)
    assert_kept_nowhere(root_state, secret)
    assert secret not in caplog.text

    assert dialog.create() is None  # a second click makes nothing more
    assert len(state.endpoints) == 1
    dialog.set_open(False)
    assert dialog.created_url == "" and not dialog.is_open
    dialog.open_add()  # a fresh form: all events checked again
    assert (dialog.url, dialog.events) == ("", list(webhooks.EVENT_TYPES))


def test_errors_stay_next_to_their_field_with_what_was_typed(root_state: rx.State) -> None:
    state = loaded(root_state)
    dialog, events = add(root_state, "ftp://example.com/hooks")
    assert secret_sent(events, NEW_SECRET_INPUT) == ""
    assert dialog.url_error.startswith("Enter the full address of your endpoint") and dialog.events_error == ""
    assert dialog.url == "ftp://example.com/hooks" and dialog.description == "Provisioning"

    dialog.set_url("http://10.0.0.7/hooks")  # typing clears the message; a private address is refused
    assert dialog.url_error == ""
    dialog.create()
    assert dialog.url_error == "The address must start with https://."

    dialog.set_url(URL)
    for kind in webhooks.EVENT_TYPES:
        dialog.set_event(kind, False)
    dialog.set_event("no.such.event", True)  # what the browser may send: ignored
    assert dialog.events == []
    dialog.create()
    assert dialog.events_error.startswith("Choose at least one of the events") and dialog.url_error == ""
    assert dialog.url == URL and dialog.created_url == ""
    assert state.endpoints == []


def test_pause_resume_roll_and_delete(root_state: rx.State) -> None:
    state = loaded(root_state)
    _, events = add(root_state)
    first_secret = secret_sent(events, NEW_SECRET_INPUT)
    endpoint_id = state.endpoints[0].id

    assert toast(state.set_enabled(endpoint_id, False)) == (
        "success", f"Paused: nothing is sent to {URL} until you resume it.")
    assert state.endpoints[0].enabled is False
    assert toast(state.set_enabled(endpoint_id, True)) == ("success", f"Resumed: events are sent to {URL} again.")
    assert state.endpoints[0].enabled is True

    roll = substate(root_state, RollSecretState)
    roll.ask_roll(endpoint_id, URL)
    assert (roll.roll_id, roll.roll_url, roll.rolled) == (endpoint_id, URL, False)
    events = roll.roll()
    secret = secret_sent(events, ROLLED_SECRET_INPUT)
    assert secret == stored_secret(endpoint_id) != first_secret
    assert toast(events)[0] == "success" and roll.rolled
    assert_kept_nowhere(root_state, secret)
    assert roll.roll() is None and stored_secret(endpoint_id) == secret  # a second click rolls nothing
    roll.set_roll_open(False)
    assert (roll.roll_id, roll.rolled) == (0, False)

    state.ask_delete(endpoint_id, URL)
    assert toast(state.delete()) == ("success", f"Endpoint {URL} deleted, with its delivery log.")
    assert state.endpoints == [] and state.delete_id == 0
    assert state.delete() is None  # the second click of a double click


def test_the_delivery_log_pages_shows_attempts_and_resends(root_state: rx.State) -> None:
    state = loaded(root_state)
    add(root_state)
    endpoint_id = state.endpoints[0].id
    account_id = account_of(state)
    queue_events(account_id, LOG_PAGE + 4)
    assert webhooks.deliver_due(None, http_post=lambda *args: 200) == {"delivered": LOG_PAGE + 4}
    queue_events(account_id, 1)  # newest, not tried yet

    state.show_log(endpoint_id)
    assert state.log_endpoint_id == endpoint_id and state.log_endpoint_url == URL
    assert len(state.log) == LOG_PAGE and state.log_has_more and state.log_offset == 0
    newest = state.log[0]
    assert (newest.status, newest.attempts, newest.last_status_code) == ("pending", 0, None)
    delivered = state.log[1]
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == ("delivered", 1, 200)
    state.log_page(True)
    assert len(state.log) == 5 and not state.log_has_more and state.log_offset == LOG_PAGE
    state.log_page(False)
    assert state.log_offset == 0 and state.log[1].event_id == delivered.event_id

    state.show_attempts(delivered.id, delivered.event_id)
    assert state.attempts_event == delivered.event_id
    assert [(a.status_code, a.error) for a in state.attempts] == [(200, "")]
    state.set_attempts_open(False)
    assert (state.attempts_event, state.attempts) == ("", [])

    assert toast(state.resend(delivered.id)) == ("success", "Queued again: it is sent within a few seconds.")
    again = next(e for e in state.log if e.id == delivered.id)
    assert (again.status, again.attempts) == ("pending", 0)

    state.close_log()
    assert (state.log_endpoint_id, state.log) == (0, [])


def test_a_member_who_is_not_an_owner_is_told_and_refused(root_state: rx.State) -> None:
    owner = loaded(root_state)
    add(root_state)
    endpoint_id = owner.endpoints[0].id
    queue_events(account_of(owner), 1)
    with db.session_scope(write=False) as session:
        event_id = session.exec(select(WebhookEvent.id)).first()
        viewer_id = session.exec(select(User.id).where(User.email == VIEWER)).one()

    viewer_root = new_root_state()
    sign_in_as(viewer_root, viewer_id)
    state = loaded(viewer_root)
    assert state.loaded and not state.allowed and state.endpoints == []
    refusal = REFUSALS[Permission.MANAGE_WEBHOOKS]
    assert toast(state.show_log(endpoint_id)) == ("error", refusal)
    assert toast(state.set_enabled(endpoint_id, False)) == ("error", refusal)
    assert toast(state.resend(event_id)) == ("error", refusal)
    assert toast(state.show_attempts(event_id, "evt")) == ("error", refusal)
    with pytest.raises(NotAllowed):
        state.ask_delete(endpoint_id, URL)
    state.delete_id = endpoint_id  # whatever the browser's state says, the change is refused
    assert toast(state.delete()) == ("error", refusal)
    roll = substate(viewer_root, RollSecretState)
    with pytest.raises(NotAllowed):
        roll.ask_roll(endpoint_id, URL)
    roll.roll_id = endpoint_id
    assert toast(roll.roll()) == ("error", refusal) and not roll.rolled
    dialog = substate(viewer_root, AddEndpointState)
    with pytest.raises(NotAllowed):
        dialog.open_add()
    dialog.set_url(URL)
    assert dialog.create() is None and dialog.url_error == refusal
    with db.session_scope(write=False) as session:
        assert [e.enabled for e in webhooks.list_endpoints(session, actor=owner._actor(session))] == [True]


def test_a_failed_attempt_shows_as_retrying_with_its_answer(root_state: rx.State) -> None:
    state = loaded(root_state)
    add(root_state)
    queue_events(account_of(state), 1)
    assert webhooks.deliver_due(None, http_post=lambda *args: 503) == {"retrying": 1}
    state.show_log(state.endpoints[0].id)
    [entry] = state.log
    assert (entry.status, entry.attempts, entry.last_status_code) == ("pending", 1, 503)
    assert entry.last_error == "answered HTTP 503" and entry.next_attempt_at is not None


def test_coming_back_to_the_page_closes_what_was_open(root_state: rx.State) -> None:
    state = loaded(root_state)
    dialog, _ = add(root_state)
    roll = substate(root_state, RollSecretState)
    roll.ask_roll(state.endpoints[0].id, URL)
    state.show_log(state.endpoints[0].id)
    run_now(state, "load")
    assert (dialog.is_open, roll.roll_id, state.log_endpoint_id) == (False, 0, 0)
    assert len(state.endpoints) == 1
