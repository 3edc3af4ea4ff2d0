"""The Licenses page: the account's licenses with assigned / available seats."""

from __future__ import annotations

import reflex as rx

from cf_portal.services.errors import DomainError
from cf_portal.services.ids import client_text, parse_id
from cf_portal.services.licenses import LicenseRow, SeatUse, list_licenses, seat_use
from cf_portal.services.seats import SeatEvent, seat_history
from cf_portal.state.portal import PortalState


class LicensesState(PortalState):
    licenses: list[LicenseRow] = []
    seat_use: list[SeatUse] = []  # the seat chart: assigned / available per license
    loaded: bool = False
    past_due_count: int = 0  # licenses whose renewal payment failed (retried on days 1, 3 and 5)
    suspended_count: int = 0  # licenses whose renewal failed for good: their seats grant nothing until paid
    # Set by Add License after a purchase, to confirm it at the top of the list.
    created_license_id: int = 0

    @rx.var
    def created_license(self) -> LicenseRow | None:
        return next((row for row in self.licenses if row.id == self.created_license_id), None)

    history_open: bool = False
    history_title: str = ""
    history: list[SeatEvent] = []

    @rx.event
    def open_history(self, license_id: int, title: str):
        try:
            self.history = self._read(lambda session, actor: seat_history(
                session, account_id=actor.account_id, license_id=parse_id(license_id, "That license")))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.history_title, self.history_open = client_text(title, 300), True

    @rx.event
    def set_history_open(self, is_open: bool):
        self._require()
        self.history_open = bool(is_open)

    @rx.event
    def dismiss_created(self):
        self._require()
        self.created_license_id = 0

    @rx.var
    def has_licenses(self) -> bool:
        return len(self.licenses) > 0

    @rx.var
    def seat_chart_height(self) -> int:
        """One 36 px bar per license, plus the axis."""
        return 36 * len(self.seat_use) + 48

    @rx.event
    def load(self):
        """The list again; the history dialog of an earlier visit is not (a purchase's banner is kept until
        dismissed: Add License sets it just before it opens this page)."""
        self.history_open, self.history_title, self.history = False, "", []
        self.licenses = self._read(lambda session, actor: list_licenses(session, account_id=actor.account_id))
        self.seat_use = seat_use(self.licenses)
        self.past_due_count = sum(1 for row in self.licenses if row.status == "past_due")
        self.suspended_count = sum(1 for row in self.licenses if row.status == "suspended")
        self.loaded = True
