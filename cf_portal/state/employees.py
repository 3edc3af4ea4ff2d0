"""The Employees section: the grid (one page at a time from the database) and seat actions.

Every tab served by this worker shares one event loop, so nothing slow runs on it. The CSV preview, import and
export (seconds for 20,000 rows) run in the worker process (`work.in_process`); import and export are background
events (the member and their role are checked under the tab's lock, the work runs without it, the outcome is
shown under it again). The preview is an upload handler, which Reflex cannot run in the background: it awaits
the worker instead, so only its own tab waits. The grid's queries read every holder of the account (15-50 ms
at 10,000 employees, 100-330 ms at 100,000): opening the page, searching, filtering, sorting and paging await
them in a thread; this tab's events stay in order, the other tabs' go on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import reflex as rx
from sqlmodel import Session

from cf_portal import routes
from cf_portal.db import session_scope
from cf_portal.services import employee_import, employees, seats
from cf_portal.services.actors import Actor
from cf_portal.services.employee_import import ImportOutcome, ImportPreview
from cf_portal.services.employees import CHILD_DEPARTMENT, MAX_SEARCH_LENGTH, GridQuery, HolderPage, HolderRow
from cf_portal.services.errors import DomainError, NotFound
from cf_portal.services.ids import MAX_ID_DIGITS, client_text, is_id, parse_id
from cf_portal.services.roles import Permission
from cf_portal.services.seats import AssignableLicense, Holder, NotEnoughSeats, SeatEvent
from cf_portal.services.validation import MAX_DEPARTMENT_LENGTH
from cf_portal.state.calls import Where, call, run
from cf_portal.state.portal import PortalState

PAGE_SIZE = 25
SORT_COLUMNS = ("name", "email", "department")
MAX_LABEL_LENGTH = 300  # a seat's label ("Product · License name"), shown back in a confirmation
EMPTY_HOLDER = HolderRow(key="", kind="employee", id=0, name="", email="", department="", active=True, seats=[])
MAX_FILE_NAME_LENGTH = 255

IMPORT_FAILED = "Something went wrong on our side; nothing was imported. Try again in a moment."


@dataclass(frozen=True)
class GridView:
    page: HolderPage
    licenses: list[AssignableLicense]
    departments: list[str] | None = None  # the filters' options, when asked for
    products: list[tuple[int, str]] | None = None


def holders_matching(account_id: int, text: str) -> HolderPage:
    """The first holders whose name or email has `text`: whom a seat can move to."""
    with session_scope(write=False) as session:
        return employees.search_holders(session, account_id=account_id, query=GridQuery(search=text, page_size=10))


def grid_view(account_id: int, query: GridQuery, *, with_options: bool = False) -> GridView:
    """One page of the grid, the licenses to assign, and (`with_options`) the filters' options."""
    with session_scope(write=False) as session:
        return GridView(
            page=employees.search_holders(session, account_id=account_id, query=query),
            licenses=seats.assignable_licenses(session, account_id=account_id),
            departments=employees.departments(session, account_id=account_id) if with_options else None,
            products=employees.products(session) if with_options else None,
        )


