"""Sign in, sign up, accept an invitation, "Try the demo", sign out.

Password hashing takes about 0.1 s of CPU, so the handlers that hash run as background events and do that
work in a thread of a pool of its own (`run(..., where=Where.PASSWORDS)`, state/calls.py): one person signing in
never stalls everyone else's clicks, and a burst of sign-ins never the purchases. The work itself is in plain
functions (`attempt_*`), tested without a browser. Passwords are read from the submitted form and never kept in
a state var.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import reflex as rx

from cf_portal import routes
from cf_portal.clock import now
from cf_portal.db import get_engine, session_scope
from cf_portal.services import auth, members
from cf_portal.services.errors import DomainError, SignInRequired
from cf_portal.settings import get_settings
from cf_portal.state.calls import Where, errors_by_field, outcome, run
from cf_portal.state.portal import PortalState, begin_session, end_session, safe_next


@dataclass
class Attempt:
    # Signed in: the one-time code the browser trades for its session cookie (never the session's token).
    handoff_code: str | None = None
    errors: dict[str, str] = field(default_factory=dict)  # field name → message ("form" for the whole form)


def sign_in_attempt(work: Callable[[], auth.SignedIn]) -> Attempt:
    """Run `work()`, a service that keeps its own transactions short (no password is hashed inside one) and
    commits what must stay even when it says no (failed sign-ins count); its refusal becomes messages, and the
    session it starts becomes a one-time code for the browser's cookie."""
    def signed_in() -> str:
        started = work()
        with session_scope() as session:
            return auth.hand_off(session, started, now=now())
    done = outcome(signed_in, failed="Something went wrong on our side. Try again in a moment.",
                   log_as="signing in failed")
    return Attempt(handoff_code=done.result) if done.error is None else Attempt(errors=errors_by_field(done.error))


def attempt_sign_in(form: dict, client: str) -> Attempt:
    return sign_in_attempt(lambda: auth.sign_in(get_engine(), email=form.get("email", ""), password=form.get("password", ""),
                                         remember=bool(form.get("remember")), client=client, now=now()))


def attempt_sign_up(form: dict, client: str) -> Attempt:
    return sign_in_attempt(lambda: auth.sign_up(get_engine(), company=form.get("company", ""), name=form.get("name", ""),
                                         email=form.get("email", ""), password=form.get("password", ""),
                                         client=client, now=now()))


def attempt_accept(token: str, form: dict, client: str) -> Attempt:
    return sign_in_attempt(lambda: members.accept_invitation(
        get_engine(), token=token, name=form.get("name", ""), password=form.get("password", ""),
        confirm=form.get("confirm_password", ""), client=client, now=now()))


def _demo_owner_session(client: str) -> auth.SignedIn:
    # A copy of the demo account lives for a day: copies are counted per client, together with sign-ups, so
    # one script cannot take every copy the cap allows.
    auth.count_sign_up(get_engine(), client=client, now=now())
    with session_scope() as session:
        return auth.demo_owner_session(session, now=now(), max_copies=get_settings().demo_max_copies)


def attempt_demo(client: str = "") -> Attempt:
    return sign_in_attempt(lambda: _demo_owner_session(client))


class AuthState(PortalState):
    """The sign-in, sign-up and invitation pages (each shows its own fields of these)."""

    email_error: str = ""
    password_error: str = ""
    company_error: str = ""
    name_error: str = ""
    confirm_error: str = ""
    form_error: str = ""
    busy: bool = False
    # The invitation page: whom it is for, or why it cannot be used.
    invitation: members.InvitationPreview | None = None
    invitation_error: str = ""

    def _next(self) -> str:
        return safe_next(self.router.url.query_parameters.get("next", ""))

    def _clear_errors(self) -> None:
        self.email_error = self.password_error = self.company_error = self.name_error = ""
        self.confirm_error = self.form_error = ""

    def _signed_in_already(self) -> bool:
        try:
            self._require()
            return True
        except SignInRequired:
            return False

    @rx.event
    def load(self):
        """The sign-in and sign-up pages: a member who is signed in already goes on to the page they wanted."""
        self._clear_errors()
        self.busy = False
        if self._signed_in_already():
            return rx.redirect(self._next(), replace=True)

    @rx.event
    def load_invitation(self):
        self._clear_errors()
        self.busy = False
        self.invitation, self.invitation_error = None, ""
        token = self.router.url.query_parameters.get("token", "")
        try:
            with session_scope(write=False) as session:
                self.invitation = members.preview_invitation(session, token=token, now=now())
        except DomainError as exc:
            self.invitation_error = exc.message

    def _begin(self) -> bool:
        if self.busy:
            return False  # a second press while the first is checked
        self._clear_errors()
        self.busy = True
        return True

    def _finish(self, attempt: Attempt) -> bool:
        """Show the outcome; True when signed in (the browser then trades the code for its cookie)."""
        self.busy = False
        if attempt.handoff_code is None:
            for name, message in attempt.errors.items():
                target = {"email": "email_error", "password": "password_error", "company": "company_error",
                          "name": "name_error", "confirm_password": "confirm_error"}.get(name, "form_error")
                setattr(self, target, message)
            return False
        return True

    @rx.event(background=True)
    async def sign_in(self, form_data: dict):
        async with self:
            if not self._begin():
                return
            client, next_path = self.router.session.client_ip, self._next()
        attempt = await run(attempt_sign_in, form_data, client, where=Where.PASSWORDS)
        async with self:
            ok = self._finish(attempt)
        if ok:
            yield begin_session(attempt.handoff_code, next_path)

    @rx.event(background=True)
    async def sign_up(self, form_data: dict):
        async with self:
            if not self._begin():
                return
            client = self.router.session.client_ip
        attempt = await run(attempt_sign_up, form_data, client, where=Where.PASSWORDS)
        async with self:
            ok = self._finish(attempt)
        if ok:
            yield begin_session(attempt.handoff_code, routes.LICENSES)

    @rx.event(background=True)
    async def accept_invitation(self, form_data: dict):
        async with self:
            if not self._begin():
                return
            token = self.router.url.query_parameters.get("token", "")
            client = self.router.session.client_ip
        attempt = await run(attempt_accept, token, form_data, client, where=Where.PASSWORDS)
        async with self:
            ok = self._finish(attempt)
        if ok:
            yield begin_session(attempt.handoff_code, routes.LICENSES)

    @rx.event(background=True)
    async def try_demo(self):
        """A copy of the demo account for this visitor (made in a worker thread), signed in as its owner."""
        async with self:
            if not get_settings().demo_mode:
                self.form_error = "The demo is not available here."
                return
            if not self._begin():
                return
            client, next_path = self.router.session.client_ip, self._next()
        attempt = await run(attempt_demo, client)
        async with self:
            ok = self._finish(attempt)
        if ok:
            yield begin_session(attempt.handoff_code, next_path)

    @rx.event
    def sign_out(self):
        """End this browser's session on the server (the token is useless afterwards, wherever it was copied)
        and clear its cookie: both happen at the /auth/signout route, which alone can see the cookie."""
        self._forget_session()
        return end_session()
