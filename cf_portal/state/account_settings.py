"""The Settings page: your profile, changing your password (which signs out every other browser), and, in
demo mode, resetting one's own demo account."""

from __future__ import annotations

import asyncio

import reflex as rx

from cf_portal import routes
from cf_portal.db import get_engine, session_scope
from cf_portal.payments import get_provider
from cf_portal.services import auth, demo
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotAllowed
from cf_portal.services.roles import Permission
from cf_portal.settings import get_settings
from cf_portal.state.auth import Attempt, _attempt
from cf_portal.state.password_work import run_password_work
from cf_portal.state.portal import PortalState, begin_session, end_session, now


def reset_demo_outcome(actor: Actor) -> str:
    """Reset the actor's demo account; the refusal's words, or "" when it is done."""
    try:
        demo.reset_demo_account(get_engine(), get_provider(), actor=actor, now=now())
    except DomainError as exc:
        return exc.message
    return ""


def attempt_change_password(actor: Actor, session_digest: str, form: dict) -> Attempt:
    return _attempt(lambda: auth.change_password(
        get_engine(), actor=actor, session_digest=session_digest, current=form.get("current_password", ""), new=form.get("new_password", ""),
        confirm=form.get("confirm_password", ""), now=now()))


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
    can_reset_demo: bool = False  # an owner of the demo account, in demo mode

    @rx.event
    def load(self):
        with session_scope(write=False) as session:
            actor = self._actor(session)
            from cf_portal.models import User

            user = session.get(User, actor.user_id)
            self.has_password = user is not None and user.password_hash is not None
            self.can_reset_demo = (get_settings().demo_mode and actor.can(Permission.RESET_DEMO)
                                   and demo.is_demo_account(session, actor.account_id))
        self.email = actor.email
        self.current_error = self.new_error = self.confirm_error = self.form_error = ""
        self.saving, self.reset_open = False, False
        if self.router.url.query_parameters.get(PASSWORD_CHANGED):
            return rx.toast.success("Password changed. Every other browser was signed out.")

    @rx.event(background=True)
    async def change_password(self, form_data: dict):
        async with self:
            if self.saving:
                return
            self.current_error = self.new_error = self.confirm_error = self.form_error = ""
            with session_scope(write=False) as session:
                actor = self._actor(session)
            self.saving = True
            digest = self._session_digest()
        attempt = await run_password_work(attempt_change_password, actor, digest, form_data)
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
    def sign_out_everywhere(self):
        with session_scope() as session:
            actor = self._actor(session)
            auth.end_all_sessions(session, user_id=actor.user_id)
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
        error = await asyncio.to_thread(reset_demo_outcome, actor)
        async with self:
            shown = self._finish_reset_demo(error)
        yield shown

    def _begin_reset_demo(self) -> Actor:
        self.reset_open = False
        with session_scope(write=False) as session:
            actor = self._actor(session, Permission.RESET_DEMO)
            if not get_settings().demo_mode or not demo.is_demo_account(session, actor.account_id):
                raise NotAllowed(demo.NOT_A_DEMO)
        return actor

    def _finish_reset_demo(self, error: str) -> rx.event.EventSpec:
        if error:
            return rx.toast.error(error)
        return rx.toast.success("The demo data is back to the seed.")
