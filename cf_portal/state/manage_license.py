"""The Manage license page (/licenses/manage?id=<license id>): what one license costs and when it renews, and
the changes owners and billing admins make to it, through services/license_changes.py.

`ManageLicenseState` is the page: the license's details, the card it is billed to, and the buttons that act at
once (withdraw a scheduled change, cancel, resume, change the card, pay now). Each dialog is a substate of it:
`AddLicensesState`, `RemoveLicensesState`, `ChangePlanState`; they read and refresh the page's vars as their own.

The license's id comes from the URL once, in `load`, through `parse_id`; no handler takes an id from the browser
(the card's id is the one exception, parsed the same way), and every service call resolves the member again and
finds the license within their account. Whatever calls the payment provider runs in a background event (the
member and the busy flag under the tab's lock, the provider without it, the outcome under it again). Add licenses
and Change plan submit with a key made when their dialog opens: a second click, or Confirm pressed again after an
unconfirmed answer, sends the same key, and the service charges once per key.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import ClassVar

import reflex as rx

from cf_portal import routes
from cf_portal.clock import now, today
from cf_portal.services import license_changes, payment_methods, renewals
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.ids import MAX_ID_DIGITS, client_text, parse_id
from cf_portal.services.license_changes import ChangePreview, ChangeResult, ChangeUnconfirmed, LicenseDetail
from cf_portal.services.payment_methods import PaymentMethodView
from cf_portal.services.roles import Permission
from cf_portal.state.calls import Outcome, Unexpected, call
from cf_portal.state.calls import provider as payment_provider
from cf_portal.state.portal import PortalState
from cf_portal.state.work import STUCK_AFTER_S

MAX_QUANTITY_TEXT = 20  # longer than any number of licenses the checkout accepts, so its check still answers
CHANGE_FAILED = "Something went wrong on our side. Reload the page to see the license as it is, then try again."
CHARGE_FAILED = "Something went wrong on our side. Press Confirm again; you will not be charged twice."


def _license_id(value: object) -> int:
    return parse_id(value, "That license")


# --- the services, as the background events run them (in a worker thread: the provider may take seconds) --------


def withdraw_decrease(actor: Actor, license_id: int) -> str:
    license_changes.withdraw_decrease(None, payment_provider(), actor=actor, license_id=license_id, now=now())
    return "The decrease was withdrawn. The license renews with as many licenses as it has now."


def withdraw_plan_change(actor: Actor, license_id: int) -> str:
    license_changes.withdraw_plan_change(None, payment_provider(), actor=actor, license_id=license_id, now=now())
    return "The plan change was withdrawn. The license renews on the plan it has now."


def cancel_license(actor: Actor, license_id: int) -> str:
    ends = license_changes.set_cancel(None, payment_provider(), actor=actor, license_id=license_id, cancel=True,
                                      now=now())
    return f"The license ends on {ends}. Its seats keep working until then."


def resume_license(actor: Actor, license_id: int) -> str:
    renews = license_changes.set_cancel(None, payment_provider(), actor=actor, license_id=license_id, cancel=False,
                                        now=now())
    return f"The license was resumed. It renews on {renews}."


def pay_now(actor: Actor, license_id: int) -> str:
    step = renewals.pay_now(None, payment_provider(), actor=actor, license_id=license_id, now=now())
    if step == "renewed":
        return "Paid. The license is active again."
    if step == "unavailable":
        raise DomainError("The payment provider did not answer. Nothing was charged; try again in a moment.")
    raise DomainError("The card was declined again. Change the card, then pay now.")


def change_card(actor: Actor, license_id: int, payment_method_id: int) -> str:
    return license_changes.change_card(None, payment_provider(), actor=actor, license_id=license_id,
                                       payment_method_id=payment_method_id, now=now())


def schedule_decrease(actor: Actor, license_id: int, quantity: str) -> str:
    scheduled = license_changes.schedule_decrease(None, payment_provider(), actor=actor, license_id=license_id,
                                                  quantity=quantity, now=now())
    return f"From the next renewal: {scheduled}."


def add_licenses(actor: Actor, license_id: int, add: str, expected_due_now: int, key: str) -> ChangeResult:
    return license_changes.add_licenses(None, payment_provider(), actor=actor, license_id=license_id, add=add,
                                        expected_due_now=expected_due_now, idempotency_key=key, now=now())


def change_plan(actor: Actor, license_id: int, plan_id: int, expected_due_now: int, key: str) -> ChangeResult:
    return license_changes.change_plan(None, payment_provider(), actor=actor, license_id=license_id, plan_id=plan_id,
                                       expected_due_now=expected_due_now, idempotency_key=key, now=now())


def _toast(done: Outcome[str]) -> rx.event.EventSpec:
    return rx.toast.error(done.message) if done.error is not None else rx.toast.success(done.result)


def _keeps_key(error: DomainError | None) -> bool:
    """Whether a charge may have happened: the next Confirm must send the same key (it finishes that change)."""
    return isinstance(error, (Unexpected, ChangeUnconfirmed))


class ManageLicenseState(PortalState):
    detail: LicenseDetail | None = None
    loaded: bool = False
    missing: str = ""  # why there is no license to show ("That license was not found.")
    cards: list[PaymentMethodView] = []
    card_choice: str = ""
    card_error: str = ""
    busy: str = ""  # the page's action under way ("cancel", "card", ...): its button spins, the others wait
    cancel_open: bool = False

    # Backend only: the license of this page, from the URL (parsed once, in `load`).
    _license_id: int = 0
    _busy_since: float = 0.0

    @rx.var
    def employees_url(self) -> str:
        """Employees, filtered to the holders of this license's seats."""
        return f"{routes.EMPLOYEES}?license={self.detail.id}" if self.detail is not None else routes.EMPLOYEES

    @rx.var
    def can_change(self) -> bool:
        return self.detail is not None and self.detail.can_change

    @rx.var
    def is_open_license(self) -> bool:
        """Active, past due or suspended: it can still be changed by those who may."""
        return self.detail is not None and self.detail.status != "canceled"

    # --- loading ---------------------------------------------------------------------------------------------

    @rx.event
    async def load(self):
        self._require()
        if not self.busy:
            self.cancel_open, self.card_error = False, ""
        for dialog in (AddLicensesState, RemoveLicensesState, ChangePlanState):
            (await self.get_state(dialog))._forget()
        try:
            self._license_id = _license_id(self.router.url.query_parameters.get("id", ""))
            self._refresh()
            self.missing = ""
        except NotFound as exc:
            self._license_id, self.detail, self.cards, self.missing = 0, None, [], exc.message
        self.loaded = True

    def _refresh(self) -> None:
        """The license (and, for those who may change it, the saved cards) as the database has it now."""
        def read(session, actor: Actor) -> tuple[LicenseDetail, list[PaymentMethodView]]:  # noqa: ANN001
            detail = license_changes.license_detail(session, actor=actor, license_id=self._license_id)
            cards = (payment_methods.list_payment_methods(session, account_id=actor.account_id, today=today())
                     if detail.can_change else [])
            return detail, cards

        self.detail, self.cards = self._read(read)
        self.card_choice = str(self.detail.card_id) if self.detail.card_id else ""

    def _checked_license(self) -> int:
        """The page's license; NotFound before a license was loaded (an event sent before the page's load)."""
        if not self._license_id:
            raise NotFound("That license")
        return self._license_id

    # --- actions on the page ---------------------------------------------------------------------------------

    @rx.event(background=True)
    async def withdraw_decrease(self):
        if (shown := await self._act("withdraw_decrease", withdraw_decrease)) is not None:
            yield shown

    @rx.event(background=True)
    async def withdraw_plan_change(self):
        if (shown := await self._act("withdraw_plan", withdraw_plan_change)) is not None:
            yield shown

    def _open_dialog(self) -> None:
        """Before a dialog opens: the member may change licenses, and the license is shown as it is now (another
        tab may have changed it)."""
        self._require(Permission.CHANGE_LICENSES)
        self._checked_license()
        self._refresh()

    @rx.event
    def ask_cancel(self):
        self._open_dialog()
        self.cancel_open = True

    @rx.event
    def set_cancel_open(self, is_open: bool):
        self._require()
        if self.busy != "cancel":  # the confirmation stays while its change is under way
            self.cancel_open = bool(is_open)

    @rx.event(background=True)
    async def cancel(self):
        if (shown := await self._act("cancel", cancel_license)) is not None:
            yield shown

    @rx.event(background=True)
    async def resume(self):
        if (shown := await self._act("resume", resume_license)) is not None:
            yield shown

    @rx.event(background=True)
    async def pay_now(self):
        if (shown := await self._act("pay", pay_now)) is not None:
            yield shown

    @rx.event
    def set_card_choice(self, value: str):
        self._require()
        self.card_choice, self.card_error = client_text(value, MAX_ID_DIGITS + 1), ""

    @rx.event(background=True)
    async def change_card(self):
        async with self:
            self._require()
            try:
                card_id = parse_id(self.card_choice, "That payment method")
            except NotFound as exc:
                self.card_error = exc.message
                return
        if (shown := await self._act("card", lambda actor, license_id: change_card(actor, license_id, card_id),
                                     error_var="card_error")) is not None:
            yield shown

    async def _act(self, action: str, work: Callable[[Actor, int], str], *,
                   error_var: str = "") -> rx.event.EventSpec | None:
        """One of the page's actions as a background handler runs it: begun under the tab's lock (the member
        checked, the button busy), the service run in a worker thread without it, its outcome shown under it
        again (a toast, or the message next to `error_var`'s field)."""
        async with self:
            begun = self._begin(action)
        if begun is None:
            return None
        done = await call(work, *begun, failed=CHANGE_FAILED, log_as=f"{action} of a license failed")
        async with self:
            return self._finish(done, error_var=error_var)

    def _begin(self, action: str) -> tuple[Actor, int] | None:
        """The member, and the license, for `action`; None while another action of this page is under way."""
        if self.busy and time.time() - self._busy_since < STUCK_AFTER_S:
            return None
        actor = self._require()  # the service checks the role, and answers in the member's words
        license_id = self._checked_license()
        self.busy, self._busy_since = action, time.time()  # last: nothing above may leave a button busy
        return actor, license_id

    def _finish(self, done: Outcome[str], *, error_var: str = "") -> rx.event.EventSpec | None:
        self.busy, self.cancel_open = "", False
        try:
            self._refresh()
        except DomainError:
            pass  # the outcome below says what happened
        if done.error is not None and error_var:
            setattr(self, error_var, done.message)
            return None
        return _toast(done)


