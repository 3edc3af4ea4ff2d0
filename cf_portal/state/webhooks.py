"""Settings → Webhooks (owners): the account's endpoints, their delivery log, and the dialogs that add an endpoint
and roll its signing secret.

A signing secret is never a var of any state (Reflex keeps every var in its state store): the handler that makes
one sends it to the browser once, as the payload of `rx.set_value` into a read-only input of the open dialog
(`NEW_SECRET_INPUT`, `ROLLED_SECRET_INPUT`). That input is mounted, hidden, as soon as the dialog opens, so the
value lands whatever order the browser applies the answer in; it goes when the dialog closes.
"""

from __future__ import annotations

import reflex as rx

from cf_portal.services import webhooks
from cf_portal.services.errors import DomainError
from cf_portal.services.ids import client_text, parse_id
from cf_portal.services.roles import Permission
from cf_portal.services.webhooks import AttemptView, EndpointView, EventView
from cf_portal.state.calls import errors_by_field
from cf_portal.state.portal import PortalState

EVENT_TYPES = list(webhooks.EVENT_TYPES)
LOG_PAGE = 20
NEW_SECRET_INPUT = "new_endpoint_secret"
ROLLED_SECRET_INPUT = "rolled_endpoint_secret"


class WebhooksState(PortalState):
    allowed: bool = False  # an owner (Permission.MANAGE_WEBHOOKS); the handlers check it again
    loaded: bool = False
    endpoints: list[EndpointView] = []

    # The endpoint whose delivery log is shown (0: none), one page of it, newest first.
    log_endpoint_id: int = 0
    log_endpoint_url: str = ""
    log: list[EventView] = []
    log_offset: int = 0
    log_has_more: bool = False

    # The attempts of one event of the log (a dialog).
    attempts_event: str = ""
    attempts: list[AttemptView] = []

    delete_id: int = 0
    delete_url: str = ""

    def _refresh(self) -> None:
        self.endpoints = self._read(lambda session, actor: webhooks.list_endpoints(session, actor=actor),
                                    Permission.MANAGE_WEBHOOKS)
        if self.log_endpoint_id and all(e.id != self.log_endpoint_id for e in self.endpoints):
            self._close_log()

    def _close_log(self) -> None:
        self.log_endpoint_id, self.log_endpoint_url, self.log, self.log_offset, self.log_has_more = 0, "", [], 0, False
        self.attempts_event, self.attempts = "", []

    def _load_log(self, endpoint_id: int, offset: int) -> None:
        rows = self._read(lambda session, actor: webhooks.delivery_log(
            session, actor=actor, endpoint_id=endpoint_id, offset=offset, limit=LOG_PAGE + 1),
            Permission.MANAGE_WEBHOOKS)
        self.log_endpoint_id, self.log_offset = endpoint_id, offset
        self.log, self.log_has_more = rows[:LOG_PAGE], len(rows) > LOG_PAGE
        self.log_endpoint_url = next((e.url for e in self.endpoints if e.id == endpoint_id), "")

    @rx.event
    async def load(self):
        """The endpoints again; no log, dialog or typed address is kept from an earlier visit. A member who is
        not an owner is told so (and sees nothing of the endpoints)."""
        self._close_log()
        self.delete_id, self.delete_url = 0, ""
        (await self.get_state(AddEndpointState)).is_open = False
        roll = await self.get_state(RollSecretState)
        roll.roll_id, roll.rolled = 0, False
        self.allowed = self._read(lambda session, actor: actor.can(Permission.MANAGE_WEBHOOKS))
        self.endpoints = []
        if self.allowed:
            self._refresh()
        self.loaded = True

    @rx.event
    def show_log(self, endpoint_id: int):
        try:
            self._load_log(parse_id(endpoint_id, "That webhook endpoint"), 0)
        except DomainError as exc:
            return rx.toast.error(exc.message)

    @rx.event
    def close_log(self):
        self._require()
        self._close_log()

    @rx.event
    def log_page(self, forward: bool):
        if not self.log_endpoint_id:
            return
        offset = self.log_offset + LOG_PAGE if forward else max(self.log_offset - LOG_PAGE, 0)
        try:
            self._load_log(self.log_endpoint_id, offset)
        except DomainError as exc:
            self._close_log()
            return rx.toast.error(exc.message)

    @rx.event
    def refresh_log(self):
        if not self.log_endpoint_id:
            return
        try:
            self._load_log(self.log_endpoint_id, self.log_offset)
        except DomainError as exc:
            self._close_log()
            return rx.toast.error(exc.message)

    @rx.event
    def show_attempts(self, webhook_event_id: int, event_label: str):
        try:
            self.attempts = self._read(lambda session, actor: webhooks.attempts_of(
                session, actor=actor, webhook_event_id=parse_id(webhook_event_id, "That webhook event")),
                Permission.MANAGE_WEBHOOKS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.attempts_event = client_text(event_label, 100) or "this event"

    @rx.event
    def set_attempts_open(self, is_open: bool):
        self._require()
        if not is_open:
            self.attempts_event, self.attempts = "", []

    @rx.event
    def resend(self, webhook_event_id: int):
        try:
            self._write(lambda session, actor: webhooks.resend(
                session, actor=actor, webhook_event_id=parse_id(webhook_event_id, "That webhook event")),
                Permission.MANAGE_WEBHOOKS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        if self.log_endpoint_id:
            self._load_log(self.log_endpoint_id, self.log_offset)
        return rx.toast.success("Queued again: it is sent within a few seconds.")

    @rx.event
    def set_enabled(self, endpoint_id: int, enabled: bool):
        try:
            view = self._write(lambda session, actor: webhooks.set_enabled(
                session, actor=actor, endpoint_id=parse_id(endpoint_id, "That webhook endpoint"),
                enabled=bool(enabled)), Permission.MANAGE_WEBHOOKS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._refresh()
        if view.enabled:
            return rx.toast.success(f"Resumed: events are sent to {view.url} again.")
        return rx.toast.success(f"Paused: nothing is sent to {view.url} until you resume it.")

    @rx.event
    def ask_delete(self, endpoint_id: int, url: str):
        self._require(Permission.MANAGE_WEBHOOKS)
        self.delete_id, self.delete_url = parse_id(endpoint_id, "That webhook endpoint"), client_text(url, 2000)

    @rx.event
    def cancel_delete(self):
        self._require()
        self.delete_id, self.delete_url = 0, ""

    @rx.event
    def delete(self):
        endpoint_id, url = self.delete_id, self.delete_url
        self.delete_id, self.delete_url = 0, ""
        if not endpoint_id:  # a second click on the closing dialog
            return
        try:
            self._write(lambda session, actor: webhooks.delete_endpoint(session, actor=actor, endpoint_id=endpoint_id),
                        Permission.MANAGE_WEBHOOKS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._refresh()
        return rx.toast.success(f"Endpoint {url} deleted, with its delivery log.")


class AddEndpointState(WebhooksState):
    """The "Add endpoint" dialog: the form, then (once made) the signing secret, shown once."""

    is_open: bool = False
    url: str = ""
    description: str = ""
    events: list[str] = EVENT_TYPES
    url_error: str = ""
    events_error: str = ""
    created_url: str = ""  # set once the endpoint is made: the dialog shows its secret instead of the form

    @rx.event
    def open_add(self):
        self._require(Permission.MANAGE_WEBHOOKS)
        self.url, self.description, self.events = "", "", list(EVENT_TYPES)
        self.url_error = self.events_error = self.created_url = ""
        self.is_open = True

    @rx.event
    def set_open(self, is_open: bool):
        self._require()
        self.is_open = bool(is_open)
        if not is_open:
            self.created_url = ""

    @rx.event
    def set_url(self, value: str):
        self._require()
        self.url, self.url_error = client_text(value, webhooks.URL_MAX + 1), ""

    @rx.event
    def set_description(self, value: str):
        self._require()
        self.description = client_text(value, 200)

    @rx.event
    def set_event(self, event_type: str, checked: bool):
        self._require()
        wanted = set(self.events) - {event_type}
        if checked and event_type in EVENT_TYPES:
            wanted.add(event_type)
        self.events, self.events_error = [t for t in EVENT_TYPES if t in wanted], ""

    @rx.event
    def create(self):
        if self.created_url:  # a second click: the endpoint is made already
            return
        self.url_error = self.events_error = ""
        try:
            made = self._write(lambda session, actor: webhooks.create_endpoint(
                session, actor=actor, url=self.url, event_types=self.events, description=self.description),
                Permission.MANAGE_WEBHOOKS)
        except DomainError as exc:
            errors = errors_by_field(exc, default="url")
            self.url_error, self.events_error = errors.get("url", ""), errors.get("events", "")
            if not (self.url_error or self.events_error):
                return rx.toast.error(exc.message)
            return
        self.created_url = made.endpoint.url
        self._refresh()
        return [rx.set_value(NEW_SECRET_INPUT, made.secret), rx.toast.success("Endpoint added.")]


class RollSecretState(WebhooksState):
    """The "Roll secret" dialog: a confirmation, then the new secret, shown once."""

    roll_id: int = 0
    roll_url: str = ""
    rolled: bool = False

    @rx.event
    def ask_roll(self, endpoint_id: int, url: str):
        self._require(Permission.MANAGE_WEBHOOKS)
        self.roll_id, self.roll_url = parse_id(endpoint_id, "That webhook endpoint"), client_text(url, 2000)
        self.rolled = False

    @rx.event
    def set_roll_open(self, is_open: bool):
        self._require()
        if not is_open:
            self.roll_id, self.roll_url, self.rolled = 0, "", False

    @rx.event
    def roll(self):
        if self.rolled or not self.roll_id:  # a second click: rolled already
            return
        endpoint_id = self.roll_id
        try:
            made = self._write(lambda session, actor: webhooks.roll_secret(
                session, actor=actor, endpoint_id=endpoint_id), Permission.MANAGE_WEBHOOKS)
        except DomainError as exc:
            self.roll_id, self.roll_url = 0, ""
            return rx.toast.error(exc.message)
        self.rolled = True
        return [rx.set_value(ROLLED_SECRET_INPUT, made.secret),
                rx.toast.success("New secret made: the old one no longer signs deliveries.")]