class EmployeesState(PortalState):
    # The grid: only the visible page is ever in the browser.
    rows: list[HolderRow] = []
    total: int = 0
    page: int = 1
    page_count: int = 1
    search: str = ""
    department: str = ""
    product_id: str = ""
    without_license: bool = False
    show_inactive: bool = False
    sort: str = "name"
    descending: bool = False
    loaded: bool = False

    department_options: list[str] = []
    product_options: list[list[str]] = []  # [id, name]
    licenses: list[AssignableLicense] = []
    selected: list[str] = []  # holder keys on any page

    # Assign
    assign_open: bool = False
    assign_targets: list[str] = []
    assign_license_id: str = ""
    assign_error: str = ""
    buy_more_plan_id: int = 0

    # Details, move and free
    details_open: bool = False
    details: HolderRow = EMPTY_HOLDER
    history: list[SeatEvent] = []
    move_open: bool = False
    move_seat_id: int = 0
    move_seat_label: str = ""
    move_search: str = ""
    move_matches: list[HolderRow] = []
    move_to: str = ""
    move_error: str = ""
    unassign_seat_id: int = 0
    unassign_text: str = ""

    # Add / edit employee and child account
    form_open: bool = False
    form_kind: str = "employee"
    form_id: int = 0
    form_name: str = ""
    form_email: str = ""
    form_department: str = ""
    form_name_error: str = ""
    form_email_error: str = ""
    form_error: str = ""
    deactivate_open: bool = False
    deactivate_seats: int = 0

    # CSV import
    import_open: bool = False
    import_preview: ImportPreview = ImportPreview()
    import_file_name: str = ""
    importing: bool = False
    _import_data: bytes = b""

    @rx.var
    def selected_count(self) -> int:
        return len(self.selected)

    @rx.var
    def range_text(self) -> str:
        if self.total == 0:
            return "No results"
        first = (self.page - 1) * PAGE_SIZE + 1
        return f"{first:,}–{min(self.total, first + len(self.rows) - 1):,} of {self.total:,}"

    @rx.var
    def page_keys(self) -> list[str]:
        return [row.key for row in self.rows]

    @rx.var
    def page_all_selected(self) -> bool:
        chosen = set(self.selected)
        return bool(self.rows) and all(row.key in chosen for row in self.rows)

    # --- the grid -----------------------------------------------------------------------------------

    def _query(self) -> GridQuery:
        return GridQuery(search=self.search, department=self.department,
                         product_id=int(self.product_id) if is_id(self.product_id) else None,
                         without_license=self.without_license, show_inactive=self.show_inactive,
                         sort=self.sort if self.sort in SORT_COLUMNS else "name",
                         descending=self.descending, page=self.page, page_size=PAGE_SIZE)

    def _show(self, view: GridView) -> None:
        page = view.page
        self.rows, self.total, self.page, self.page_count = page.rows, page.total, page.page, page.page_count
        self.licenses = view.licenses
        if view.departments is not None and view.products is not None:
            self.department_options = view.departments
            self.product_options = [[str(i), name] for i, name in view.products]
        self.loaded = True

    def _refresh(self, *, with_options: bool = False) -> None:
        """The grid again after a change this tab made (on the loop: one page, like the change itself)."""
        self._show(grid_view(self._require().account_id, self._query(), with_options=with_options))

    async def _refresh_in_thread(self, actor: Actor, *, with_options: bool = False) -> None:
        self._show(await run(functools.partial(grid_view, actor.account_id, self._query(), with_options=with_options)))

    @rx.event
    async def load(self):
        await self._refresh_in_thread(self._require(), with_options=True)

    @rx.event
    async def set_search(self, value: str):
        actor = self._require()
        self.search, self.page = client_text(value, MAX_SEARCH_LENGTH), 1
        await self._refresh_in_thread(actor)

    @rx.event
    async def set_department(self, value: str):
        actor = self._require()
        self.department, self.page = client_text(value, MAX_DEPARTMENT_LENGTH), 1
        await self._refresh_in_thread(actor)

    @rx.event
    async def set_product_filter(self, value: str):
        actor = self._require()
        self.product_id, self.page = client_text(value, MAX_ID_DIGITS), 1
        await self._refresh_in_thread(actor)

    @rx.event
    async def set_without_license(self, value: bool):
        actor = self._require()
        self.without_license, self.page = bool(value), 1
        await self._refresh_in_thread(actor)

    @rx.event
    async def set_show_inactive(self, value: bool):
        actor = self._require()
        self.show_inactive, self.page = bool(value), 1
        await self._refresh_in_thread(actor)

    @rx.event
    async def sort_by(self, column: str):
        actor = self._require()
        if column not in SORT_COLUMNS:
            return
        self.descending = not self.descending if self.sort == column else False
        self.sort, self.page = column, 1
        await self._refresh_in_thread(actor)

    @rx.event
    async def go_to_page(self, page: int):
        actor = self._require()
        self.page = min(int(page), self.page_count) if is_id(page) else 1
        await self._refresh_in_thread(actor)

    @rx.event
    def toggle_selected(self, key: str, checked: bool):
        self._require()
        if checked:
            self.selected = employees.add_to_selection(self.selected, [key])
        else:
            self.selected = [k for k in self.selected if k != key]

    @rx.event
    def select_page(self, checked: bool):
        self._require()
        page = set(self.page_keys)
        kept = [k for k in self.selected if k not in page]
        self.selected = employees.add_to_selection(kept, self.page_keys) if checked else kept

    @rx.event
    def clear_selection(self):
        self._require()
        self.selected = []

    # --- assign ----------------------------------------------------------------------------------------

    @rx.event
    def open_assign(self, keys: list[str]):
        self._require(Permission.MANAGE_SEATS)
        self.assign_targets = [holder.key for holder in employees.holders_of(keys)]
        usable = [lic for lic in self.licenses if lic.available > 0] or self.licenses
        self.assign_license_id = str(usable[0].id) if usable else ""
        self.assign_error, self.buy_more_plan_id = "", 0
        self.assign_open = True

    @rx.event
    def set_assign_open(self, is_open: bool):
        self._require()
        self.assign_open = bool(is_open)

    @rx.event
    def set_assign_license(self, value: str):
        self._require()
        self.assign_license_id, self.assign_error, self.buy_more_plan_id = "", "", 0
        try:
            self.assign_license_id = str(parse_id(value, "That license"))
        except NotFound as exc:
            self.assign_error = exc.message

    @rx.event
    def assign(self):
        self._require()  # the role is checked with the change, next to the form
        if not self.assign_license_id:
            self.assign_error = self.assign_error or "Choose a license. No licenses yet? Add License first."
            return
        try:
            holders = employees.holders_of(self.assign_targets)
            self._write(lambda session, actor: seats.assign(
                session, actor=actor, license_id=int(self.assign_license_id), holders=holders), Permission.MANAGE_SEATS)
        except NotEnoughSeats as exc:
            self.assign_error, self.buy_more_plan_id = exc.message, exc.plan_id
            return
        except DomainError as exc:
            self.assign_error = exc.message
            return
        count = len(self.assign_targets)
        self.assign_open, self.selected = False, []
        self._refresh()
        self._reload_details()
        return rx.toast.success(f"License assigned to {count} {'people' if count != 1 else 'person'}.")

    # --- details, move, unassign -------------------------------------------------------------------------

    @rx.event
    def open_details(self, key: str):
        self._require()
        try:
            self._load_details(key)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.details_open = True

    def _load_details(self, key: str) -> None:
        holder = Holder.parse(key)
        self.details, self.history = self._read(lambda session, actor: (
            employees.get_holder(session, account_id=actor.account_id, holder=holder),
            seats.seat_history(session, account_id=actor.account_id, holder=holder, limit=50)))

    def _reload_details(self) -> None:
        if self.details_open and self.details.key:
            self._load_details(self.details.key)

    @rx.event
    def set_details_open(self, is_open: bool):
        self._require()
        self.details_open = bool(is_open)

    @rx.event
    def open_move(self, seat_id: int, label: str):
        self._require(Permission.MANAGE_SEATS)
        self.move_seat_id, self.move_seat_label = parse_id(seat_id, "That seat"), client_text(label, MAX_LABEL_LENGTH)
        self.move_search, self.move_matches, self.move_to, self.move_error = "", [], "", ""
        self.move_open = True

    @rx.event
    def set_move_open(self, is_open: bool):
        self._require()
        self.move_open = bool(is_open)

    @rx.event
    async def set_move_search(self, value: str):
        actor = self._require()
        value = client_text(value, MAX_SEARCH_LENGTH)
        self.move_search = value
        if not value.strip():
            self.move_matches = []
            return
        found = await run(holders_matching, actor.account_id, value)
        self.move_matches = [row for row in found.rows if row.key != self.details.key]

    @rx.event
    def set_move_to(self, key: str):
        self._require()
        self.move_to, self.move_error = "", ""
        try:
            self.move_to = Holder.parse(key).key
        except NotFound as exc:
            self.move_error = exc.message

    @rx.event
    def move(self):
        self._require()  # the role is checked with the change, next to the form
        if not self.move_to:
            self.move_error = self.move_error or "Choose who gets the seat."
            return
        try:
            self._write(lambda session, actor: seats.move(
                session, actor=actor, assignment_id=self.move_seat_id, to=Holder.parse(self.move_to)),
                Permission.MANAGE_SEATS)
        except DomainError as exc:
            self.move_error = exc.message
            return
        name = next((r.name for r in self.move_matches if r.key == self.move_to), "them")
        self.move_open = False
        self._refresh()
        self._reload_details()
        return rx.toast.success(f"Seat moved to {name}.")

    @rx.event
    def ask_unassign(self, seat_id: int, label: str):
        self._require(Permission.MANAGE_SEATS)
        self.unassign_seat_id = parse_id(seat_id, "That seat")
        self.unassign_text = (f"{self.details.name} will lose access to {client_text(label, MAX_LABEL_LENGTH)}. "
                              "The seat becomes available at once.")

    @rx.event
    def cancel_unassign(self):
        self._require()
        self.unassign_seat_id = 0

    @rx.event
    def unassign(self):
        try:
            self._write(lambda session, actor: seats.unassign(session, actor=actor, assignment_id=self.unassign_seat_id),
                        Permission.MANAGE_SEATS)
        except DomainError as exc:
            self.unassign_seat_id = 0
            return rx.toast.error(exc.message)
        self.unassign_seat_id = 0
        self._refresh()
        self._reload_details()
        return rx.toast.success("Seat freed.")

    # --- add / edit -----------------------------------------------------------------------------------------

    @rx.event
    def open_form(self, kind: str, key: str = ""):
        """A blank form for `kind`, or the form of the holder `key` (whose own kind wins)."""
        self._require(Permission.MANAGE_SEATS)
        holder = Holder.parse(key) if key else None
        self.form_kind = "child" if kind == "child" else "employee"
        self.form_id, self.form_name, self.form_email, self.form_department = 0, "", "", ""
        if holder is not None:
            self.form_kind, self.form_id = holder.kind, holder.id
            self.form_name, self.form_email = self.details.name, self.details.email
            self.form_department = "" if self.details.department == CHILD_DEPARTMENT else self.details.department
        self.form_name_error = self.form_email_error = self.form_error = ""
        self.form_open = True

    @rx.event
    def set_form_open(self, is_open: bool):
        self._require()
        self.form_open = bool(is_open)

    @rx.event
    def set_form_name(self, value: str):
        self._require()
        self.form_name = client_text(value)

    @rx.event
    def set_form_email(self, value: str):
        self._require()
        self.form_email = client_text(value)

    @rx.event
    def set_form_department(self, value: str):
        self._require()
        self.form_department = client_text(value)

    @rx.event
    def save_form(self):
        self.form_name_error = self.form_email_error = self.form_error = ""
        try:
            if self.form_kind == "child":
                self._write(lambda session, actor: employees.save_child_account(
                    session, actor=actor, name=self.form_name, contact_email=self.form_email,
                    child_id=self.form_id or None), Permission.MANAGE_SEATS)
            else:
                self._write(lambda session, actor: employees.save_employee(
                    session, actor=actor, name=self.form_name, email=self.form_email,
                    department=self.form_department, employee_id=self.form_id or None), Permission.MANAGE_SEATS)
        except DomainError as exc:
            target = {"name": "form_name_error", "email": "form_email_error"}.get(exc.field or "", "form_error")
            setattr(self, target, exc.message)
            return
        what = "Child account" if self.form_kind == "child" else "Employee"
        self.form_open = False
        self._refresh(with_options=True)
        self._reload_details()
        return rx.toast.success(f"{what} {'saved' if self.form_id else 'added'}: {self.form_name.strip()}.")

    @rx.event
    def ask_deactivate(self):
        self.deactivate_seats = self._read(lambda session, actor: employees.open_seat_count(
            session, account_id=actor.account_id, holder=Holder.parse(self.details.key)), Permission.MANAGE_SEATS)
        self.deactivate_open = True

    @rx.event
    def set_deactivate_open(self, is_open: bool):
        self._require()
        self.deactivate_open = bool(is_open)

    @rx.event
    def set_active(self, active: bool):
        try:
            def switch(session: Session, actor: Actor) -> int:
                holder = Holder.parse(self.details.key)
                if holder.kind != "employee":
                    raise DomainError("Only employees can be deactivated.")
                return employees.set_employee_active(session, actor=actor, employee_id=holder.id, active=active)
            freed = self._write(switch, Permission.MANAGE_SEATS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.deactivate_open = False
        self._refresh()
        self._reload_details()
        if active:
            return rx.toast.success(f"{self.details.name} is active again.")
        return rx.toast.success(f"{self.details.name} deactivated; {freed} seat{'s' if freed != 1 else ''} freed.")

    # --- CSV import and export -------------------------------------------------------------------------------

    @rx.event
    def set_import_open(self, is_open: bool):
        self._require()
        if self.importing:
            return  # the dialog stays while its import is under way
        self.import_open = bool(is_open)
        if not is_open:
            self.import_preview, self.import_file_name, self._import_data = ImportPreview(), "", b""

    @rx.event
    async def preview_csv(self, files: list[rx.UploadFile]):
        actor = self._require(Permission.MANAGE_SEATS)
        if not files or self.importing:
            return
        upload = files[0]
        data = await upload.read(employee_import.MAX_BYTES + 1)
        preview = await run(employee_import.preview_file, actor.account_id, data, where=Where.PROCESS)
        self.import_file_name = client_text(upload.name or "file.csv", MAX_FILE_NAME_LENGTH)
        self.import_preview = preview
        self._import_data = data if preview.can_import else b""

    @rx.event(background=True)
    async def import_csv(self):
        async with self:
            begun = self._begin_import()
        if begun is None:
            return
        done = await call(employee_import.import_file, *begun, where=Where.PROCESS, failed=IMPORT_FAILED,
                          log_as="importing employees failed")
        async with self:
            shown = self._finish_import(done.result or ImportOutcome(error=done.message))
        yield shown

    def _begin_import(self) -> tuple[Actor, bytes] | None:
        """Check the member's role and mark the import busy; None when there is nothing (else) to import."""
        actor = self._require(Permission.MANAGE_SEATS)
        if self.importing or not self._import_data:
            return None
        self.importing = True
        return actor, self._import_data

    def _finish_import(self, outcome: ImportOutcome) -> rx.event.EventSpec:
        self.importing = False
        if outcome.error:
            return rx.toast.error(outcome.error)
        self.import_open = False
        self.import_preview, self.import_file_name, self._import_data = ImportPreview(), "", b""
        self._refresh(with_options=True)
        return rx.toast.success(f"{outcome.count:,} employees imported.")

    @rx.event(background=True)
    async def export_csv(self):
        async with self:
            actor = self._require()
        data = await run(employee_import.export_file, actor.account_id, where=Where.PROCESS)
        yield rx.download(data=data, filename="license-assignments.csv", mime_type="text/csv")

    @rx.var
    def buy_more_url(self) -> str:
        return f"{routes.ADD_LICENSE}?plan={self.buy_more_plan_id}" if self.buy_more_plan_id else routes.ADD_LICENSE