class ChargeDialog(ManageLicenseState, mixin=True):
    """What Add licenses and Change plan share: a preview of what Confirm charges, and the one key per opened
    dialog that makes Confirm charge once however often it is pressed."""

    is_open: bool = False
    preview: ChangePreview | None = None
    form_error: str = ""
    charging: bool = False

    _key: str = ""
    _charging_since: float = 0.0

    def _forget(self) -> None:
        """The page was opened again: the dialog closes, unless it is charging."""
        if not self.charging:
            self.is_open, self.preview, self.form_error, self._key = False, None, "", ""

    def _open(self) -> None:
        self._open_dialog()
        if not self.charging:
            self._key = uuid.uuid4().hex
            self.form_error = ""
        self.is_open = True

    @rx.event
    def set_open(self, is_open: bool):
        self._require()
        if not self.charging:  # the dialog stays while its payment is under way
            self.is_open = bool(is_open)

    @rx.event(background=True)
    async def confirm(self):
        """Confirm: the change, charged as previewed, with this dialog's key (begun and shown under the tab's
        lock, the provider called without it)."""
        async with self:
            request = self._begin_charge()
        if request is None:
            return
        done = await call(self._submit, *request, failed=CHARGE_FAILED, log_as=f"{self.get_name()}: confirm failed")
        async with self:
            shown = self._finish_charge(done)
        if shown is not None:
            yield shown

    def _begin_charge(self) -> tuple | None:
        """What `_submit` needs: the member, the license, the change, the amount shown and the key; None for a
        second click while the first is under way, or when there is no amount to confirm (the dialog's field says
        why: its own message, else `_missing`)."""
        if self.charging and time.time() - self._charging_since < STUCK_AFTER_S:
            return None
        self.form_error = ""
        actor = self._require()  # the service checks the role
        license_id = self._checked_license()
        if self.preview is None:
            setattr(self, self._field, getattr(self, self._field) or self._missing)
            return None
        request = (actor, license_id, self._change(), self.preview.due_now, self._key)
        self.charging, self._charging_since = True, time.time()  # last: nothing above may leave it busy
        return request

    def _finish_charge(self, done: Outcome[ChangeResult]) -> rx.event.EventSpec | None:
        self.charging = False
        if done.result is not None:
            self.is_open, self.preview, self._key = False, None, ""
            self._refresh()
            return rx.toast.success(done.result.message)
        if not _keeps_key(done.error):
            self._key = uuid.uuid4().hex  # nothing was charged: the next Confirm is a new submission
        own_field = done.error.field is not None and self._field == f"{done.error.field}_error"
        setattr(self, self._field if own_field else "form_error", done.message)
        try:
            self._refresh()
            self._reprice()  # the current price, if it changed
        except DomainError:
            pass  # the message above says what to do
        return None

    # Each dialog's own: the field its messages go next to, what Confirm says with nothing to confirm, the price
    # again, the change it submits, and the service call.
    _field: ClassVar[str] = "form_error"
    _missing: ClassVar[str] = ""

    def _reprice(self) -> None:
        raise NotImplementedError

    def _change(self) -> object:
        raise NotImplementedError

    def _submit(self, actor: Actor, license_id: int, change: object, expected_due_now: int, key: str) -> ChangeResult:
        raise NotImplementedError


