"""Settings → Sent emails (owners and billing admins): what the portal wrote to the account's people, with its
status; and the Contact us page's form, which writes to support through the same outbox."""

from __future__ import annotations

import reflex as rx

from cf_portal import routes
from cf_portal.clock import now
from cf_portal.services import emails
from cf_portal.services.auth import FormErrors
from cf_portal.services.emails import SentEmailRow
from cf_portal.services.errors import DomainError
from cf_portal.services.ids import parse_id
from cf_portal.services.roles import Permission
from cf_portal.settings import get_settings
from cf_portal.state.portal import PortalState

PAGE = 50


class SentEmailsState(PortalState):
    allowed: bool = False
    loaded: bool = False
    rows: list[SentEmailRow] = []
    # The message open in the dialog (0: none): its HTML goes into a sandboxed iframe (no script runs), its text
    # into a <pre>.
    open_id: int = 0
    open_subject: str = ""
    open_to: str = ""
    open_html: str = ""
    open_text: str = ""

    def _refresh(self) -> None:
        self.rows = self._read(lambda session, actor: emails.list_sent(session, actor=actor, limit=PAGE),
                               Permission.READ_SENT_EMAILS)

    @rx.event
    def load(self):
        self.open_id, self.open_html, self.open_text = 0, "", ""
        self.allowed = self._read(lambda session, actor: actor.can(Permission.READ_SENT_EMAILS))
        self.rows = []
        if self.allowed:
            self._refresh()
        self.loaded = True

    @rx.event
    def refresh(self):
        self._refresh()

    @rx.event
    def view(self, message_id: str | int):
        shown = self._read(lambda session, actor: emails.sent_email(
            session, actor=actor, message_id=parse_id(message_id, "That email")), Permission.READ_SENT_EMAILS)
        self.open_id, self.open_subject, self.open_to = shown.id, shown.subject, shown.recipient
        self.open_html, self.open_text = shown.html, shown.text

    @rx.event
    def set_view_open(self, is_open: bool):
        if not is_open:
            self.open_id, self.open_html, self.open_text = 0, "", ""


class SupportState(rx.State):
    """The support address (CF_SUPPORT_EMAIL) for pages anyone may open: the sign-in pages' foot and the
    accessibility statement (the Contact us form is for members who are signed in)."""

    @rx.var
    def support_email(self) -> str:
        return get_settings().support_email


class ContactState(PortalState):
    support_email: str = ""
    from_page: str = ""
    subject_error: str = ""
    message_error: str = ""
    form_error: str = ""
    sending: bool = False
    form_key: int = 0  # a new key empties the fields once the message is sent

    @rx.event
    def load(self):
        self._require()
        self.support_email = get_settings().support_email
        self.from_page = routes.safe_next(self.router.url.query_parameters.get("from", "") or routes.CONTACT)
        self.subject_error = self.message_error = self.form_error = ""

    @rx.event
    def send(self, form_data: dict):
        if self.sending:
            return
        self.subject_error = self.message_error = self.form_error = ""
        self.sending = True
        try:
            self._write(lambda session, actor: emails.send_to_support(
                session, actor=actor, subject=str(form_data.get("subject", "")),
                message=str(form_data.get("message", "")), page=self.from_page, now=now()))
        except FormErrors as exc:
            for error in exc.errors:
                setattr(self, f"{error.field}_error" if error.field in ("subject", "message") else "form_error",
                        error.message)
            return
        except DomainError as exc:
            self.form_error = exc.message
            return
        finally:
            self.sending = False
        self.form_key += 1
        return rx.toast.success("Message sent. We will answer by email.")
