"""The base state: who is signed in, and what their role lets the pages show. Feature states inherit it.

The browser's session is an HttpOnly cookie that no script and no state var ever holds: the websocket's
handshake carries only the digest of its token (cf_portal/middleware.py), and every handler resolves the
member from that digest again with `_actor`, which also checks the permission the handler needs (`_require`, or
`_read`/`_write` for a service that needs a session too; state/calls.py says how a state runs services). The pages
hide what a role cannot do using the `can_*` flags, but those flags never decide anything on the server.
Signing in or out ends in a form posted to an HTTP route (cf_portal/api.py), which sets or clears the cookie.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote

import reflex as rx

from cf_portal import routes
from cf_portal.clock import now
from cf_portal.db import session_scope
from cf_portal.middleware import session_digest
from cf_portal.routes import safe_next  # noqa: F401  (the states' import of it)
from cf_portal.services import auth, roles
from cf_portal.services.actors import Actor
from cf_portal.services.roles import Permission

if TYPE_CHECKING:
    from sqlmodel import Session

T = TypeVar("T")


def sign_in_url(next_path: str) -> str:
    return f"{routes.SIGN_IN}?next={quote(next_path, safe='')}" if next_path else routes.SIGN_IN


def post_form(action: str, fields: dict[str, str]) -> rx.event.EventSpec:
    """Post `fields` to one of the portal's HTTP routes as a form (the page is replaced by its answer), with a
    new, empty browser state (a new Reflex client token), so nothing of the previous member's pages stays in
    this tab after signing in or out."""
    return rx.call_script(
        "(() => { window.sessionStorage.removeItem('token');"
        " const form = document.createElement('form'); form.method = 'POST';"
        f" form.action = {json.dumps(action)};"
        f" for (const [name, value] of Object.entries({json.dumps(fields)})) {{"
        " const input = document.createElement('input'); input.type = 'hidden'; input.name = name;"
        " input.value = value; form.appendChild(input); }"
        " document.body.appendChild(form); form.submit(); })()"
    )


def begin_session(code: str, next_path: str) -> rx.event.EventSpec:
    """Trade a sign-in's one-time code for the session cookie at /auth/session, then open `next_path`."""
    return post_form(routes.BEGIN_SESSION, {"code": code, "next": next_path})


def end_session() -> rx.event.EventSpec:
    """End this browser's session and clear its cookie at /auth/signout, then show the sign-in page."""
    return post_form(routes.END_SESSION, {})


class PortalState(rx.State):
    account_name: str = ""
    user_name: str = ""
    role_label: str = ""
    can_buy: bool = False
    can_manage_payment_methods: bool = False
    can_manage_seats: bool = False
    can_manage_members: bool = False

    def _current_path(self) -> str:
        url = self.router.url
        return url.path + (f"?{url.query}" if url.query else "")

    def _session_digest(self) -> str:
        """The digest of this browser's session token, from the websocket's handshake (never the token)."""
        return session_digest(self.router.headers.raw_headers)

    def _actor(self, session, needs: Permission | None = None) -> Actor:  # noqa: ANN001
        """The signed-in member, from the session token, on every call; SignInRequired when there is none
        (the app answers with the sign-in page) and NotAllowed when the role lacks `needs`."""
        actor = auth.actor_for_digest(session, self._session_digest(), now=now(), next_path=self._current_path())
        self._show_actor(actor)
        return actor.require(needs) if needs else actor

    def _require(self, needs: Permission | None = None) -> Actor:
        """Check the member (and their permission, if `needs`) in a short read, before a handler reads anything
        the browser sent."""
        with session_scope(write=False) as session:
            return self._actor(session, needs)

    def _read(self, work: Callable[[Session, Actor], T], needs: Permission | None = None) -> T:
        """`work(session, actor)` in one read-only unit of work, for the member of this tab (with `needs`)."""
        with session_scope(write=False) as session:
            return work(session, self._actor(session, needs))

    def _write(self, work: Callable[[Session, Actor], T], needs: Permission | None = None) -> T:
        """`work(session, actor)` in one unit of work that may write, committed when it returns."""
        with session_scope() as session:
            return work(session, self._actor(session, needs))

    def _show_actor(self, actor: Actor) -> None:
        values = {
            "account_name": actor.account_name,
            "user_name": actor.user_name,
            "role_label": roles.label(actor.role),
            "can_buy": actor.can(Permission.BUY),
            "can_manage_payment_methods": actor.can(Permission.MANAGE_PAYMENT_METHODS),
            "can_manage_seats": actor.can(Permission.MANAGE_SEATS),
            "can_manage_members": actor.can(Permission.MANAGE_MEMBERS),
        }
        for name, value in values.items():
            if getattr(self, name) != value:  # only assignments that change something reach the browser
                setattr(self, name, value)

    def _forget_session(self) -> None:
        for name in ("account_name", "user_name", "role_label"):
            setattr(self, name, "")
        for name in ("can_buy", "can_manage_payment_methods", "can_manage_seats", "can_manage_members"):
            setattr(self, name, False)
