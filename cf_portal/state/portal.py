"""The base state: who is signed in. Feature states inherit from it."""

from __future__ import annotations

import reflex as rx

from cf_portal.services.actors import Actor, actor_for_user, demo_user_id
from cf_portal.services.errors import DomainError
from cf_portal.settings import get_settings


class PortalState(rx.State):
    account_name: str = ""
    user_name: str = ""
    # Backend only: never sent to the browser.
    _user_id: int | None = None

    def _actor(self, session) -> Actor:  # noqa: ANN001
        """Resolve the acting user and account from the server side, on every call."""
        if self._user_id is None:
            if not get_settings().demo_mode:
                raise DomainError("Please sign in.")
            self._user_id = demo_user_id(session)
        actor = actor_for_user(session, self._user_id)
        # Only assignments that change something reach the browser.
        if self.account_name != actor.account_name:
            self.account_name = actor.account_name
        if self.user_name != actor.user_name:
            self.user_name = actor.user_name
        return actor
