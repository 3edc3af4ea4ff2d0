"""The Employees section: the grid (one page at a time from the database) and seat actions.

`EmployeesState` is the grid, the details dialog and its two confirmations (unassign, deactivate); each other
dialog is a substate of it: `AssignState`, `MoveState`, `PersonFormState`, `ImportState`. A substate reads and
writes the grid's vars as its own (Reflex forwards them to the parent), so after a change it refreshes the grid
with the grid's `_refresh`.

What survives leaving the page (decided in `EmployeesState.load`): the filters (department, product, the two
checkboxes) and the sort order. Everything else starts again: the Search text (a restored text in a field the
member is already typing in merged with it), the page number, the rows (the new visit's rows, not the last
visit's), the selection, every dialog and what was typed in it.

Every tab served by this worker shares one event loop, so nothing slow runs on it. The CSV preview, import and
export (seconds for 20,000 rows) run in the worker process (`work.in_process`); import and export are background
events (the member and their role are checked under the tab's lock, the work runs without it, the outcome is
shown under it again). The preview is an upload handler, which Reflex cannot run in the background: it awaits
the worker instead, so only its own tab waits. The grid reads one page along an index (keyset paging: Next and
Previous ask for the rows after the page's last row or before its first, never an offset), counts at most
`employees.COUNT_CAP` + 1 matches, and searches through a trigram index; opening the page, searching, filtering,
sorting and paging still await their queries in a thread; this tab's events stay in order, the other tabs' go on.
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
from cf_portal.services.employees import (
    CHILD_DEPARTMENT,
    MAX_SEARCH_LENGTH,
    Cursor,
    GridQuery,
    HolderPage,
    HolderRow,
)
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


def details_of(session: Session, actor: Actor, holder: Holder) -> tuple[HolderRow, list[SeatEvent]]:
    """The details dialog's holder and their seats' history."""
    return (employees.get_holder(session, account_id=actor.account_id, holder=holder),
            seats.seat_history(session, account_id=actor.account_id, holder=holder, limit=50))


def changed_by(actor: Actor, _result: object) -> Actor:
    """A change's unit of work returns who made it: the refresh that follows reads as that member, without
    resolving them again (the member check is the bulk of a small event's work: docs/benchmarks.md)."""
    return actor


class EmployeesState(PortalState):
    # The grid: only the visible page is ever in the browser.
    rows: list[HolderRow] = []
    total: int = 0
    page: int = 1  # counted as the member pages (keyset paging: the database is asked for a place, not a number)
    has_next: bool = False
    total_capped: bool = False  # past employees.COUNT_CAP matches, `total` is COUNT_CAP + 1: "10,000+"
    # Where the page on screen starts (None: the first page) and ends, to page from (never sent to the browser).
    _page_start: Cursor | None = None
    _page_end: Cursor | None = None
    search: str = ""
    department: str = ""
    product_id: str = ""
    license_filter: str = ""  # ?license=<id>: holders of that license's seats (not kept across visits)
    without_license: bool = False
    show_inactive: bool = False
    sort: str = "name"
    descending: bool = False
    loaded: bool = False

    department_options: list[str] = []
    product_options: list[list[str]] = []  # [id, name]
    licenses: list[AssignableLicense] = []
    selected: list[str] = []  # holder keys on any page

    # Details, and its confirmations
    details_open: bool = False
    details: HolderRow = EMPTY_HOLDER
    history: list[SeatEvent] = []
    unassign_seat_id: int = 0
    unassign_text: str = ""
    deactivate_open: bool = False
    deactivate_seats: int = 0

    @rx.var
    def selected_count(self) -> int:
        return len(self.selected)

    @rx.var
    def range_text(self) -> str:
        if not self.rows:
            return "No results"
        first = (self.page - 1) * PAGE_SIZE + 1
        last = first + len(self.rows) - 1
        if self.total_capped:
            return f"{first:,}–{last:,} of {self.total - 1:,}+ people"  # total is the cap + 1
        return f"{first:,}–{last:,} of {max(self.total, last):,}"

    @rx.var
    def page_text(self) -> str:
        if self.total_capped:
            return f"Page {self.page:,}"
        return f"Page {self.page:,} of {max(self.page, -(-self.total // PAGE_SIZE)):,}"

    @rx.var
    def page_keys(self) -> list[str]:
        return [row.key for row in self.rows]

    @rx.var
    def page_all_selected(self) -> bool:
        chosen = set(self.selected)
        return bool(self.rows) and all(row.key in chosen for row in self.rows)

    # --- the grid -----------------------------------------------------------------------------------

    def _query(self, **paging: Cursor | None) -> GridQuery:
        """The grid's filters and sort, and where to read from (GridQuery's `at`, `after` or `before`)."""
        return GridQuery(**paging, search=self.search, department=self.department,
                         product_id=int(self.product_id) if is_id(self.product_id) else None,
                         license_id=int(self.license_filter) if is_id(self.license_filter) else None,
                         without_license=self.without_license, show_inactive=self.show_inactive,
                         sort=self.sort if self.sort in SORT_COLUMNS else "name",
                         descending=self.descending, page_size=PAGE_SIZE)

    def _show(self, view: GridView, page_number: int = 1) -> None:
        page = view.page
        self.rows, self.total, self.total_capped, self.has_next = page.rows, page.total, page.total_capped, page.has_next
        self.page = 1 if page.at_start else max(2, page_number)
        self._page_start, self._page_end = (None if page.at_start else page.first), page.last
        self.licenses = view.licenses
        if view.departments is not None and view.products is not None:
            self.department_options = view.departments
            self.product_options = [[str(i), name] for i, name in view.products]
        self.loaded = True

    def _refresh(self, actor: Actor, *, with_options: bool = False) -> None:
        """The page on screen again after a change `actor` (this tab's member, resolved for the change) made (on
        the loop: one page, like the change itself)."""
        self._show(grid_view(actor.account_id, self._query(at=self._page_start), with_options=with_options),
                   self.page)

    async def _show_page(self, actor: Actor, *, page_number: int = 1, with_options: bool = False,
                         **paging: Cursor | None) -> None:
        """Page `page_number`, read from `paging` (none: the first page), in a thread."""
        self._show(await run(functools.partial(grid_view, actor.account_id, self._query(**paging),
                                               with_options=with_options)), page_number)

    async def _forget_visit(self) -> None:
        """Everything but the filters and the sort order, as on a first visit (see the module docstring); an
        import under way keeps its dialog open until it ends."""
        kept = {name: getattr(self, name) for name in KEPT_ACROSS_VISITS}
        importer = await self.get_state(ImportState)
        importing = importer.importing
        self.reset()  # this state and its dialogs' substates
        importer._forget_file()
        importer.is_open = importer.importing = importing
        for name, value in kept.items():
            setattr(self, name, value)

    @rx.event
    async def load(self):
        await self._forget_visit()
        actor = self._require()  # after the reset, which leaves the member's flags (PortalState's) alone
        wanted = self.router.url.query_parameters.get("license", "")
        self.license_filter = wanted if is_id(wanted) else ""
        yield  # the loading rows now, not the last visit's rows while the query runs
        await self._show_page(actor, with_options=True)

    @rx.event
    async def set_search(self, value: str):
        actor = self._require()
        self.search = client_text(value, MAX_SEARCH_LENGTH)
        await self._show_page(actor)

    @rx.event
    async def set_department(self, value: str):
        actor = self._require()
        self.department = client_text(value, MAX_DEPARTMENT_LENGTH)
        await self._show_page(actor)

    @rx.event
    async def set_product_filter(self, value: str):
        actor = self._require()
        self.product_id = client_text(value, MAX_ID_DIGITS)
        await self._show_page(actor)

    @rx.var
    def license_filter_name(self) -> str:
        """The license the grid is filtered to, by name ("" when none, or not one the account can assign)."""
        return next((lic.reference_name for lic in self.licenses if str(lic.id) == self.license_filter), "")

    @rx.event
    async def clear_license_filter(self):
        actor = self._require()
        self.license_filter = ""
        await self._show_page(actor)

    @rx.event
    async def set_without_license(self, value: bool):
        actor = self._require()
        self.without_license = bool(value)
        await self._show_page(actor)

    @rx.event
    async def set_show_inactive(self, value: bool):
        actor = self._require()
        self.show_inactive = bool(value)
        await self._show_page(actor)

    @rx.event
    async def sort_by(self, column: str):
        actor = self._require()
        if column not in SORT_COLUMNS:
            return
        self.descending = not self.descending if self.sort == column else False
        self.sort = column
        await self._show_page(actor)

    @rx.event
    async def next_page(self):
        actor = self._require()
        if self.has_next:
            await self._show_page(actor, page_number=self.page + 1, after=self._page_end)

    @rx.event
    async def previous_page(self):
        actor = self._require()
        if self._page_start is not None:
            await self._show_page(actor, page_number=self.page - 1, before=self._page_start)

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

    # --- details, unassign, deactivate -----------------------------------------------------------------

    @rx.event
    def open_details(self, key: str):
        try:
            # The member is checked first, in the same read (`_read`), before the key is parsed.
            self.details, self.history = self._read(lambda session, actor: details_of(
                session, actor, Holder.parse(key)))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.details_open = True

    def _after_change(self, actor: Actor, *, with_options: bool = False) -> None:
        """The grid and the open details again, after a change `actor` (this tab's member, resolved for the
        change: not once more per read) made."""
        self._refresh(actor, with_options=with_options)
        if self.details_open and self.details.key:
            with session_scope(write=False) as session:
                self.details, self.history = details_of(session, actor, Holder.parse(self.details.key))

    @rx.event
    def set_details_open(self, is_open: bool):
        self._require()
        self.details_open = bool(is_open)

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
            actor = self._write(lambda session, actor: changed_by(actor, seats.unassign(
                session, actor=actor, assignment_id=self.unassign_seat_id)), Permission.MANAGE_SEATS)
        except DomainError as exc:
            self.unassign_seat_id = 0
            return rx.toast.error(exc.message)
        self.unassign_seat_id = 0
        self._after_change(actor)
        return rx.toast.success("Seat freed.")

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
            def switch(session: Session, actor: Actor) -> tuple[Actor, int]:
                holder = Holder.parse(self.details.key)
                if holder.kind != "employee":
                    raise DomainError("Only employees can be deactivated.")
                return actor, employees.set_employee_active(session, actor=actor, employee_id=holder.id, active=active)
            actor, freed = self._write(switch, Permission.MANAGE_SEATS)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.deactivate_open = False
        self._after_change(actor)
        if active:
            return rx.toast.success(f"{self.details.name} is active again.")
        return rx.toast.success(f"{self.details.name} deactivated; {freed} seat{'s' if freed != 1 else ''} freed.")

    # --- export ------------------------------------------------------------------------------------------

    @rx.event(background=True)
    async def export_csv(self):
        async with self:
            actor = self._require()
        data = await run(employee_import.export_file, actor.account_id, where=Where.PROCESS)
        yield rx.download(data=data, filename="license-assignments.csv", mime_type="text/csv")


KEPT_ACROSS_VISITS = ("department", "product_id", "without_license", "show_inactive", "sort", "descending")


class DialogMixin(rx.State, mixin=True):
    """A dialog's open flag and the setter its close button and Escape call."""

    is_open: bool = False

    @rx.event
    def set_open(self, is_open: bool):
        self._require()
        self.is_open = bool(is_open)


class AssignState(DialogMixin, EmployeesState):
    """The Assign dialog: one seat of a license each for the chosen holders."""

    targets: list[str] = []
    license_id: str = ""
    error: str = ""
    buy_more_plan_id: int = 0

    @rx.var
    def buy_more_url(self) -> str:
        return f"{routes.ADD_LICENSE}?plan={self.buy_more_plan_id}" if self.buy_more_plan_id else routes.ADD_LICENSE

    @rx.event
    def open_for(self, keys: list[str]):
        self._require(Permission.MANAGE_SEATS)
        self.targets = [holder.key for holder in employees.holders_of(keys)]
        usable = [lic for lic in self.licenses if lic.available > 0] or self.licenses
        self.license_id = str(usable[0].id) if usable else ""
        self.error, self.buy_more_plan_id = "", 0
        self.is_open = True

    @rx.event
    def set_license(self, value: str):
        self._require()
        self.license_id, self.error, self.buy_more_plan_id = "", "", 0
        try:
            self.license_id = str(parse_id(value, "That license"))
        except NotFound as exc:
            self.error = exc.message

    @rx.event
    def assign(self):
        self._require()  # the role is checked with the change, next to the form
        if not self.license_id:
            self.error = self.error or "Choose a license. No licenses yet? Add License first."
            return
        try:
            holders = employees.holders_of(self.targets)
            actor = self._write(lambda session, actor: changed_by(actor, seats.assign(
                session, actor=actor, license_id=int(self.license_id), holders=holders)), Permission.MANAGE_SEATS)
        except NotEnoughSeats as exc:
            self.error, self.buy_more_plan_id = exc.message, exc.plan_id
            return
        except DomainError as exc:
            self.error = exc.message
            return
        count = len(self.targets)
        self.is_open, self.selected = False, []
        self._after_change(actor)
        return rx.toast.success(f"License assigned to {count} {'people' if count != 1 else 'person'}.")


class MoveState(DialogMixin, EmployeesState):
    """The Move dialog: one seat of the holder in the details dialog, given to someone else in one step."""

    seat_id: int = 0
    seat_label: str = ""
    query: str = ""
    matches: list[HolderRow] = []
    to: str = ""
    error: str = ""

    @rx.event
    def open_for(self, seat_id: int, label: str):
        self._require(Permission.MANAGE_SEATS)
        self.seat_id, self.seat_label = parse_id(seat_id, "That seat"), client_text(label, MAX_LABEL_LENGTH)
        self.query, self.matches, self.to, self.error = "", [], "", ""
        self.is_open = True

    @rx.event
    async def set_query(self, value: str):
        actor = self._require()
        value = client_text(value, MAX_SEARCH_LENGTH)
        self.query = value
        if not value.strip():
            self.matches = []
            return
        found = await run(holders_matching, actor.account_id, value)
        self.matches = [row for row in found.rows if row.key != self.details.key]

    @rx.event
    def set_to(self, key: str):
        self._require()
        self.to, self.error = "", ""
        try:
            self.to = Holder.parse(key).key
        except NotFound as exc:
            self.error = exc.message

    @rx.event
    def move(self):
        self._require()  # the role is checked with the change, next to the form
        if not self.to:
            self.error = self.error or "Choose who gets the seat."
            return
        try:
            actor = self._write(lambda session, actor: changed_by(actor, seats.move(
                session, actor=actor, assignment_id=self.seat_id, to=Holder.parse(self.to))), Permission.MANAGE_SEATS)
        except DomainError as exc:
            self.error = exc.message
            return
        name = next((r.name for r in self.matches if r.key == self.to), "them")
        self.is_open = False
        self._after_change(actor)
        return rx.toast.success(f"Seat moved to {name}.")


class PersonFormState(DialogMixin, EmployeesState):
    """Add or edit an employee or a child account."""

    kind: str = "employee"
    holder_id: int = 0
    name: str = ""
    email: str = ""
    department_name: str = ""  # the grid's `department` is its filter
    name_error: str = ""
    email_error: str = ""
    error: str = ""

    @rx.event
    def open_for(self, kind: str, key: str = ""):
        """A blank form for `kind`, or the form of the holder `key` (whose own kind wins)."""
        self._require(Permission.MANAGE_SEATS)
        holder = Holder.parse(key) if key else None
        self.kind = "child" if kind == "child" else "employee"
        self.holder_id, self.name, self.email, self.department_name = 0, "", "", ""
        if holder is not None:
            self.kind, self.holder_id = holder.kind, holder.id
            self.name, self.email = self.details.name, self.details.email
            self.department_name = "" if self.details.department == CHILD_DEPARTMENT else self.details.department
        self.name_error = self.email_error = self.error = ""
        self.is_open = True

    @rx.event
    def set_name(self, value: str):
        self._require()
        self.name = client_text(value)

    @rx.event
    def set_email(self, value: str):
        self._require()
        self.email = client_text(value)

    @rx.event
    def set_department_name(self, value: str):
        self._require()
        self.department_name = client_text(value)

    @rx.event
    def save(self):
        self.name_error = self.email_error = self.error = ""
        try:
            if self.kind == "child":
                actor = self._write(lambda session, actor: changed_by(actor, employees.save_child_account(
                    session, actor=actor, name=self.name, contact_email=self.email,
                    child_id=self.holder_id or None)), Permission.MANAGE_SEATS)
            else:
                actor = self._write(lambda session, actor: changed_by(actor, employees.save_employee(
                    session, actor=actor, name=self.name, email=self.email, department=self.department_name,
                    employee_id=self.holder_id or None)), Permission.MANAGE_SEATS)
        except DomainError as exc:
            target = {"name": "name_error", "email": "email_error"}.get(exc.field or "", "error")
            setattr(self, target, exc.message)
            return
        what = "Child account" if self.kind == "child" else "Employee"
        self.is_open = False
        self._after_change(actor, with_options=True)
        return rx.toast.success(f"{what} {'saved' if self.holder_id else 'added'}: {self.name.strip()}.")


class ImportState(DialogMixin, EmployeesState):
    """The CSV import: a preview of the file, then the import of the whole file."""

    preview: ImportPreview = ImportPreview()
    file_name: str = ""
    importing: bool = False
    _data: bytes = b""

    @rx.var
    def import_label(self) -> str:
        count = self.preview.valid_rows
        if count <= 0:
            return "Import"
        return f"Import {count:,} {'employee' if count == 1 else 'employees'}"

    def _forget_file(self) -> None:
        self.preview, self.file_name, self._data = ImportPreview(), "", b""

    @rx.event
    def set_open(self, is_open: bool):
        self._require()
        if self.importing:
            return  # the dialog stays while its import is under way
        self.is_open = bool(is_open)
        if not is_open:
            self._forget_file()

    @rx.event
    async def preview_csv(self, files: list[rx.UploadFile]):
        actor = self._require(Permission.MANAGE_SEATS)
        if not files or self.importing:
            return
        upload = files[0]
        data = await upload.read(employee_import.MAX_BYTES + 1)
        preview = await run(employee_import.preview_file, actor.account_id, data, where=Where.PROCESS)
        self.file_name = client_text(upload.name or "file.csv", MAX_FILE_NAME_LENGTH)
        self.preview = preview
        self._data = data if preview.can_import else b""

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
        if self.importing or not self._data:
            return None
        self.importing = True
        return actor, self._data

    def _finish_import(self, outcome: ImportOutcome) -> rx.event.EventSpec:
        self.importing = False
        if outcome.error:
            return rx.toast.error(outcome.error)
        self.is_open = False
        self._forget_file()
        self._refresh(self._require(), with_options=True)
        return rx.toast.success(f"{outcome.count:,} employees imported.")