class AddLicensesState(ChargeDialog, ManageLicenseState):
    """Add licenses: charged now, prorated for the rest of the period; the new monthly amount from the renewal."""

    _field: ClassVar[str] = "add_error"
    _missing: ClassVar[str] = "Enter the number of licenses to add."

    add: str = "1"
    add_error: str = ""

    @rx.event
    def open(self):
        self._open()
        if not self.charging:
            self.add, self.add_error = "1", ""
            self._reprice()

    @rx.event
    def set_add(self, value: str):
        self._require()
        if self.charging:
            return
        self.add = client_text(value, MAX_QUANTITY_TEXT)
        self._reprice()

    def _reprice(self) -> None:
        try:
            self.preview = self._read(lambda session, actor: license_changes.preview_add(
                session, actor=actor, license_id=self._checked_license(), add=self.add, now=now()),
                Permission.CHANGE_LICENSES)
            self.add_error = ""
        except DomainError as exc:
            self.preview, self.add_error = None, exc.message

    def _change(self) -> str:
        return self.add

    def _submit(self, actor: Actor, license_id: int, add: str, expected_due_now: int, key: str) -> ChangeResult:
        return add_licenses(actor, license_id, add, expected_due_now, key)


class ChangePlanState(ChargeDialog, ManageLicenseState):
    """Change plan: a dearer plan now (prorated), a cheaper one from the next renewal."""

    _field: ClassVar[str] = "plan_error"
    _missing: ClassVar[str] = "Choose another plan."

    plan_id: str = ""
    plan_error: str = ""

    @rx.event
    def open(self):
        self._open()
        if not self.charging and self.detail is not None:
            self.plan_id, self.plan_error, self.preview = str(self.detail.plan_id), "", None

    @rx.event
    def set_plan(self, value: str):
        self._require()
        if self.charging:
            return
        self.plan_id = client_text(value, MAX_ID_DIGITS)
        self._reprice()

    def _reprice(self) -> None:
        self.preview = None
        try:
            plan_id = parse_id(self.plan_id, "That plan")
            if self.detail is not None and plan_id == self.detail.plan_id and not self.detail.next_plan:
                self.plan_error = ""
                return  # the current plan, and nothing scheduled: nothing to preview
            self.preview = self._read(lambda session, actor: license_changes.preview_plan_change(
                session, actor=actor, license_id=self._checked_license(), plan_id=plan_id, now=now()),
                Permission.CHANGE_LICENSES)
            self.plan_error = ""
        except DomainError as exc:
            self.plan_error = exc.message

    def _change(self) -> int:
        return parse_id(self.plan_id, "That plan")

    def _submit(self, actor: Actor, license_id: int, plan_id: int, expected_due_now: int, key: str) -> ChangeResult:
        return change_plan(actor, license_id, plan_id, expected_due_now, key)


