"""The Settings page: your profile, changing your password (which signs out every other browser), and, in
demo mode, resetting one's own demo account or moving it a month on."""

from __future__ import annotations

import reflex as rx
from sqlmodel import Session

from cf_portal import routes
from cf_portal.clock import now
from cf_portal.db import get_engine
from cf_portal.services import auth, demo, emails
from cf_portal.services.actors import Actor
from cf_portal.services.roles import Permission
from cf_portal.settings import get_settings
from cf_portal.state.auth import Attempt, sign_in_attempt
from cf_portal.state.calls import Outcome, Where, outcome, provider, run
from cf_portal.state.portal import PortalState, begin_session, end_session


def reset_demo_outcome(actor: Actor) -> Outcome[None]:
    """Reset the actor's demo account (runs in a worker thread: the provider is called)."""
    return outcome(lambda: demo.reset_demo_account(None, provider(), actor=actor, now=now()),
                   failed="The demo data could not be reset. Try again in a moment.",
                   log_as="resetting a demo account failed")


def advance_month_outcome(actor: Actor) -> Outcome[str]:
    """Move the actor's demo account a month on and bill what fell due (runs in a worker thread: the provider is
    called)."""
    return outcome(lambda: demo.advance_one_month(None, provider(), actor=actor, demo_mode=get_settings().demo_mode,
                                                  now=now()),
                   failed="The demo could not be moved a month on. Try again in a moment.",
                   log_as="advancing a demo account a month failed")


def attempt_change_password(actor: Actor, session_digest: str, form: dict) -> Attempt:
    return sign_in_attempt(lambda: auth.change_password(
        get_engine(), actor=actor, session_digest=session_digest, current=form.get("current_password", ""),
        new=form.get("new_password", ""), confirm=form.get("confirm_password", ""), now=now()))


PASSWORD_CHANGED = "password_changed"  # the query of the page shown again after a password change


class AccountSettingsState(PortalState):
    email: str = ""
    has_password: bool = False
    current_error: str = ""
    new_error: str = ""
    confirm_error: str = ""
    form_error: str = ""
    saving: bool = False
    form_key: int = 0  # a new key empties the password fields after a change
    reset_open: bool = False
    advance_open: bool = False
    advancing: bool = False
    can_reset_demo: bool = False  # an owner of the demo account, in demo mode (reset it, or advance a month)
    seat_access_email: bool = False  # employees are emailed "you now have access to <product>" (off by default)
    can_change_seat_access_email: bool = False
    can_read_sent_emails: bool = False

    @rx.event
    def load(self):
        actor, self.has_password, self.can_reset_demo = self._read(lambda session, actor: (
            actor, auth.has_password(session, user_id=actor.user_id),
            demo.may_reset(session, actor, demo_mode=get_settings().demo_mode)))
        self.email = actor.email
        self.seat_access_email = self._read(lambda session, actor: emails.seat_access_email(
            session, account_id=actor.account_id))
        self.can_change_seat_access_email = actor.can(Permission.MANAGE_SEATS)
        self.can_read_sent_emails = actor.can(Permission.READ_SENT_EMAILS)
        self.current_error = self.new_error = self.confirm_error = self.form_error = ""
        self.saving, self.reset_open, self.advance_open = False, False, False
        if self.router.url.query_parameters.get(PASSWORD_CHANGED):
            return rx.toast.success("Password changed. Every other browser was signed out.")

    @rx.event(background=True)
    async def change_password(self, form_data: dict):
        async with self:
            if self.saving:
                return
            self.current_error = self.new_error = self.confirm_error = self.form_error = ""
            actor = self._require()
            self.saving = True
            digest = self._session_digest()
        attempt = await run(attempt_change_password, actor, digest, form_data, where=Where.PASSWORDS)
        async with self:
            self.saving = False
            if attempt.handoff_code is None:
                for name, message in attempt.errors.items():
                    target = {"current_password": "current_error", "new_password": "new_error",
                              "confirm_password": "confirm_error"}.get(name, "form_error")
                    setattr(self, target, message)
                return
            self.has_password, self.form_key = True, self.form_key + 1
        # This browser's new session reaches its cookie through /auth/session, which reloads the page.
        yield begin_session(attempt.handoff_code, f"{routes.ACCOUNT_SETTINGS}?{PASSWORD_CHANGED}=1")

    @rx.event
    def set_seat_access_email(self, enabled: bool):
        self._write(lambda session, actor: emails.set_seat_access_email(session, actor=actor, enabled=bool(enabled)),
                    Permission.MANAGE_SEATS)
        self.seat_access_email = bool(enabled)
        return rx.toast.success("Employees will be emailed when they get a license." if enabled
                                else "Employees will not be emailed when they get a license.")

    @rx.event
    def sign_out_everywhere(self):
        self._write(lambda session, actor: auth.end_all_sessions(session, user_id=actor.user_id))
        self._forget_session()
        return end_session()

    @rx.event
    def set_reset_open(self, is_open: bool):
        self.reset_open = is_open

    @rx.event(background=True)
    async def reset_demo(self):
        """The visitor's own demo account back to the seed; its subscriptions are cancelled at the payment
        provider first, in a worker thread."""
        async with self:
            actor = self._begin_reset_demo()
        done = await run(reset_demo_outcome, actor)
        async with self:
            shown = self._finish_reset_demo(done)
        yield shown

    def _begin_reset_demo(self) -> Actor:
        self.reset_open = False
        return self._demo_owner()

    def _demo_owner(self) -> Actor:
        """The member of this tab, if they may reset or advance this demo account (else NotAllowed)."""
        def checked(session: Session, actor: Actor) -> Actor:
            demo.check_may_reset(session, actor, demo_mode=get_settings().demo_mode)
            return actor
        return self._read(checked, Permission.RESET_DEMO)

    def _finish_reset_demo(self, done: Outcome[None]) -> rx.event.EventSpec:
        if done.error is not None:
            return rx.toast.error(done.message)
        return rx.toast.success("The demo data is back to the seed.")

    @rx.event
    def set_advance_open(self, is_open: bool):
        self.advance_open = bool(is_open)

    @rx.event(background=True)
    async def advance_month(self):
        """The visitor's own demo account a month on: its licenses renew (or fail, or end) as they would after a
        month; the provider is called in a worker thread."""
        async with self:
            if self.advancing:
                return
            actor = self._begin_advance_month()
        done = await run(advance_month_outcome, actor)
        async with self:
            shown = self._finish_advance_month(done)
        yield shown

    def _begin_advance_month(self) -> Actor:
        self.advance_open = False
        actor = self._demo_owner()
        self.advancing = True
        return actor

    def _finish_advance_month(self, done: Outcome[str]) -> rx.event.EventSpec:
        self.advancing = False
        if done.error is not None:
            return rx.toast.error(done.message)
        return rx.toast.success(done.result)
