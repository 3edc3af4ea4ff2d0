"""The Licenses page: the account's licenses with assigned / available seats."""

from __future__ import annotations

import reflex as rx

from cf_portal.db import session_scope
from cf_portal.services.licenses import LicenseRow, list_licenses
from cf_portal.state.portal import PortalState


class LicensesState(PortalState):
    licenses: list[LicenseRow] = []
    loaded: bool = False
    # Set by Add License after a purchase, to confirm it at the top of the list.
    created_license_id: int = 0

    @rx.var
    def created_license(self) -> LicenseRow | None:
        return next((row for row in self.licenses if row.id == self.created_license_id), None)

    @rx.event
    def dismiss_created(self):
        self.created_license_id = 0

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