class RemoveLicensesState(ManageLicenseState):
    """Remove licenses: fewer from the next renewal, never fewer than are assigned."""

    is_open: bool = False
    quantity: str = ""
    quantity_error: str = ""
    saving: bool = False

    def _forget(self) -> None:
        if not self.saving:
            self.is_open, self.quantity_error = False, ""

    @rx.event
    def open(self):
        self._open_dialog()
        if not self.saving and self.detail is not None:
            self.quantity = str(self.detail.next_quantity or self.detail.quantity)
            self.quantity_error = ""
        self.is_open = True

    @rx.event
    def set_open(self, is_open: bool):
        self._require()
        if not self.saving:
            self.is_open = bool(is_open)

    @rx.event
    def set_quantity(self, value: str):
        self._require()
        if not self.saving:
            self.quantity, self.quantity_error = client_text(value, MAX_QUANTITY_TEXT), ""

    @rx.event(background=True)
    async def save(self):
        async with self:
            if self.saving and time.time() - self._busy_since < STUCK_AFTER_S:
                return
            actor = self._require()  # the service checks the role
            request = (actor, self._checked_license(), self.quantity)
            self.saving, self._busy_since = True, time.time()
        done = await call(schedule_decrease, *request, failed=CHANGE_FAILED, log_as="scheduling a decrease failed")
        async with self:
            self.saving = False
            if done.error is not None:
                self.quantity_error = done.message
                return
            self.is_open = False
            self._refresh()
        yield rx.toast.success(done.result)
