"""The Licenses page: the account's licenses with assigned / available seats."""

from __future__ import annotations

import reflex as rx

from cf_portal.db import session_scope
from cf_portal.services.licenses import LicenseRow, list_licenses
from cf_portal.state.portal import PortalState


class LicensesState(PortalState):
    licenses: list[LicenseRow] = []
    loaded: bool = False

    @rx.var
    def has_licenses(self) -> bool:
        return len(self.licenses) > 0

    @rx.event
    def load(self):
        with session_scope(write=False) as session:
            actor = self._actor(session)
            self.licenses = list_licenses(session, account_id=actor.account_id)
        self.account_name = actor.account_name
        self.user_name = actor.user_name
        self.loaded = True
