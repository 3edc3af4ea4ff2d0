"""Settings → API keys: owners make, list and revoke the keys the products call the entitlements API with.

A new key's secret is in no var of this state (Reflex keeps every var, `_underscore` ones too, in its state
store): `create` hands it to the browser once, as the payload of `rx.set_value` into the dialog's read-only
input, and forgets it.
"""

from __future__ import annotations

import reflex as rx

from cf_portal.services import api_keys
from cf_portal.services.api_keys import ApiKeyRow
from cf_portal.services.errors import DomainError
from cf_portal.services.ids import client_text, parse_id
from cf_portal.services.roles import Permission
from cf_portal.settings import get_settings
from cf_portal.state.calls import errors_by_field
from cf_portal.state.portal import PortalState

NEW_KEY_INPUT = "new_api_key"  # the read-only input the new key is written into, once


class ApiKeysState(PortalState):
    keys: list[ApiKeyRow] = []
    may_manage: bool = False  # an owner: the list and its actions (every handler checks again)
    loaded: bool = False

    create_open: bool = False
    name_error: str = ""
    creating: bool = False
    created_name: str = ""  # the key just made, whose secret the dialog's input shows once ("" before)

    revoke_id: int = 0
    revoke_name: str = ""

    def _refresh(self) -> None:
        self.keys = self._read(lambda session, actor: api_keys.list_rows(session, actor=actor),
                               Permission.MANAGE_API_KEYS)

    @rx.event
    def load(self):
        """The keys, for an owner; for anyone else, only the page's explanation (no list is read)."""
        actor = self._require()
        self.may_manage = actor.can(Permission.MANAGE_API_KEYS)
        self.keys = []
        if self.may_manage:
            self._refresh()
        self.loaded = True
        self.create_open, self.creating, self.created_name, self.name_error = False, False, "", ""
        self.revoke_id, self.revoke_name = 0, ""

    @rx.event
    def open_create(self):
        self._require(Permission.MANAGE_API_KEYS)
        self.name_error, self.created_name, self.create_open = "", "", True

    @rx.event
    def set_create_open(self, is_open: bool):
        self._require()
        if self.creating:
            return  # the key being made is shown when it is ready
        self.create_open = bool(is_open)
        if not is_open:
            self.created_name = self.name_error = ""

    @rx.event
    def create(self, form_data: dict):
        """Make the key named in the form; one per dialog (a double click, or Enter twice, makes one: this tab's
        events run one after the other, and the second finds the key made)."""
        if self.creating or self.created_name:
            return
        self._require(Permission.MANAGE_API_KEYS)
        self.name_error, self.creating = "", True
        yield  # the button shows it is working
        name = client_text(form_data.get("name", "") if isinstance(form_data, dict) else "", 200)
        try:
            made = self._write(lambda session, actor: api_keys.create(
                session, actor=actor, name=name, demo_mode=get_settings().demo_mode), Permission.MANAGE_API_KEYS)
        except DomainError as exc:
            self.name_error = errors_by_field(exc, default="name").get("name", exc.message)
            return
        finally:
            self.creating = False
        self.created_name = made.key.name
        self._refresh()
        yield rx.set_value(NEW_KEY_INPUT, made.secret)

    @rx.event
    def ask_revoke(self, key_id: int, name: str):
        self._require(Permission.MANAGE_API_KEYS)
        self.revoke_id, self.revoke_name = parse_id(key_id, "That API key"), client_text(name, 200)

    @rx.event
    def cancel_revoke(self):
        self._require()
        self.revoke_id, self.revoke_name = 0, ""

    @rx.event
    def revoke(self):
        key_id = self.revoke_id
        self.revoke_id = 0
        try:
            name = self._write(lambda session, actor: api_keys.revoke(session, actor=actor, key_id=key_id),
                               Permission.MANAGE_API_KEYS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._refresh()
        return rx.toast.success(f"{name} was revoked: the API refuses it from now on.")
