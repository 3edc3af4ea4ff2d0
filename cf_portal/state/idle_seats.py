"""The Idle seats panel of the Licenses page: what is paid for and not used, and its one action per license.

The panel is loaded with the page (`cf_portal.py` lists `IdleSeatsState.load` in the Licenses page's on_load). An
action names a license only: what it does (reduce to how many, free which seats) comes from the panel as this
state loaded it, never from the browser, and the services check it all again. "Reduce to N at renewal" tells the
payment provider, so it runs in a background handler (state/calls.py); freeing seats is one database transaction.
"""

from __future__ import annotations

import time

import reflex as rx

from cf_portal.clock import now
from cf_portal.db import session_scope
from cf_portal.services import license_changes
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.idle_seats import (
    PRODUCTS_REPORT_USE,
    IdleLicense,
    IdleSeats,
    free_deactivated_seats,
    idle_seats,
)
from cf_portal.services.ids import parse_id
from cf_portal.services.roles import Permission
from cf_portal.state.calls import Outcome, outcome, provider, run
from cf_portal.state.licenses import LicensesState
from cf_portal.state.portal import PortalState
from cf_portal.state.work import STUCK_AFTER_S

EMPTY = IdleSeats(licenses=[], renewing_licenses=0, idle=0, summary="", use_reported=False)
REDUCE_FAILED = "Something went wrong on our side. Nothing was changed; reload the page and try again."
FREE_FAILED = "Something went wrong on our side. No seat was freed; reload the page and try again."
# What each action needs, and who may do it.
NEEDS = {"reduce": Permission.CHANGE_LICENSES, "free": Permission.MANAGE_SEATS}
# The ids of the panel's heading and of each license's action button (components/idle_seats.py).
HEADING_ID = "idle-seats-heading"
ACTION_ID_PREFIX = "idle-action-"


def focus_back(license_id: int) -> rx.event.EventSpec:
    """Radix gives the focus back to a dialog's own trigger only, and these confirmations open from the panel's
    buttons: once one has closed (Radix then focuses the page, after a tick), the keyboard's focus goes back to the
    license's button, or to the panel's heading when the button is gone."""
    button = f"{ACTION_ID_PREFIX}{license_id}"
    return rx.call_script(f"setTimeout(() => (document.getElementById({button!r})"
                          f" || document.getElementById({HEADING_ID!r}))?.focus(), 50)")


def panel_of(account_id: int) -> IdleSeats:
    """The account's panel, in a read of its own (run in a worker thread by `load`)."""
    with session_scope(write=False) as session:
        return idle_seats(session, account_id=account_id, use=PRODUCTS_REPORT_USE)


def reduce_outcome(actor: Actor, license_id: int, quantity: int) -> Outcome[str]:
    """Runs in a worker thread: the payment provider is told of the decrease."""
    return outcome(lambda: license_changes.schedule_decrease(None, provider(), actor=actor, license_id=license_id,
                                                              quantity=quantity, now=now()),
                   failed=REDUCE_FAILED, log_as="scheduling a decrease from the idle seats panel failed")


class IdleSeatsState(PortalState):
    panel: IdleSeats = EMPTY
    loaded: bool = False
    can_reduce: bool = False  # the member may change licenses
    can_free: bool = False  # the member may free seats

    # The confirmation of one license's action.
    confirm_kind: str = ""  # "reduce" | "free" | "" (closed)
    confirm_license: IdleLicense | None = None
    working: bool = False
    _working_since: float = 0.0

    @rx.var
    def has_licenses(self) -> bool:
        return self.panel.renewing_licenses > 0

    @rx.var
    def has_idle_seats(self) -> bool:
        return len(self.panel.licenses) > 0

    def _show(self, actor: Actor, panel: IdleSeats) -> None:
        self.panel, self.loaded = panel, True
        self.can_reduce, self.can_free = actor.can(Permission.CHANGE_LICENSES), actor.can(Permission.MANAGE_SEATS)

    def _refresh(self) -> None:
        actor = self._require()
        self._show(actor, panel_of(actor.account_id))

    @rx.event
    async def load(self):
        """The panel again, read in a thread (every seat of the account is looked at: 1–2 s at 100,000 employees,
        which on the event loop would stall every other tab of this worker); a confirmation left open on an
        earlier visit is not kept, unless its action runs."""
        actor = self._require()
        if not self.working:
            self.confirm_kind, self.confirm_license = "", None
        self._show(actor, await run(panel_of, actor.account_id))

    @rx.event
    def ask(self, license_id: int):
        """Open the confirmation of the action the panel suggests for this license."""
        try:
            row = self._row(license_id)
            if row.action not in NEEDS:
                raise DomainError("There is nothing to do for this license.")
            self._require(NEEDS[row.action])
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.confirm_kind, self.confirm_license = row.action, row

    def _row(self, license_id: object) -> IdleLicense:
        wanted = parse_id(license_id, "That license")
        row = next((row for row in self.panel.licenses if row.license_id == wanted), None)
        if row is None:
            raise NotFound("That license")
        return row

    @rx.event
    def set_confirm_open(self, is_open: bool):
        self._require()
        row = self.confirm_license
        if not is_open and not self.working and row is not None:  # the dialog stays while its action runs
            self.confirm_kind, self.confirm_license = "", None
            return focus_back(row.license_id)
        return None

    @rx.event(background=True)
    async def reduce(self):
        async with self:
            begun = self._begin("reduce")
        if begun is None:
            return
        actor, row = begun
        reduced = await run(reduce_outcome, actor, row.license_id, row.reduce_to)
        async with self:
            events = self._finish(row, reduced.error, f"Reduced at renewal: {row.reference_name}, {reduced.result}.")
        for event in events:
            yield event

    @rx.event
    def free(self):
        begun = self._begin("free")
        if begun is None:
            return None
        _, row = begun
        freed = outcome(lambda: self._write(lambda session, actor: free_deactivated_seats(
            session, actor=actor, license_id=row.license_id, assignment_ids=[h.assignment_id for h in row.deactivated]),
            Permission.MANAGE_SEATS), failed=FREE_FAILED, log_as="freeing the seats of deactivated people failed")
        count = freed.result or 0
        return self._finish(row, freed.error, f"{row.reference_name}: {count} seat{'s' if count != 1 else ''} freed.")

    def _begin(self, kind: str) -> tuple[Actor, IdleLicense] | None:
        """The member and the license of the open confirmation, marked busy; None when none is open (or its action
        already runs). Refused (a toast) when the role may not."""
        if self.working and time.time() - self._working_since < STUCK_AFTER_S:
            return None
        row = self.confirm_license
        if self.confirm_kind != kind or row is None:
            return None
        try:
            actor = self._require(NEEDS[kind])
        except DomainError:
            self.confirm_kind, self.confirm_license = "", None
            raise
        self.working, self._working_since = True, time.time()  # last: nothing above may leave it stuck busy
        return actor, row

    def _finish(self, row: IdleLicense, error: DomainError | None, success: str) -> list[rx.event.EventSpec]:
        """Close the confirmation, show the panel (and the licenses) as they are now, and say what happened: the
        refusal, or `success`."""
        self.working, self.confirm_kind, self.confirm_license = False, "", None
        self._refresh()
        told = rx.toast.error(error.message) if error else rx.toast.success(success)
        return [LicensesState.load, focus_back(row.license_id), told]

