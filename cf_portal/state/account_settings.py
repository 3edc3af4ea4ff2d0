"""The Settings page: your profile, changing your password (which signs out every other browser), and, in
demo mode, resetting the demo data."""

from __future__ import annotations

import asyncio

import reflex as rx

from cf_portal import routes
from cf_portal.db import get_engine, session_scope
from cf_portal.services import auth, seed
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotAllowed
from cf_portal.services.roles import Permission
from cf_portal.settings import get_settings
from cf_portal.state.auth import Attempt, _attempt
from cf_portal.state.portal import PortalState, now, start_fresh


def attempt_change_password(actor: Actor, token: str, form: dict) -> Attempt:
    return _attempt(lambda: auth.change_password(
        get_engine(), actor=actor, token=token, current=form.get("current_password", ""), new=form.get("new_password", ""),
        confirm=form.get("confirm_password", ""), now=now()))


def reset_demo_outcome(actor: Actor) -> str:
    """Runs in a worker thread: "" once the demo account is back to the seed, else why not."""
    try:
        with session_scope() as session:
            demo = seed.demo_account(session)
            if not get_settings().demo_mode or demo is None or demo.id != actor.account_id:
                raise NotAllowed("Only an owner of the demo account can reset the demo, in demo mode.")
            seed.reset_demo(session)
    except DomainError as exc:
        return exc.message
    return ""


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
            demo = seed.demo_account(session) if get_settings().demo_mode else None
            self.can_reset_demo = (demo is not None and demo.id == actor.account_id
                                   and actor.can(Permission.RESET_DEMO))
        self.email = actor.email
        self.current_error = self.new_error = self.confirm_error = self.form_error = ""
        self.saving = False

    @rx.event(background=True)
    async def change_password(self, form_data: dict):
        async with self:
            if self.saving:
                return
            self.current_error = self.new_error = self.confirm_error = self.form_error = ""
            with session_scope(write=False) as session:
                actor = self._actor(session)
            self.saving = True
            token = self.session_token or self.remembered_token
        attempt = await asyncio.to_thread(attempt_change_password, actor, token, form_data)
        async with self:
            self.saving = False
            if attempt.signed_in is None:
                for name, message in attempt.errors.items():
                    target = {"current_password": "current_error", "new_password": "new_error",
                              "confirm_password": "confirm_error"}.get(name, "form_error")
                    setattr(self, target, message)
                return
            self._keep_session(attempt.signed_in)
            self.has_password, self.form_key = True, self.form_key + 1
        yield rx.toast.success("Password changed. Every other browser was signed out.")

    @rx.event
    def sign_out_everywhere(self):
        with session_scope() as session:
            actor = self._actor(session)
            auth.end_all_sessions(session, user_id=actor.user_id)
        self._forget_session()
        return start_fresh(routes.SIGN_IN)

    @rx.event
    def set_reset_open(self, is_open: bool):
        self.reset_open = is_open

    @rx.event(background=True)
    async def reset_demo(self):
        """Deleting what a demo visitor added (20,000 imported employees, say) runs in a worker thread."""
        async with self:
            self.reset_open = False
            actor = self._require(Permission.RESET_DEMO)
        error = await asyncio.to_thread(reset_demo_outcome, actor)
        yield rx.toast.error(error) if error else rx.toast.success("The demo data is back to the seed.")
