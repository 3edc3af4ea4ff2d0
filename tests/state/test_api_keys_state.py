"""Settings → API keys and the API documentation page, without a browser: owners make, list and revoke keys; the
new key reaches the browser only as an event's payload; other members are refused by every handler."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import reflex as rx
from sqlmodel import select

from cf_portal import db
from cf_portal.models import ApiKey, User
from cf_portal.services import api_keys
from cf_portal.services.api_guide import EXAMPLE_BASE_URL
from cf_portal.services.errors import NotAllowed
from cf_portal.state.api_docs import ApiDocsState
from cf_portal.state.api_keys import NEW_KEY_INPUT, ApiKeysState
from tests.state.conftest import at_url, new_root_state, sign_in_as, substate
from tests.state.test_access import toast
from tests.support.events import run_now

VIEWER = "auditor@acme-security.example"
BILLING_ADMIN = "billing@acme-security.example"


def page(root: rx.State) -> ApiKeysState:
    state = substate(root, ApiKeysState)
    run_now(state, "load")
    return state


def create(state: ApiKeysState, name: str) -> str:
    """Open the dialog, submit `name`; the key the browser was sent ('' when none)."""
    state.open_create()
    return sent_key(run_now(state, "create", {"name": name}))


def sent_key(events: list) -> str:
    """The value of the `rx.set_value` into the new key's input among `events` ('' when there is none)."""
    for event in events:
        if isinstance(event, rx.event.EventSpec) and event.handler.fn.__qualname__ == "_set_value":
            args = dict((str(name), value) for name, value in event.args)
            assert str(args["ref"]) == f'"ref_{NEW_KEY_INPUT}"'
            return str(args["value"]).strip('"')
    return ""


def every_state(root: rx.State) -> Iterator[rx.State]:
    yield root
    for child in root.substates.values():
        yield from every_state(child)


def keys_in_database() -> list[ApiKey]:
    with db.session_scope(write=False) as session:
        return list(session.exec(select(ApiKey).order_by(ApiKey.id)))


def signed_in(email: str) -> rx.State:
    root = new_root_state()
    with db.session_scope(write=False) as session:
        sign_in_as(root, session.exec(select(User.id).where(User.email == email)).one())
    return root


def test_an_owner_creates_a_key_shown_once_in_no_var(root_state: rx.State, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    state = page(root_state)
    assert state.may_manage and state.keys == []
    secret = create(state, "Phishing Simulator")
    assert secret.startswith("cfk_demo_") and len(secret) == len("cfk_demo_") + 43
    assert state.created_name == "Phishing Simulator" and state.name_error == "" and not state.creating
    [row] = state.keys
    assert (row.name, row.prefix, row.last_used, row.status) == (
        "Phishing Simulator", secret[:15] + "…", "Never", "Active")
    assert row.created.endswith(f" by {state.user_name}")

    # The key works, and it is nowhere in the state tree: no var, public or backend, nor the state store's bytes.
    with db.session_scope(write=False) as session:
        assert api_keys.authenticate(session, secret, scope=api_keys.ENTITLEMENTS_READ,
                                     now=api_keys.clock.now()).key_id == row.id
    for each in every_state(root_state):
        assert secret not in repr(vars(each)), each.get_full_name()
        assert secret not in repr(each.dict()), each.get_full_name()
        assert secret.encode() not in each._serialize(), each.get_full_name()
    assert secret not in caplog.text
    assert [k.secret_hash for k in keys_in_database()] == [api_keys.key_digest(secret)]


def test_closing_the_dialog_forgets_the_key_and_a_second_submit_makes_none(root_state: rx.State) -> None:
    state = page(root_state)
    assert create(state, "Dark Web Monitor")
    # A double click (or Enter twice): the second submit finds the key made and does nothing.
    assert sent_key(run_now(state, "create", {"name": "Dark Web Monitor"})) == ""
    assert len(keys_in_database()) == 1
    state.set_create_open(False)
    assert (state.create_open, state.created_name) == (False, "")
    assert create(state, "Another") and len(keys_in_database()) == 2


def test_a_bad_name_is_explained_next_to_the_field(root_state: rx.State) -> None:
    state = page(root_state)
    assert create(state, "   ") == ""
    assert state.name_error.startswith("Name the key after what will use it")
    assert state.create_open and state.created_name == "" and not state.creating
    assert create(state, "x" * 81) == "" and "80" in state.name_error
    assert sent_key(run_now(state, "create", ["not", "a", "form"])) == ""  # a crafted event
    assert state.name_error.startswith("Name the key after what will use it")
    assert keys_in_database() == []
    # Markup is a name like any other: kept as typed (the page shows it as text).
    assert create(state, "<script>alert(1)</script>")
    assert state.keys[0].name == "<script>alert(1)</script>" and state.name_error == ""


def test_an_owner_revokes_a_key_and_the_api_refuses_it(root_state: rx.State) -> None:
    state = page(root_state)
    secret = create(state, "Phishing Simulator")
    state.set_create_open(False)
    key_id = state.keys[0].id
    state.ask_revoke(key_id, "Phishing Simulator")
    assert (state.revoke_id, state.revoke_name) == (key_id, "Phishing Simulator")
    assert toast(state.revoke()) == ("success", "Phishing Simulator was revoked: the API refuses it from now on.")
    assert state.revoke_id == 0
    assert state.keys[0].status.startswith("Revoked on ")
    with db.session_scope(write=False) as session, pytest.raises(api_keys.InvalidApiKey):
        api_keys.authenticate(session, secret, scope=api_keys.ENTITLEMENTS_READ, now=api_keys.clock.now())


def test_cancelling_the_revoke_changes_nothing(root_state: rx.State) -> None:
    state = page(root_state)
    create(state, "Phishing Simulator")
    state.ask_revoke(state.keys[0].id, "Phishing Simulator")
    state.cancel_revoke()
    assert state.revoke_id == 0 and state.keys[0].status == "Active"


@pytest.mark.parametrize("email", [VIEWER, BILLING_ADMIN])
def test_other_members_see_why_and_every_handler_refuses_them(root_state: rx.State, email: str) -> None:
    owner = page(root_state)
    create(owner, "Phishing Simulator")
    key_id = owner.keys[0].id
    state = page(signed_in(email))
    assert (state.may_manage, state.keys, state.loaded) == (False, [], True)
    for attempt in (state.open_create, lambda: run_now(state, "create", {"name": "Mine"}),
                    lambda: state.ask_revoke(key_id, "Phishing Simulator")):
        with pytest.raises(NotAllowed, match="Only owners can manage API keys."):
            attempt()
    state.revoke_id = key_id  # as if the browser had sent it
    assert toast(state.revoke()) == ("error", "Only owners can manage API keys.")
    assert len(keys_in_database()) == 1 and keys_in_database()[0].revoked_at is None


def test_the_docs_page_lists_the_catalog_with_this_portals_address(root_state: rx.State) -> None:
    at_url(root_state, "/settings/api")
    state = substate(root_state, ApiDocsState)
    run_now(state, "load")
    assert [p.code for p in state.guide.products] == ["awareness", "phishing", "darkweb"]
    assert state.guide.event_types[0] == "seat.assigned"
    assert state.guide.base_url == EXAMPLE_BASE_URL  # state tests have no address: the placeholder stays


def test_any_member_reads_the_docs_page(app_engine: object) -> None:
    state = substate(signed_in(VIEWER), ApiDocsState)
    run_now(state, "load")
    assert state.guide is not None and "/api/v1/entitlements/check" in state.guide.curl_example
