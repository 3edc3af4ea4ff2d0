"""The base state: who is signed in, and what their role lets the pages show. Feature states inherit it.

The browser keeps only the session token (a cookie); every handler resolves the member from it again with
`_actor`, which also checks the permission the handler needs. The pages hide what a role cannot do using
the `can_*` flags, but those flags never decide anything on the server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

import reflex as rx

from cf_portal import routes
from cf_portal.services import auth, roles
from cf_portal.services.actors import Actor
from cf_portal.services.roles import Permission
from cf_portal.settings import get_settings

SESSION_COOKIE = "cf_session"
REMEMBERED_COOKIE = "cf_session_remembered"


def now() -> datetime:
    return datetime.now(UTC)


def sign_in_url(next_path: str) -> str:
    return f"{routes.SIGN_IN}?next={quote(next_path, safe='')}" if next_path else routes.SIGN_IN


def start_fresh(path: str) -> rx.event.EventSpec:
    """Load `path` with a new, empty browser state (a new Reflex client token), so nothing of the previous
    member's pages stays in this tab after signing in or out. Runs after the cookie change has been applied."""
    return rx.call_script(f"window.sessionStorage.removeItem('token'); window.location.assign({json.dumps(path)})")


def safe_next(next_path: str) -> str:
    """Only a path of this portal (never another site: "//evil.example" or "https://…")."""
    if next_path.startswith("/") and not next_path.startswith(("//", "/\\")) and not any(
            ord(c) < 32 for c in next_path):
        return next_path
    return routes.LICENSES


class PortalState(rx.State):
    account_name: str = ""
    user_name: str = ""
    role_label: str = ""
    can_buy: bool = False
    can_manage_payment_methods: bool = False
    can_manage_seats: bool = False
    can_manage_members: bool = False

    # The browser's session token: a session cookie, or a 30-day one with "Remember me".
    session_token: str = rx.Cookie("", name=SESSION_COOKIE, same_site="strict",
                                   secure=get_settings().secure_cookies or None)
    remembered_token: str = rx.Cookie("", name=REMEMBERED_COOKIE, max_age=auth.REMEMBER_DAYS * 86400,
                                      same_site="strict", secure=get_settings().secure_cookies or None)

    def _current_path(self) -> str:
        url = self.router.url
        return url.path + (f"?{url.query}" if url.query else "")

    def _actor(self, session, needs: Permission | None = None) -> Actor:  # noqa: ANN001
        """The signed-in member, from the session token, on every call; SignInRequired when there is none
        (the app answers with the sign-in page) and NotAllowed when the role lacks `needs`."""
        actor = auth.actor_for_token(session, self.session_token or self.remembered_token, now=now(),
                                     next_path=self._current_path())
        self._show_actor(actor)
        return actor.require(needs) if needs else actor

    def _require(self, needs: Permission | None = None) -> Actor:
        """Check the member (and their permission, if `needs`) in a short read, before a handler reads anything
        the browser sent."""
        from cf_portal.db import session_scope

        with session_scope(write=False) as session:
            return self._actor(session, needs)

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

    def _keep_session(self, signed_in: auth.SignedIn) -> None:
        self.session_token = "" if signed_in.remember else signed_in.token
        self.remembered_token = signed_in.token if signed_in.remember else ""

    def _forget_session(self) -> None:
        self.session_token = self.remembered_token = ""
        for name in ("account_name", "user_name", "role_label"):
            setattr(self, name, "")
        for name in ("can_buy", "can_manage_payment_methods", "can_manage_seats", "can_manage_members"):
            setattr(self, name, False)
